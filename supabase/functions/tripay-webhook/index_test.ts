import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { Bytes } from "../_shared/hmac.ts";
import { hmacHex } from "../_shared/signatures.ts";
import { badBytesTests, done, inbox, post, t } from "../_shared/webhook_test_utils.ts";
import { handler } from "./index.ts";

const SECRET = "tripay_private_key";
Deno.env.set("TRIPAY_PRIVATE_KEY", SECRET);
const URL_ = "http://localhost/tripay-webhook";

function callback(status = "PAID", reference = `T${Math.floor(Math.random() * 1e15)}`): { eventId: string; raw: string } {
  const raw = JSON.stringify({
    reference,
    merchant_ref: `INV-${reference}`,
    payment_method: "BRIVA",
    payment_method_code: "BRIVA",
    total_amount: 200000,
    fee_merchant: 2000,
    fee_customer: 0,
    total_fee: 2000,
    amount_received: 198000,
    is_closed_payment: 1,
    status,
    paid_at: Math.floor(Date.now() / 1000),
    note: null,
  });
  return { eventId: `${reference}:${status}`, raw };
}

const headers = async (raw: string | Bytes, secret = SECRET) => ({
  "x-callback-signature": await hmacHex("SHA-256", secret, raw),
  "x-callback-event": "payment_status",
});

t("a valid callback is stored once, queued and answered with success", async () => {
  const { eventId, raw } = callback();
  const res = await handler(post(URL_, raw, await headers(raw)));
  assertEquals(res.status, 200);
  assertEquals(await res.json(), { success: true, duplicate: false });
  assertEquals(await inbox("tripay", eventId), { rows: 1, jobs: 1 });
});

t("a duplicated callback is acknowledged and changes nothing", async () => {
  const { eventId, raw } = callback();
  await (await handler(post(URL_, raw, await headers(raw)))).body?.cancel();
  const again = await handler(post(URL_, raw, await headers(raw)));
  assertEquals(await again.json(), { success: true, duplicate: true });
  assertEquals(await inbox("tripay", eventId), { rows: 1, jobs: 1 });
});

t("each status of one payment is its own event, whatever the order", async () => {
  const reference = `T${Math.floor(Math.random() * 1e15)}`;
  const paid = callback("PAID", reference);
  const stale = callback("UNPAID", reference); // an older status arriving late
  await (await handler(post(URL_, paid.raw, await headers(paid.raw)))).body?.cancel();
  const res = await handler(post(URL_, stale.raw, await headers(stale.raw)));
  assertEquals(res.status, 200);
  await res.body?.cancel();
  assertEquals((await inbox("tripay", paid.eventId)).rows, 1);
  assertEquals((await inbox("tripay", stale.eventId)).rows, 1);
});

t("an invalid signature is refused and nothing is stored", async () => {
  const { eventId, raw } = callback();
  for (const h of [await headers(raw, "other"), { "x-callback-event": "payment_status" }]) {
    const res = await handler(post(URL_, raw, h));
    assertEquals(res.status, 401);
    await res.body?.cancel();
  }
  const tampered = raw.replace("200000", "1");
  const res = await handler(post(URL_, tampered, await headers(raw)));
  assertEquals(res.status, 401);
  await res.body?.cancel();
  assertEquals(await inbox("tripay", eventId), { rows: 0, jobs: 0 });
});

t("malformed callbacks are refused with 400; other callback events are ignored", async () => {
  for (
    const raw of [
      "{",
      JSON.stringify({ status: "PAID" }),
      JSON.stringify({ reference: "T1", status: "WEIRD" }),
      JSON.stringify({ reference: "T1", status: "PAID", total_amount: "200000" }),
      JSON.stringify({ reference: "T1", status: "PAID", paid_at: 1.5 }),
      JSON.stringify({ reference: "T1", status: "PAID", merchant_ref: 7 }),
    ]
  ) {
    const res = await handler(post(URL_, raw, await headers(raw)));
    assertEquals(res.status, 400, raw);
    await res.body?.cancel();
  }
  const raw = JSON.stringify({ foo: 1 });
  const other = await handler(post(URL_, raw, { ...(await headers(raw)), "x-callback-event": "other_event" }));
  assertEquals(other.status, 200);
  assertEquals((await other.json()).ignored, "other_event");
});

badBytesTests({
  provider: "tripay",
  handler,
  url: URL_,
  unsignedStatus: 401,
  event: () => {
    const { eventId, raw } = callback();
    return Promise.resolve({ raw, stored: async () => (await inbox("tripay", eventId)).rows });
  },
  sign: (body) => headers(body),
});

done();
