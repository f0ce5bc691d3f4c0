import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { Bytes } from "../_shared/hmac.ts";
import { hmacHex } from "../_shared/signatures.ts";
import { badBytesTests, done, inbox, post, t } from "../_shared/webhook_test_utils.ts";
import { handler } from "./index.ts";

const SECRET = "sk_test_paystack";
Deno.env.set("PAYSTACK_SECRET_KEY", SECRET);
const URL_ = "http://localhost/paystack-webhook";

function charge(status = "success", id = Math.floor(Math.random() * 1e12)): { eventId: string; raw: string } {
  const raw = JSON.stringify({
    event: `charge.${status}`,
    data: {
      id,
      status,
      reference: `ref_${id}`,
      amount: 290000,
      currency: "NGN",
      paid_at: new Date().toISOString(),
      metadata: {},
    },
  });
  return { eventId: `charge.${status}:${id}`, raw };
}

const sign = (raw: string | Bytes, secret = SECRET) => hmacHex("SHA-512", secret, raw);

t("a valid delivery is stored once and queued", async () => {
  const { eventId, raw } = charge();
  const res = await handler(post(URL_, raw, { "x-paystack-signature": await sign(raw) }));
  assertEquals(res.status, 200);
  assertEquals(await res.json(), { received: true, duplicate: false });
  assertEquals(await inbox("paystack", eventId), { rows: 1, jobs: 1 });
});

t("transfer and dispute events are stored and queued like payments", async () => {
  for (const [event, data] of [
    ["transfer.success", { id: 41, amount: 6000, currency: "NGN", reference: crypto.randomUUID(), transfer_code: "TRF_1" }],
    ["transfer.failed", { id: 42, amount: 6000, currency: "NGN", reference: crypto.randomUUID(), transfer_code: "TRF_2" }],
    ["charge.dispute.resolve", { id: 43, status: "resolved", resolution: "merchant-accepted", transaction: { id: 1, reference: "ref_1" } }],
  ] as const) {
    const id = Math.floor(Math.random() * 1e12);
    const raw = JSON.stringify({ event, data: { ...data, id } });
    const res = await handler(post(URL_, raw, { "x-paystack-signature": await sign(raw) }));
    assertEquals(res.status, 200, event);
    await res.body?.cancel();
    assertEquals(await inbox("paystack", `${event}:${id}`), { rows: 1, jobs: 1 }, event);
  }
});

t("a duplicated delivery is acknowledged and changes nothing", async () => {
  const { eventId, raw } = charge();
  const sig = await sign(raw);
  await (await handler(post(URL_, raw, { "x-paystack-signature": sig }))).body?.cancel();
  const again = await handler(post(URL_, raw, { "x-paystack-signature": sig }));
  assertEquals(await again.json(), { received: true, duplicate: true });
  assertEquals(await inbox("paystack", eventId), { rows: 1, jobs: 1 });
});

t("an invalid signature is refused and nothing is stored", async () => {
  const { eventId, raw } = charge();
  for (const headers of [
    { "x-paystack-signature": await sign(raw, "sk_other") },
    { "x-paystack-signature": await hmacHex("SHA-256", SECRET, raw) },
    {} as Record<string, string>,
  ]) {
    const res = await handler(post(URL_, raw, headers));
    assertEquals(res.status, 401);
    await res.body?.cancel();
  }
  assertEquals(await inbox("paystack", eventId), { rows: 0, jobs: 0 });
});

t("a stale (older, re-sent) delivery is stored once and left for the fleet's state machine", async () => {
  // Paystack signs no timestamp: a late or replayed event is accepted by signature and made
  // harmless by idempotency (same event id) and by the invoice state machine (order).
  const { eventId, raw } = charge("success");
  const sig = await sign(raw);
  await (await handler(post(URL_, raw, { "x-paystack-signature": sig }))).body?.cancel();
  const late = await handler(post(URL_, raw, { "x-paystack-signature": sig }));
  assertEquals(late.status, 200);
  assertEquals((await late.json()).duplicate, true);
  assertEquals(await inbox("paystack", eventId), { rows: 1, jobs: 1 });
});

t("malformed deliveries are refused with 400", async () => {
  for (
    const raw of [
      "nope",
      JSON.stringify({ data: { id: 1 } }),
      JSON.stringify({ event: "charge.success", data: {} }),
      "[]",
      JSON.stringify({ event: "charge.success", data: { id: 2, amount: "10000" } }),
      JSON.stringify({ event: "charge.success", data: { id: 3, amount: 99.5 } }),
    ]
  ) {
    const res = await handler(post(URL_, raw, { "x-paystack-signature": await sign(raw) }));
    assertEquals(res.status, 400, raw);
    await res.body?.cancel();
  }
});

badBytesTests({
  provider: "paystack",
  handler,
  url: URL_,
  unsignedStatus: 401,
  event: () => {
    const { eventId, raw } = charge();
    return Promise.resolve({ raw, stored: async () => (await inbox("paystack", eventId)).rows });
  },
  sign: async (body) => ({ "x-paystack-signature": await sign(body) }),
});

done();
