// Usage metering: each answered call with a known key is recorded after its answer is
// made, off the request's path. Calls answered while a write is under way queue up and go
// in the next write, so a busy isolate makes one insert (public.api_record_calls) for many
// calls. On Supabase the isolate is kept alive until the write ends (EdgeRuntime.waitUntil).

export type Call = {
  key_id: string;
  user_id: string;
  endpoint: string;
  status: number;
  latency_ms: number;
  at: string;
};

// deno-lint-ignore no-explicit-any
type Sql = any;

const BATCH = 1000;
const pending: Call[] = [];
let writing: Promise<void> | null = null;

async function write(sql: Sql): Promise<void> {
  await Promise.resolve(); // let the calls answered in this tick join the batch
  try {
    while (pending.length) {
      const batch = pending.splice(0, BATCH);
      try {
        await sql`select public.api_record_calls(${sql.json(batch)})`;
      } catch (e) {
        console.error(JSON.stringify({ action: "api_usage_record_failed", calls: batch.length, error: String(e) }));
      }
    }
  } finally {
    writing = null;
  }
}

/** Queue one call's record; the write starts now unless one is under way. */
export function recordCall(sql: Sql, call: Call): void {
  pending.push(call);
  if (writing) return;
  writing = write(sql);
  // deno-lint-ignore no-explicit-any
  const runtime = (globalThis as any).EdgeRuntime;
  if (runtime?.waitUntil) runtime.waitUntil(writing);
}

/** Resolves when every queued record is written (tests; a graceful shutdown). */
export async function usageWritten(): Promise<void> {
  while (writing) await writing;
}
