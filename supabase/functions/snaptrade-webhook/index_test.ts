// Run from supabase/functions with SUPABASE_DB_URL pointing at a migrated database:
//   deno test --allow-net --allow-env --allow-read --allow-run
// Signatures are cross-checked against SnapTrade's documented Python verifier.
import { closeDb, db } from "../_shared/db.ts";
import { hmacSha256Base64 } from "../_shared/hmac.ts";
import { badBytesTests, done } from "../_shared/webhook_test_utils.ts";
import { handler } from "./index.ts";
import { pythonSortedJson } from "./signature.ts";

const KEY = "test-consumer-key";
Deno.env.set("SNAPTRADE_CONSUMER_KEY", KEY);

function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}

function event(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    webhookId: crypto.randomUUID(),
    clientId: "TRADEFLEET",
    eventTimestamp: new Date().toISOString(),
    userId: crypto.randomUUID(),
    eventType: "ACCOUNT_HOLDINGS_UPDATED",
    accountId: crypto.randomUUID(),
    brokerageAuthorizationId: crypto.randomUUID(),
    details: { note: "prix à jour" },
    ...overrides,
  };
}

async function post(body: string, signature: string | null): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (signature !== null) headers.Signature = signature;
  return await handler(new Request("http://localhost/snaptrade-webhook", { method: "POST", headers, body }));
}

const sign = async (text: string, key = KEY) => await hmacSha256Base64(key, pythonSortedJson(text));

async function send(payload: Record<string, unknown>, key = KEY): Promise<Response> {
  // Reordered keys and spacing on the wire: the signature covers the sorted, compact JSON.
  const wire = JSON.stringify(Object.fromEntries(Object.entries(payload).reverse()), null, 2);
  return await post(wire, await sign(wire, key));
}

const ROOT = new URL("../../../", import.meta.url).pathname;

