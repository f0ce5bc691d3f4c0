// Helpers for the webhook functions' tests: signed requests and inbox lookups.
import { closeDb, db } from "./db.ts";

export function t(name: string, fn: () => Promise<void>): void {
  // The pooled database connection outlives a test on purpose; it is closed by `done()`.
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

export function done(): void {
  t("close the database pool", async () => await closeDb());
}

export function post(url: string, body: string, headers: Record<string, string>): Request {
  return new Request(url, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
}

export async function inbox(provider: string, eventId: string): Promise<{ rows: number; jobs: number }> {
  const sql = db();
  const [r] = await sql<{ rows: number; jobs: number }[]>`
    select (select count(*)::int from public.webhook_events where provider = ${provider} and event_id = ${eventId}) as rows,
           (select count(*)::int from public.jobs
             where kind = 'billing.webhook' and idempotency_key = ${`billing-webhook:${provider}:${eventId}`}) as jobs`;
  return r;
}
