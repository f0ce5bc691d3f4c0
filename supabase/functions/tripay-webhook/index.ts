// Tripay payment callbacks: verify `X-Callback-Signature` (hex HMAC-SHA256 of the raw body
// under the private key), store the callback once in the inbox, answer `{"success": true}`.
import { verifyTripay } from "../_shared/signatures.ts";
import { json, parseObject, storeEvent } from "../_shared/webhook_inbox.ts";

const STATUSES = new Set(["UNPAID", "PAID", "EXPIRED", "FAILED", "REFUND"]);

export async function handler(req: Request): Promise<Response> {
  if (req.method !== "POST") return json({ success: false, message: "method not allowed" }, 405);
  const secret = Deno.env.get("TRIPAY_PRIVATE_KEY");
  if (!secret) return json({ success: false, message: "TRIPAY_PRIVATE_KEY is not configured" }, 500);

  const raw = await req.text();
  const verdict = await verifyTripay(req.headers.get("x-callback-signature"), raw, secret);
  if (!verdict.ok) return json({ success: false, message: `signature ${verdict.reason}` }, 401);
  const kind = req.headers.get("x-callback-event") ?? "payment_status";
  if (kind !== "payment_status") return json({ success: true, ignored: kind });

  const cb = parseObject(raw);
  if (
    !cb || typeof cb.reference !== "string" || cb.reference === "" || typeof cb.status !== "string" ||
    !STATUSES.has(cb.status)
  ) {
    return json({ success: false, message: "malformed callback: expected reference and a known status" }, 400);
  }
  // One event per (reference, status): a status is reached once, re-sent callbacks repeat it.
  const occurred = typeof cb.paid_at === "number" ? new Date(cb.paid_at * 1000) : null;
  const stored = await storeEvent("tripay", `${cb.reference}:${cb.status}`, `payment_status.${cb.status}`, cb, occurred);
  return json({ success: true, duplicate: stored.duplicate });
}

if (import.meta.main) Deno.serve(handler);