/** The Signature header as SnapTrade's documentation computes it (docs/webhooks.md). */
async function documentedSignature(body: string, key = KEY): Promise<string> {
  const code = "import hmac, json, sys; from base64 import b64encode; from hashlib import sha256\n" +
    "payload = json.loads(sys.stdin.read())\n" +
    'sig_content = json.dumps(payload, separators=(",", ":"), sort_keys=True)\n' +
    "print(b64encode(hmac.new(sys.argv[1].encode(), sig_content.encode(), sha256).digest()).decode())";
  const child = new Deno.Command(`${ROOT}.venv/bin/python`, {
    args: ["-c", code, key], stdin: "piped", stdout: "piped", stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(body));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

async function stored(eventId: unknown): Promise<{ events: number; jobs: string[] }> {
  const sql = db();
  const events = await sql`select count(*)::int as n from public.webhook_events where provider = 'snaptrade' and event_id = ${String(eventId)}`;
  const jobs = await sql`select kind from public.jobs where idempotency_key = ${"snaptrade-webhook:" + String(eventId)}`;
  return { events: events[0].n, jobs: jobs.map((j) => j.kind as string) };
}

Deno.test("a signed event is stored once and becomes a sync job", async () => {
  try {
    const payload = event();
    const res = await send(payload);
    assertEquals(res.status, 200);
    assertEquals(await res.json(), { received: true, duplicate: false });
    assertEquals(await stored(payload.webhookId), { events: 1, jobs: ["holdings.sync_account"] });
    const rows = await db()`select event_type, payload ->> 'accountId' as account from public.webhook_events where event_id = ${String(payload.webhookId)}`;
    assertEquals(rows[0].event_type, "ACCOUNT_HOLDINGS_UPDATED");
    assertEquals(rows[0].account, payload.accountId);
  } finally {
    await closeDb();
  }
});

Deno.test("the documented 'webookId' spelling is accepted", async () => {
  try {
    const payload = event({ eventType: "CONNECTION_ADDED" });
    payload.webookId = payload.webhookId;
    delete payload.webhookId;
    const res = await send(payload);
    assertEquals(res.status, 200);
    assertEquals(await stored(payload.webookId), { events: 1, jobs: ["holdings.connection_added"] });
  } finally {
    await closeDb();
  }
});

Deno.test("a duplicate delivery is answered 200 and stored once", async () => {
  try {
    const payload = event();
    assertEquals((await send(payload)).status, 200);
    const again = await send(payload);
    assertEquals(again.status, 200);
    assertEquals(await again.json(), { received: true, duplicate: true });
    assertEquals(await stored(payload.webhookId), { events: 1, jobs: ["holdings.sync_account"] });
  } finally {
    await closeDb();
  }
});

Deno.test("a bad or missing signature gets 401 and nothing is stored", async () => {
  try {
    const payload = event();
    assertEquals((await send(payload, "another-key")).status, 401);
    assertEquals((await post(JSON.stringify(payload), null)).status, 401);
    assertEquals((await post(JSON.stringify(payload), "not base64!")).status, 401);
    const tampered = { ...payload, accountId: "someone-else" };
    assertEquals((await post(JSON.stringify(tampered), await sign(JSON.stringify(payload)))).status, 401);
    assertEquals(await stored(payload.webhookId), { events: 0, jobs: [] });
  } finally {
    await closeDb();
  }
});

Deno.test("an event older than 5 minutes is rejected and not stored", async () => {
  try {
    const payload = event({ eventTimestamp: new Date(Date.now() - 6 * 60 * 1000).toISOString() });
    const res = await send(payload);
    assertEquals(res.status, 401);
    assertEquals(await stored(payload.webhookId), { events: 0, jobs: [] });
    const recent = event({ eventTimestamp: new Date(Date.now() - 4 * 60 * 1000).toISOString() });
    assertEquals((await send(recent)).status, 200);
  } finally {
    await closeDb();
  }
});

Deno.test("a malformed body gets 400 and nothing is stored", async () => {
  try {
    assertEquals((await post("{not json", "x")).status, 400);
    assertEquals((await post("[1,2]", await sign("[1,2]"))).status, 400);
    const noType = event();
    delete noType.eventType;
    assertEquals((await send(noType)).status, 400);
    const badDate = event({ eventTimestamp: "yesterday-ish" });
    assertEquals((await send(badDate)).status, 400);
    assertEquals(await stored(noType.webhookId), { events: 0, jobs: [] });
    assertEquals(await stored(badDate.webhookId), { events: 0, jobs: [] });
  } finally {
    await closeDb();
  }
});

Deno.test("events we do not act on are stored and marked ignored", async () => {
  try {
    const payload = event({ eventType: "TRANSACTIONS_UPDATED" });
    assertEquals((await send(payload)).status, 200);
    const rows = await db()`select status from public.webhook_events where event_id = ${String(payload.webhookId)}`;
    assertEquals(rows[0].status, "ignored");
    assertEquals((await stored(payload.webhookId)).jobs, []);
  } finally {
    await closeDb();
  }
});

Deno.test("signatures made by SnapTrade's documented verifier are accepted, whatever the number formatting", async () => {
  try {
    for (const numbers of ['{"price": 100.0, "qty": 1e-07, "big": 1E5, "neg": -0.0, "id": 12345678901234567890}',
                           '{"p": 0.00001, "q": 1e16, "r": 1000000000000000.0, "s": 12345.6789e-3, "t": -0, "u": 2.5e-300}']) {
      const payload = event({ details: { note: "prix à jour ✓ 😀 \u007f / \\", tab: "a\tb" } });
      const wire = JSON.stringify(payload, null, 1).replace(/}$/, `, "numbers": ${numbers}}`);
      const signature = await documentedSignature(wire);
      assertEquals(signature, await sign(wire));
      const res = await post(wire, signature);
      assertEquals(res.status, 200, numbers);
      await res.body?.cancel();
      assertEquals(await stored(payload.webhookId), { events: 1, jobs: ["holdings.sync_account"] });
      const [row] = await db()`select payload -> 'numbers' ->> 'price' as price from public.webhook_events
                                where event_id = ${String(payload.webhookId)}`;
      if (numbers.includes("100.0")) assertEquals(row.price, "100.0");
    }
  } finally {
    await closeDb();
  }
});

Deno.test("a missing consumer key is a 500 that names the secret to set", async () => {
  Deno.env.delete("SNAPTRADE_CONSUMER_KEY");
  try {
    const res = await send(event());
    assertEquals(res.status, 500);
    assertEquals(/set the SNAPTRADE_CONSUMER_KEY secret/.test((await res.json()).error), true);
  } finally {
    Deno.env.set("SNAPTRADE_CONSUMER_KEY", KEY);
  }
});

badBytesTests({
  provider: "snaptrade",
  handler: (req) => handler(req),
  url: "http://localhost/snaptrade-webhook",
  event: () => {
    const payload = event();
    return Promise.resolve({
      raw: JSON.stringify(payload),
      stored: async () => (await stored(payload.webhookId)).events,
    });
  },
  sign: async (body) => {
    try {
      return { signature: await sign(new TextDecoder("utf-8", { fatal: true }).decode(body)) };
    } catch {
      return { signature: "unsignable" }; // SnapTrade's own json.loads would refuse it too
    }
  },
});

done();
