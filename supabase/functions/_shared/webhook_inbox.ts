// The webhook inbox: a verified delivery is stored once per (provider, event id) in
// public.webhook_events and answered at once; the fleet does the work (a trigger on the
// inbox enqueues the job). A re-delivery finds the row and changes nothing.
import { db } from "./db.ts";

export type InboxProvider = "stripe" | "paystack" | "tripay" | "tradingview";

export interface Stored {
  id: string;
  duplicate: boolean;
}

export async function storeEvent(
  provider: InboxProvider,
  eventId: string,
  eventType: string,
  payload: unknown,
  occurredAt: Date | null,
): Promise<Stored> {
  const sql = db();
  const rows = await sql<{ id: string; inserted: boolean }[]>`
    with ins as (
      insert into public.webhook_events (provider, event_id, event_type, payload, occurred_at)
      values (${provider}, ${eventId}, ${eventType}, ${sql.json(payload as never)}, ${occurredAt})
      on conflict (provider, event_id) do nothing
      returning id
    )
    select id, true as inserted from ins
    union all
    select id, false from public.webhook_events
     where provider = ${provider} and event_id = ${eventId} and not exists (select 1 from ins)`;
  return { id: rows[0].id, duplicate: !rows[0].inserted };
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parse a raw body as a JSON object, or null when it is not one. */
export function parseObject(raw: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(raw);
    return isRecord(v) ? v : null;
  } catch {
    return null;
  }
}
