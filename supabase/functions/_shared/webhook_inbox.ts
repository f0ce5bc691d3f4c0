// Receiving a webhook, the same way for every provider, and the inbox it lands in.
//
// `receiveWebhook` runs the checks in one order: method, the per-source rate limit
// (the provider and the sender's address, 429 past perAddressPerMinute()), the server-side secret, body
// size (413 past MAX_BODY_BYTES), the signature over the raw bytes (before anything is
// parsed), UTF-8, then JSON that Postgres can store (400 naming the problem). A verified
// delivery is stored once per (provider, event id) in public.webhook_events by
// `storeEvent` and answered at once; the fleet does the work (a trigger on the inbox
// enqueues the job). A re-delivery changes nothing: a trigger on the inbox skips an event
// whose (provider, event id) private.webhook_event_keys holds, for ever, also after the
// event itself went with its week.
import { db } from "./db.ts";
import type { Bytes } from "./hmac.ts";
import { clientIp, decodeUtf8, MAX_BODY_BYTES, readBody, reply } from "./http.ts";
import { isRecord, parseStorableJson } from "./json_body.ts";
import { limitSource, perAddressPerMinute } from "./webhook_limit.ts";

export type InboxProvider = "snaptrade" | "stripe" | "paystack" | "tripay";

/** The outcome of a signature check; `status` defaults to 401. */
export type Check = { ok: true } | { ok: false; error: string; status?: 400 | 401 };

export interface Delivery {
  /** The body as received, as text: valid UTF-8 and JSON that Postgres can store. */
  text: string;
  payload: Record<string, unknown>;
}

export interface WebhookOptions {
  /** The provider, to limit deliveries per provider and address (unset: no limit here). */
  source?: string;
  /** The env var holding the provider's secret; unset is the operator's fault (500). */
  secretName?: string;
  /** Verifies the delivery from its raw bytes and headers. */
  verify?: (bytes: Bytes, req: Request, secret: string) => Promise<Check>;
  /** How this provider wants errors worded (default `{"error": message}`). */
  fail?: (status: number, message: string) => Response;
}

const defaultFail = (status: number, error: string) => reply(status, { error });

/** The delivery, or the response that refuses it. */
export async function receiveWebhook(req: Request, options: WebhookOptions = {}): Promise<Delivery | Response> {
  const fail = options.fail ?? defaultFail;
  if (req.method !== "POST") return fail(405, "method not allowed: use POST");
  if (options.source) {
    const limited = await limitSource(`${options.source}:${clientIp(req) ?? "unknown"}`, perAddressPerMinute());
    if (limited) {
      await req.body?.cancel();
      return limited;
    }
  }
  let secret = "";
  if (options.secretName) {
    secret = Deno.env.get(options.secretName) ?? "";
    if (!secret) {
      return fail(500, `the server is not configured: set the ${options.secretName} secret (supabase secrets set)`);
    }
  }
  const bytes = await readBody(req);
  if (bytes === null) return fail(413, `body is larger than ${MAX_BODY_BYTES} bytes`);
  if (options.verify) {
    const check = await options.verify(bytes, req, secret);
    if (!check.ok) return fail(check.status ?? 401, check.error);
  }
  const text = decodeUtf8(bytes);
  if (text === null) return fail(400, "body is not valid UTF-8");
  const parsed = parseStorableJson(text);
  if (!parsed.ok) return fail(400, parsed.error);
  if (!isRecord(parsed.value)) return fail(400, "body must be a JSON object");
  return { text, payload: parsed.value };
}

export interface Stored {
  id: string;
  duplicate: boolean;
}

/** Stores a delivery once per (provider, event id); `text` is stored as received. A
 * duplicate answers the id of the event first stored (which retention may have dropped). */
export async function storeEvent(
  provider: InboxProvider,
  eventId: string,
  eventType: string,
  text: string,
  occurredAt: Date | null,
): Promise<Stored> {
  const sql = db();
  const rows = await sql<{ id: string; inserted: boolean }[]>`
    with ins as (
      insert into public.webhook_events (provider, event_id, event_type, payload, occurred_at)
      values (${provider}, ${eventId}, ${eventType}, (${text}::text)::jsonb, ${occurredAt})
      returning id
    )
    select id, true as inserted from ins
    union all
    select id, false from private.webhook_event_keys
     where provider = ${provider} and event_id = ${eventId} and not exists (select 1 from ins)`;
  if (rows.length > 0) return { id: rows[0].id, duplicate: !rows[0].inserted };
  // A first delivery of the same event committed while this one waited on its key: the
  // statement's snapshot predates that commit, so the key is read again in a new one.
  const [first] = await sql<{ id: string }[]>`
    select id from private.webhook_event_keys where provider = ${provider} and event_id = ${eventId}`;
  if (!first) throw new Error(`webhook event ${provider}/${eventId} was neither stored nor found`);
  return { id: first.id, duplicate: true };
}
