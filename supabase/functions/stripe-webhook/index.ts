// Stripe webhooks: verify `Stripe-Signature` (HMAC-SHA256 over "{t}.{raw body}", 300 s
// tolerance), store the event once in the inbox, answer at once. The fleet's
// billing.webhook job turns it into invoice, subscription and credit changes.
import { verifyStripe } from "../_shared/signatures.ts";
import { json, parseObject, storeEvent } from "../_shared/webhook_inbox.ts";

export const TOLERANCE_S = 300;

export async function handler(req: Request): Promise<Response> {
  if (req.method !== "POST") return json({ error: "method not allowed" }, 405);
  const secret = Deno.env.get("STRIPE_WEBHOOK_SECRET");
  if (!secret) return json({ error: "STRIPE_WEBHOOK_SECRET is not configured" }, 500);

  const raw = await req.text();
  const verdict = await verifyStripe(req.headers.get("stripe-signature"), raw, secret, TOLERANCE_S);
  if (!verdict.ok) {
    return json({ error: `signature ${verdict.reason}` }, verdict.reason === "mismatch" || verdict.reason === "missing" ? 401 : 400);
  }
  const event = parseObject(raw);
  if (
    !event || typeof event.id !== "string" || event.id === "" || typeof event.type !== "string" ||
    typeof event.data !== "object" || event.data === null
  ) {
    return json({ error: "malformed event: expected an object with id, type and data" }, 400);
  }
  const created = typeof event.created === "number" ? new Date(event.created * 1000) : null;
  const stored = await storeEvent("stripe", event.id, event.type, event, created);
  return json({ received: true, duplicate: stored.duplicate });
}

if (import.meta.main) Deno.serve(handler);
