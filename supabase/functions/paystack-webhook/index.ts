// Paystack webhooks: verify `x-paystack-signature` (hex HMAC-SHA512 of the raw body under
// the secret key), store the event once in the inbox, answer at once.
import { verifyPaystack } from "../_shared/signatures.ts";
import { isRecord, json, parseObject, storeEvent } from "../_shared/webhook_inbox.ts";

/** Paystack events carry no id of their own: the event name plus the object's id (or reference). */
export function paystackEventId(event: string, data: Record<string, unknown>): string | null {
  const key = data.id ?? data.reference ?? data.transaction_reference;
  if (typeof key !== "string" && typeof key !== "number") return null;
  return `${event}:${key}`;
}

export async function handler(req: Request): Promise<Response> {
  if (req.method !== "POST") return json({ error: "method not allowed" }, 405);
  const secret = Deno.env.get("PAYSTACK_SECRET_KEY");
  if (!secret) return json({ error: "PAYSTACK_SECRET_KEY is not configured" }, 500);

  const raw = await req.text();
  const verdict = await verifyPaystack(req.headers.get("x-paystack-signature"), raw, secret);
  if (!verdict.ok) return json({ error: `signature ${verdict.reason}` }, 401);
  const event = parseObject(raw);
  if (!event || typeof event.event !== "string" || !isRecord(event.data)) {
    return json({ error: "malformed event: expected an object with event and data" }, 400);
  }
  const eventId = paystackEventId(event.event, event.data);
  if (!eventId) return json({ error: "malformed event: data has no id or reference" }, 400);
  const at = event.data.paid_at ?? event.data.updated_at ?? event.data.created_at;
  const occurred = typeof at === "string" && !Number.isNaN(Date.parse(at)) ? new Date(at) : null;
  const stored = await storeEvent("paystack", eventId, event.event, event, occurred);
  return json({ received: true, duplicate: stored.duplicate });
}

if (import.meta.main) Deno.serve(handler);
