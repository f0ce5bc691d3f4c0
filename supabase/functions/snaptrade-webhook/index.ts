// SnapTrade webhooks: verify, reject stale, store once in the inbox, answer fast.
// The work happens in the worker fleet: a trigger on webhook_events enqueues the job.
//
// Signature: base64 HMAC-SHA256, keyed with the SnapTrade consumer key
// (SNAPTRADE_CONSUMER_KEY), of Python's sorted, compact json.dumps of the parsed body
// (see signature.ts). The body must be parsed to check it, so the parse is bounded
// (size, nesting) and any failure is a 400, never a 5xx.
import { decodeUtf8, reply } from "../_shared/http.ts";
import { receiveWebhook, storeEvent } from "../_shared/webhook_inbox.ts";
import { verifySnapTrade } from "./signature.ts";

export const MAX_AGE_MS = 5 * 60 * 1000;

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
  const delivery = await receiveWebhook(req, {
    source: "snaptrade",
    secretName: "SNAPTRADE_CONSUMER_KEY",
    verify: async (bytes, req, key) => {
      const text = decodeUtf8(bytes);
      if (text === null) return { ok: false, status: 400, error: "body is not valid UTF-8" };
      try {
        if (await verifySnapTrade(text, key, req.headers.get("signature"))) return { ok: true };
      } catch (e) {
        const problem = e instanceof RangeError ? e.message : `body is not JSON (${(e as Error).message})`;
        return { ok: false, status: 400, error: problem };
      }
      return { ok: false, error: "invalid signature" };
    },
  });
  if (delivery instanceof Response) return delivery;
  const event = parseEvent(delivery.payload);
  if (typeof event === "string") return reply(400, { error: event });
  if (Math.abs(now() - event.occurredAt.getTime()) > MAX_AGE_MS) {
    return reply(401, { error: "stale event: eventTimestamp is more than 5 minutes from now" });
  }
  const stored = await storeEvent("snaptrade", event.eventId, event.eventType, delivery.text, event.occurredAt);
  return reply(200, { received: true, duplicate: stored.duplicate });
}

if (import.meta.main) {
  Deno.serve((req) => handler(req));
}
