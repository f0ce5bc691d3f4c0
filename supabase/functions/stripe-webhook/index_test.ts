import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { Bytes } from "../_shared/hmac.ts";
import { hmacHex } from "../_shared/signatures.ts";
import { badBytesTests, done, inbox, post, t } from "../_shared/webhook_test_utils.ts";
import { handler } from "./index.ts";

const SECRET = "whsec_test_secret";
Deno.env.set("STRIPE_WEBHOOK_SECRET", SECRET);
const URL_ = "http://localhost/stripe-webhook";

function event(id = `evt_${crypto.randomUUID().replaceAll("-", "")}`): { id: string; raw: string } {
  const raw = JSON.stringify({
    id,
    object: "event",
    type: "checkout.session.completed",
    created: Math.floor(Date.now() / 1000),
    data: { object: { id: "cs_test_1", object: "checkout.session", payment_status: "paid", amount_total: 2900 } },
  });
  return { id, raw };
}

async function signature(raw: string | Bytes, ts = Math.floor(Date.now() / 1000), secret = SECRET): Promise<string> {
  const body = typeof raw === "string" ? new TextEncoder().encode(raw) : raw;
  const signed = new Uint8Array([...new TextEncoder().encode(`${ts}.`), ...body]);
  return `t=${ts},v1=${await hmacHex("SHA-256", secret, signed)}`;
}

t("a valid delivery is stored once and queued for the fleet", async () => {
  const { id, raw } = event();
  const res = await handler(post(URL_, raw, { "stripe-signature": await signature(raw) }));
  assertEquals(res.status, 200);
  assertEquals(await res.json(), { received: true, duplicate: false });
  assertEquals(await inbox("stripe", id), { rows: 1, jobs: 1 });
});

t("dispute, transfer and Connect account events are stored and queued like payments", async () => {
  const now = Math.floor(Date.now() / 1000);
  for (const [type, object] of [
    ["charge.dispute.closed", { id: "dp_1", object: "dispute", charge: "ch_1", payment_intent: "pi_1", status: "lost" }],
    ["transfer.created", { id: "tr_1", object: "transfer", amount: 7000, destination: "acct_1", metadata: {} }],
    ["account.updated", { id: "acct_1", object: "account", capabilities: { transfers: "active" } }],
  ] as const) {
    const id = `evt_${crypto.randomUUID().replaceAll("-", "")}`;
    const raw = JSON.stringify({ id, object: "event", type, created: now, data: { object } });
    const res = await handler(post(URL_, raw, { "stripe-signature": await signature(raw) }));
    assertEquals(res.status, 200, type);
    await res.body?.cancel();
    assertEquals(await inbox("stripe", id), { rows: 1, jobs: 1 }, type);
  }
});

t("deliveries past the per-address limit get 429 and are not stored; other addresses go on", async () => {
  Deno.env.set("WEBHOOK_RATE_PER_MINUTE", "2");
  try {
    const address = `198.51.100.${Math.floor(Math.random() * 250) + 1}, 10.0.0.1`;
    const send = async (from: string) => {
      const { id, raw } = event();
      const res = await handler(post(URL_, raw, { "stripe-signature": await signature(raw), "x-forwarded-for": from }));
      return { id, res };
    };
    for (let i = 0; i < 2; i++) assertEquals((await send(address)).res.status, 200);
    const { id, res } = await send(address);
    assertEquals(res.status, 429);
    assertEquals(Number(res.headers.get("Retry-After")) >= 1, true);
    assertEquals(res.headers.get("RateLimit-Limit"), "2");
    assertEquals((await res.json()).error, "too many deliveries from this source: at most 2 a minute; retry later");
    assertEquals(await inbox("stripe", id), { rows: 0, jobs: 0 });
    assertEquals((await send("203.0.113.9")).res.status, 200, "another address has its own allowance");
  } finally {
    Deno.env.delete("WEBHOOK_RATE_PER_MINUTE");
  }
});

t("a duplicated delivery is acknowledged and changes nothing", async () => {
  const { id, raw } = event();
  const sig = await signature(raw);
  assertEquals((await handler(post(URL_, raw, { "stripe-signature": sig }))).status, 200);
  const again = await handler(post(URL_, raw, { "stripe-signature": sig }));
  assertEquals(again.status, 200);
  assertEquals(await again.json(), { received: true, duplicate: true });
  assertEquals(await inbox("stripe", id), { rows: 1, jobs: 1 });
});

