// Run from supabase/functions with SUPABASE_DB_URL pointing at a migrated database:
//   deno test --allow-net --allow-env --allow-read --allow-run
// Historical data downloads through the public API: the same data_requests rows apps insert
// (one data.download job each), read back as the key's user only, each answer checked
// against the OpenAPI document; the plan's monthly quota as a 4xx naming the limit and the
// plan that lifts it; bodies that do not fit refused naming the field; a retried POST
// answered with the first request and counted once.
import { closeDb, db } from "../_shared/db.ts";
import { call, conformsTo, newKey, newUser } from "./test_support.ts";
import { usageWritten } from "./usage.ts";

/** A user on a plan of their own allowing `perMonth` data requests. */
const dataUser = (perMonth: number) => newUser("data-api", { data_requests_per_month: perMonth });
const dataKey = async (user: string, scopes: string[]) => (await newKey(user, scopes, null, "data")).key;

function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}

/** A user on a plan of its own allowing `perMonth` data requests. */
async function requests(user: string): Promise<number> {
  const [r] = await db()`select count(*)::int as n from public.data_requests where user_id = ${user}`;
  return r.n as number;
}

async function jobsOf(id: string): Promise<number> {
  const [r] = await db()`select count(*)::int as n from public.jobs where kind = 'data.download' and payload ->> 'request_id' = ${id}`;
  return r.n as number;
}

async function done(): Promise<void> {
  await usageWritten();
  await closeDb();
}

const REQUEST = {
  exchange: "okx", trading_pair: "BTC/USDT", timeframe: "1h", start_date: "2024-01-01T00:00:00Z",
  end_date: "2024-07-01T00:00:00Z",
};

Deno.test("a data request through a key: queued for the fleet, read back as the key's user only", async () => {
  try {
    const user = await dataUser(5);
    const key = await dataKey(user, ["data:read", "data:write"]);
    const created = await call("POST", "/v1/data-requests", key, REQUEST);
    const row = await created.json();
    assertEquals(created.status, 201, JSON.stringify(row));
    conformsTo(row, "requestData");
    assertEquals([row.exchange, row.trading_pair, row.timeframe, row.start_date, row.end_date, row.status, row.progress],
                 ["okx", "BTC/USDT", "1h", "2024-01-01T00:00:00.000Z", "2024-07-01T00:00:00.000Z", "queued", "0.0000"]);
    assertEquals(await jobsOf(row.id), 1, "one data.download job, as from the app");
    // binance when the exchange is left out; an open end (now).
    const open = await (await call("POST", "/v1/data-requests", key, { trading_pair: "ETH/BTC", timeframe: "4h",
                                                                       start_date: "2025-06-01T00:00:00+02:00" })).json();
    assertEquals([open.exchange, open.start_date, open.end_date], ["binance", "2025-05-31T22:00:00.000Z", null]);

    // The fleet reports on the row; the key reads it back.
    await db()`update public.data_requests set status = 'completed', progress = 1, candles_stored = 4300, missing_candles = 68,
                 gaps = ${db().json([{ after: "2024-03-01T00:00:00Z", before: "2024-03-03T21:00:00Z", missing: 68 }])},
                 finished_at = now() where id = ${row.id}`;
    const read = await call("GET", `/v1/data-requests/${row.id}`, key);
    const one = await read.json();
    assertEquals(read.status, 200);
    conformsTo(one, "getDataRequest");
    assertEquals([one.status, one.progress, one.candles_stored, one.missing_candles, one.gaps.length],
                 ["completed", "1.0000", 4300, 68, 1]);
    const list = await (await call("GET", "/v1/data-requests", key)).json();
    conformsTo(list, "listDataRequests");
    assertEquals(list.data.map((r: { id: string }) => r.id), [open.id, row.id], "newest first");

    // Another user's key sees none of it.
    const other = await dataKey(await dataUser(5), ["data:read"]);
    const hidden = await call("GET", `/v1/data-requests/${row.id}`, other);
    assertEquals([hidden.status, await hidden.json()], [404, { error: "no such data request" }]);
    assertEquals((await (await call("GET", "/v1/data-requests", other)).json()).data, []);
  } finally {
    await done();
  }
});

Deno.test("the plan's monthly quota: a 4xx naming the limit and the plan that lifts it, nothing queued", async () => {
  try {
    const user = await dataUser(2);
    const key = await dataKey(user, ["data:write"]);
    for (const month of ["01", "02"]) {
      const res = await call("POST", "/v1/data-requests", key, { ...REQUEST, start_date: `2024-${month}-01T00:00:00Z` });
      assertEquals(res.status, 201);
      await res.body?.cancel();
    }
    const over = await call("POST", "/v1/data-requests", key, { ...REQUEST, start_date: "2024-03-01T00:00:00Z" });
    const body = await over.json();
    assertEquals([over.status, body.constraint], [400, "data_requests_plan_data_requests_per_month"]);
    if (!/allows 2 data downloads a month \(data_requests_per_month\); the \w+ plan allows \d+/.test(body.error)) {
      throw new Error(`the quota error names the limit and the plan lifting it: ${body.error}`);
    }
    assertEquals(await requests(user), 2, "nothing of the refused request");
    const [jobs] = await db()`select count(*)::int as n from public.jobs j join public.data_requests d
                               on j.payload ->> 'request_id' = d.id::text where d.user_id = ${user}`;
    assertEquals(jobs.n, 2);
  } finally {
    await done();
  }
});

