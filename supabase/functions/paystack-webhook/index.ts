// Paystack webhooks: verify `x-paystack-signature` (hex HMAC-SHA512 of the raw body under
// the secret key), store the event once in the inbox, answer at once.
import { reply } from "../_shared/http.ts";
import { isRecord } from "../_shared/json_body.ts";
import { verifyPaystack } from "../_shared/signatures.ts";
import { receiveWebhook, storeEvent } from "../_shared/webhook_inbox.ts";

/** Paystack events carry no id of their own: the event name plus the object's id (or reference). */
export function paystackEventId(event: string, data: Record<string, unknown>): string | null {
  const key = data.id ?? data.reference ?? data.transaction_reference;
  if (typeof key !== "string" && typeof key !== "number") return null;
  return `${event}:${key}`;
}

export async function handler(req: Request): Promise<Response> {
  const delivery = await receiveWebhook(req, {
    source: "paystack",
    secretName: "PAYSTACK_SECRET_KEY",
    verify: async (bytes, req, secret) => {
      const verdict = await verifyPaystack(req.headers.get("x-paystack-signature"), bytes, secret);
      return verdict.ok ? verdict : { ok: false, error: `signature ${verdict.reason}` };
    },
  });
  if (delivery instanceof Response) return delivery;
  const event = delivery.payload;
  if (typeof event.event !== "string" || !isRecord(event.data)) {
    return reply(400, { error: "malformed event: expected an object with event and data" });
  }
  const eventId = paystackEventId(event.event, event.data);
  if (!eventId) return reply(400, { error: "malformed event: data has no id or reference" });
  // Paystack counts in the currency's subunit: an amount is a whole number.
  const amount = event.data.amount;
  if (amount !== undefined && amount !== null && !(Number.isSafeInteger(amount) && (amount as number) >= 0)) {
    return reply(400, { error: "malformed event: data.amount must be a whole number of subunits" });
  }
  const at = event.data.paid_at ?? event.data.updated_at ?? event.data.created_at;
  const occurred = typeof at === "string" && !Number.isNaN(Date.parse(at)) ? new Date(at) : null;
  const stored = await storeEvent("paystack", eventId, event.event, delivery.text, occurred);
  return reply(200, { received: true, duplicate: stored.duplicate });
}

if (import.meta.main) Deno.serve(handler);
