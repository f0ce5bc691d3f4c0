// Stripe webhooks: verify `Stripe-Signature` (HMAC-SHA256 over "{t}.{raw body}", 300 s
// tolerance), store the event once in the inbox, answer at once. The fleet's
// billing.webhook job turns it into invoice, subscription and credit changes.
import { reply } from "../_shared/http.ts";
import { isRecord } from "../_shared/json_body.ts";
import { verifyStripe } from "../_shared/signatures.ts";
import { receiveWebhook, storeEvent } from "../_shared/webhook_inbox.ts";

export const TOLERANCE_S = 300;

export async function handler(req: Request): Promise<Response> {
  const delivery = await receiveWebhook(req, {
    source: "stripe",
    secretName: "STRIPE_WEBHOOK_SECRET",
    verify: async (bytes, req, secret) => {
      const verdict = await verifyStripe(req.headers.get("stripe-signature"), bytes, secret, TOLERANCE_S);
      if (verdict.ok) return verdict;
      const status = verdict.reason === "mismatch" || verdict.reason === "missing" ? 401 : 400;
      return { ok: false, status, error: `signature ${verdict.reason}` };
    },
  });
  if (delivery instanceof Response) return delivery;
  const event = delivery.payload;
  if (typeof event.id !== "string" || event.id === "" || typeof event.type !== "string" || !isRecord(event.data)) {
    return reply(400, { error: "malformed event: expected an object with id, type and data" });
  }
  // What the fleet's model of a Stripe event needs (worker/billing/models.py): refused here,
  // with the field named, rather than stored and ignored later.
  const object = event.data.object;
  if (!isRecord(object) || typeof object.id !== "string" || object.id === "") {
    return reply(400, { error: "malformed event: data.object must be an object with an id" });
  }
  if (event.created !== undefined && event.created !== null && !Number.isSafeInteger(event.created)) {
    return reply(400, { error: "malformed event: created must be a Unix time in seconds" });
  }
  const created = typeof event.created === "number" ? new Date(event.created * 1000) : null;
  const stored = await storeEvent("stripe", event.id, event.type, delivery.text, created);
  return reply(200, { received: true, duplicate: stored.duplicate });
}

if (import.meta.main) Deno.serve(handler);