t("any of several v1 signatures may match (secret rotation)", async () => {
  const { id, raw } = event();
  const ts = Math.floor(Date.now() / 1000);
  const good = await hmacHex("SHA-256", SECRET, `${ts}.${raw}`);
  const header = `t=${ts},v1=${"0".repeat(64)},v1=${good},v0=abc`;
  assertEquals((await handler(post(URL_, raw, { "stripe-signature": header }))).status, 200);
  assertEquals((await inbox("stripe", id)).rows, 1);
});

t("an invalid signature is refused and nothing is stored", async () => {
  const { id, raw } = event();
  const wrongSecret = await handler(post(URL_, raw, { "stripe-signature": await signature(raw, undefined, "whsec_other") }));
  assertEquals(wrongSecret.status, 401);
  await wrongSecret.body?.cancel();
  const tampered = await handler(post(URL_, raw.replace("2900", "1"), { "stripe-signature": await signature(raw) }));
  assertEquals(tampered.status, 401);
  await tampered.body?.cancel();
  const missing = await handler(post(URL_, raw, {}));
  assertEquals(missing.status, 401);
  await missing.body?.cancel();
  assertEquals(await inbox("stripe", id), { rows: 0, jobs: 0 });
});

t("a stale delivery (timestamp beyond 300 s) is refused", async () => {
  const { id, raw } = event();
  const old = Math.floor(Date.now() / 1000) - 301;
  const res = await handler(post(URL_, raw, { "stripe-signature": await signature(raw, old) }));
  assertEquals(res.status, 400);
  assertEquals(await res.json(), { error: "signature stale" });
  const future = await handler(post(URL_, raw, { "stripe-signature": await signature(raw, old + 602) }));
  assertEquals(future.status, 400);
  await future.body?.cancel();
  const within = await handler(post(URL_, raw, { "stripe-signature": await signature(raw, old + 2) }));
  assertEquals(within.status, 200);
  await within.body?.cancel();
  assertEquals((await inbox("stripe", id)).rows, 1);
});

t("malformed deliveries are refused with 400", async () => {
  const notJson = "{not json";
  const r1 = await handler(post(URL_, notJson, { "stripe-signature": await signature(notJson) }));
  assertEquals(r1.status, 400);
  await r1.body?.cancel();
  const noId = JSON.stringify({ type: "invoice.paid", data: {} });
  const r2 = await handler(post(URL_, noId, { "stripe-signature": await signature(noId) }));
  assertEquals(r2.status, 400);
  await r2.body?.cancel();
  const r3 = await handler(post(URL_, "{}", { "stripe-signature": "garbage" }));
  assertEquals(r3.status, 400);
  await r3.body?.cancel();
  const r4 = await handler(new Request(URL_, { method: "GET" }));
  assertEquals(r4.status, 405);
  await r4.body?.cancel();
});

t("a signed event the fleet could not read is refused with 400 naming the field, and not stored", async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ data: {} }, "malformed event: data.object must be an object with an id"],
    [{ data: { object: { object: "charge" } } }, "malformed event: data.object must be an object with an id"],
    [{ data: { object: [] } }, "malformed event: data.object must be an object with an id"],
    [{ created: "yesterday" }, "malformed event: created must be a Unix time in seconds"],
    [{ created: 1.5 }, "malformed event: created must be a Unix time in seconds"],
  ];
  for (const [change, error] of cases) {
    const { id, raw } = event();
    const bad = JSON.stringify({ ...JSON.parse(raw), ...change });
    const res = await handler(post(URL_, bad, { "stripe-signature": await signature(bad) }));
    assertEquals([res.status, await res.json()], [400, { error }], bad);
    assertEquals((await inbox("stripe", id)).rows, 0);
  }
});

t("a missing webhook secret is a 500 that names the secret to set", async () => {
  Deno.env.delete("STRIPE_WEBHOOK_SECRET");
  try {
    const { raw } = event();
    const res = await handler(post(URL_, raw, { "stripe-signature": await signature(raw) }));
    assertEquals(res.status, 500);
    assertEquals(/set the STRIPE_WEBHOOK_SECRET secret/.test((await res.json()).error), true);
  } finally {
    Deno.env.set("STRIPE_WEBHOOK_SECRET", SECRET);
  }
});

badBytesTests({
  provider: "stripe",
  handler,
  url: URL_,
  unsignedStatus: 401,
  event: () => {
    const { id, raw } = event();
    return Promise.resolve({ raw, stored: async () => (await inbox("stripe", id)).rows });
  },
  sign: async (body) => ({ "stripe-signature": await signature(body) }),
});

done();
