// SnapTrade webhooks: verify, reject stale, store once in the inbox, answer fast.
// The work happens in the worker fleet: a trigger on webhook_events enqueues the job.
//
// Signature: base64 HMAC-SHA256, keyed with the SnapTrade consumer key
// (SNAPTRADE_CONSUMER_KEY), of the canonical JSON (sorted keys, no spaces) of the payload.
import { db } from "../_shared/db.ts";
import { canonicalJson, verifyHmacBase64 } from "../_shared/hmac.ts";

export const MAX_AGE_MS = 5 * 60 * 1000;

function reply(status: number, body: Record<string, unknown>): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

type Event = { eventId: string; eventType: string; occurredAt: Date };

function parseEvent(payload: Record<string, unknown>): Event | string {
  // The documented WebhookBase spells it "webookId"; versioned payloads use "webhookId".
  const eventId = payload.webhookId ?? payload.webookId;
  const eventType = payload.eventType;
  const timestamp = payload.eventTimestamp;
  if (typeof eventId !== "string" || !eventId) return "webhookId is required";
  if (typeof eventType !== "string" || !/^[A-Z_]{1,64}$/.test(eventType)) return "eventType is required";
  if (typeof payload.userId !== "string" || !payload.userId) return "userId is required";
  if (typeof timestamp !== "string") return "eventTimestamp is required";
  const occurredAt = new Date(timestamp);
  if (Number.isNaN(occurredAt.getTime())) return "eventTimestamp is not a date";
  return { eventId, eventType, occurredAt };
}

export async function handler(req: Request, now: () => number = Date.now): Promise<Response> {
  if (req.method !== "POST") return reply(405, { error: "use POST" });
  const key = Deno.env.get("SNAPTRADE_CONSUMER_KEY");
  if (!key) return reply(500, { error: "webhook receiver is not configured" });

  let payload: unknown;
  try {
    payload = JSON.parse(await req.text());
  } catch {
    return reply(400, { error: "body is not JSON" });
  }
  if (!payload || typeof payload !== "object" || Array.isArray(payload)) {
    return reply(400, { error: "body must be a JSON object" });
  }
  const body = payload as Record<string, unknown>;
  if (!(await verifyHmacBase64(key, canonicalJson(body), req.headers.get("signature")))) {
    return reply(401, { error: "invalid signature" });
  }
  const event = parseEvent(body);
  if (typeof event === "string") return reply(400, { error: event });
  if (Math.abs(now() - event.occurredAt.getTime()) > MAX_AGE_MS) {
    return reply(401, { error: "stale event: eventTimestamp is more than 5 minutes from now" });
  }

  const sql = db();
  const stored = await sql`
    insert into public.webhook_events (provider, event_id, event_type, payload, occurred_at)
    values ('snaptrade', ${event.eventId}, ${event.eventType}, ${sql.json(body as never)}, ${event.occurredAt})
    on conflict (provider, event_id) do nothing
    returning id`;
  return reply(200, { received: true, duplicate: stored.length === 0 });
}

if (import.meta.main) {
  Deno.serve((req) => handler(req));
}
