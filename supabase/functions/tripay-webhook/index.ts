// Tripay payment callbacks: verify `X-Callback-Signature` (hex HMAC-SHA256 of the raw body
// under the private key), store the callback once in the inbox, answer `{"success": true}`.
import { reply } from "../_shared/http.ts";
import { verifyTripay } from "../_shared/signatures.ts";
import { receiveWebhook, storeEvent } from "../_shared/webhook_inbox.ts";

const STATUSES = new Set(["UNPAID", "PAID", "EXPIRED", "FAILED", "REFUND"]);

// Tripay reads `success` and `message` in its callback log.
const fail = (status: number, message: string) => reply(status, { success: false, message });

export async function handler(req: Request): Promise<Response> {
  const delivery = await receiveWebhook(req, {
    source: "tripay",
    secretName: "TRIPAY_PRIVATE_KEY",
    verify: async (bytes, req, secret) => {
      const verdict = await verifyTripay(req.headers.get("x-callback-signature"), bytes, secret);
      return verdict.ok ? verdict : { ok: false, error: `signature ${verdict.reason}` };
    },
    fail,
  });
  if (delivery instanceof Response) return delivery;
  const kind = req.headers.get("x-callback-event") ?? "payment_status";
  if (kind !== "payment_status") return reply(200, { success: true, ignored: kind });

  const cb = delivery.payload;
  if (typeof cb.reference !== "string" || cb.reference === "" || typeof cb.status !== "string" || !STATUSES.has(cb.status)) {
    return fail(400, "malformed callback: expected reference and a known status");
  }
  for (const field of ["total_amount", "paid_at"] as const) {
    const v = cb[field];
    if (v !== undefined && v !== null && !(Number.isSafeInteger(v) && (v as number) >= 0)) {
      return fail(400, `malformed callback: ${field} must be a whole number`);
    }
  }
  if (cb.merchant_ref !== undefined && cb.merchant_ref !== null && typeof cb.merchant_ref !== "string") {
    return fail(400, "malformed callback: merchant_ref must be a string");
  }
  // One event per (reference, status): a status is reached once, re-sent callbacks repeat it.
  const occurred = typeof cb.paid_at === "number" ? new Date(cb.paid_at * 1000) : null;
  const stored = await storeEvent("tripay", `${cb.reference}:${cb.status}`, `payment_status.${cb.status}`, delivery.text, occurred);
  return reply(200, { success: true, duplicate: stored.duplicate });
}

if (import.meta.main) Deno.serve(handler);