Deno.test("data request bodies that do not fit are 400 naming the field, and nothing is queued", async () => {
  try {
    const user = await dataUser(100);
    const key = await dataKey(user, ["data:write"]);
    const future = new Date(Date.now() + 86_400_000).toISOString();
    const cases: [unknown, string][] = [
      [{ ...REQUEST, exchange: "nosuchx" }, "exchange"],
      [{ ...REQUEST, timeframe: "7m" }, "timeframe"],
      [{ ...REQUEST, exchange: "coinbase", timeframe: "4h" }, "timeframe"],
      [{ ...REQUEST, trading_pair: "btc-usdt" }, "trading_pair"],
      [{ ...REQUEST, start_date: "2024-01-01" }, "start_date"],
      [{ ...REQUEST, start_date: future, end_date: undefined }, "start_date"],
      [{ ...REQUEST, start_date: "2024-07-01T00:00:00Z", end_date: "2024-01-01T00:00:00Z" }, "end_date"],
      [{ ...REQUEST, end_date: REQUEST.start_date }, "end_date"],
      [{ ...REQUEST, idempotency_key: "" }, "idempotency_key"],
      [{ ...REQUEST, since: "2024-01-01T00:00:00Z" }, "since"],
      [{ trading_pair: "BTC/USDT", timeframe: "1h" }, "start_date"],
    ];
    for (const [body, field] of cases) {
      const res = await call("POST", "/v1/data-requests", key, body);
      assertEquals([res.status, (await res.json()).field], [400, field], JSON.stringify(body));
    }
    const coinbase = await call("POST", "/v1/data-requests", key, { ...REQUEST, exchange: "coinbase", timeframe: "4h" });
    assertEquals((await coinbase.json()).error, "coinbase does not offer timeframe 4h (it offers 1m, 5m, 15m, 30m, 1h, 1d)");
    assertEquals(await requests(user), 0, "nothing requested by a refused body");
  } finally {
    await done();
  }
});

Deno.test("a retried POST with its idempotency key answers the first request and counts once", async () => {
  try {
    const user = await dataUser(1);
    const key = await dataKey(user, ["data:write"]);
    const body = { ...REQUEST, idempotency_key: "dl-2024-h1" };
    // Three racing sends of one request on a plan allowing one, held at the user's quota
    // lock until all three wait there: one is made (201), the others answer it (200),
    // never the quota error.
    const sent: Promise<Response>[] = [];
    await db().begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtextextended(${"data_requests:" + user}, 0))`;
      for (let i = 0; i < 3; i++) sent.push(call("POST", "/v1/data-requests", key, body));
      for (let waiting = 0; waiting < 3;) {
        await new Promise((r) => setTimeout(r, 20));
        [{ waiting }] = await db()`select count(*)::int as waiting from pg_locks where locktype = 'advisory' and not granted`;
      }
    });
    const racing = await Promise.all(sent);
    const answers = await Promise.all(racing.map((r) => r.json()));
    assertEquals(racing.map((r) => r.status).sort(), [200, 200, 201], JSON.stringify(answers));
    const row = answers[racing.findIndex((r) => r.status === 201)];
    for (const again of answers) {
      assertEquals(again.id, row.id, JSON.stringify(again));
      conformsTo(again, "requestData");
    }
    // A retry after it, at the quota now: the same answer.
    const retry = await call("POST", "/v1/data-requests", key, body);
    assertEquals([retry.status, (await retry.json()).id], [200, row.id]);
    assertEquals([await requests(user), await jobsOf(row.id)], [1, 1]);
    // The same key for a different request is a conflict naming it.
    const other = await call("POST", "/v1/data-requests", key, { ...body, timeframe: "1d" });
    assertEquals([other.status, (await other.json()).field], [409, "idempotency_key"]);
    // A new key is a new request: over the quota.
    const next = await call("POST", "/v1/data-requests", key, { ...body, idempotency_key: "dl-2024-h2" });
    assertEquals([next.status, (await next.json()).constraint], [400, "data_requests_plan_data_requests_per_month"]);
    // Another user may use the same key.
    const theirs = await call("POST", "/v1/data-requests", await dataKey(await dataUser(5), ["data:write"]), body);
    assertEquals(theirs.status, 201);
    await theirs.body?.cancel();
  } finally {
    await done();
  }
});
