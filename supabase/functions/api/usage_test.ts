// The isolate's usage records: they wait for the next request's api_authorize call to carry
// them, and are written on their own when none takes them.
import { type Call, recordCall, returnCalls, takeCalls, usageWritten } from "./usage.ts";

function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) throw new Error(`${message}: expected ${e}, got ${a}`);
}

/** A stand-in for the database client: remembers each api_record_calls batch. */
function fakeSql(): { sql: unknown; written: Call[][] } {
  const written: Call[][] = [];
  const sql = Object.assign(
    (_strings: TemplateStringsArray, batch: Call[]) => {
      written.push(batch);
      return Promise.resolve([]);
    },
    { json: (v: Call[]) => v },
  );
  return { sql, written };
}

const call = (n: number): Call => ({
  key_id: "00000000-0000-0000-0000-000000000001", user_id: "00000000-0000-0000-0000-000000000002",
  endpoint: "GET /v1/bots", status: 200, latency_ms: n, at: new Date(0).toISOString(),
});

Deno.test("a waiting record is taken by the next request, and not written a second time", async () => {
  const { sql, written } = fakeSql();
  recordCall(sql, call(1));
  recordCall(sql, call(2));
  assertEquals(takeCalls()?.map((c) => c.latency_ms), [1, 2], "the next request carries both");
  assertEquals(takeCalls(), null, "nothing is left for another");
  await usageWritten();
  assertEquals(written, [], "no write of their own");
});

Deno.test("records nobody takes are written in one batch; a failed carrier gives them back", async () => {
  const { sql, written } = fakeSql();
  recordCall(sql, call(1));
  recordCall(sql, call(2));
  await usageWritten();
  assertEquals(written.map((b) => b.map((c) => c.latency_ms)), [[1, 2]]);

  recordCall(sql, call(3));
  const taken = takeCalls();
  returnCalls(sql, taken); // the request's api_authorize call failed
  await usageWritten();
  assertEquals(written.map((b) => b.map((c) => c.latency_ms)), [[1, 2], [3]], "written once, after all");
});
