// Run from supabase/functions with SUPABASE_DB_URL pointing at a migrated database:
//   deno test --allow-net --allow-env --allow-read
import { closeDb, db } from "../_shared/db.ts";
import { canonicalJson, hmacSha256Base64 } from "../_shared/hmac.ts";
import { handler } from "./index.ts";

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

async function send(payload: Record<string, unknown>, key = KEY): Promise<Response> {
  // Reordered keys and spacing on the wire: the signature covers the canonical JSON.
  const wire = JSON.stringify(Object.fromEntries(Object.entries(payload).reverse()), null, 2);
  return await post(wire, await hmacSha256Base64(key, canonicalJson(payload)));
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
    assertEquals((await post(JSON.stringify(tampered), await hmacSha256Base64(KEY, canonicalJson(payload)))).status, 401);
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
    assertEquals((await post("[1,2]", await hmacSha256Base64(KEY, "[1,2]"))).status, 400);
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
