// Usage metering: each answered call with a known key is recorded after its answer is
// made, off the request's path. A record waits a moment (DELAY_MS): the isolate's next
// request takes the waiting records along in its own public.api_authorize call, so in
// steady traffic metering costs no round trip of its own. When no request comes, or while
// a write is under way, they go in one insert (public.api_record_calls) for many calls. On
// Supabase the isolate is kept alive until the write ends (EdgeRuntime.waitUntil).

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
const DELAY_MS = 50;
const pending: Call[] = [];
let writing: Promise<void> | null = null;

async function write(sql: Sql): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, DELAY_MS));
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

function schedule(sql: Sql): void {
  if (writing || !pending.length) return;
  writing = write(sql);
  // deno-lint-ignore no-explicit-any
  const runtime = (globalThis as any).EdgeRuntime;
  if (runtime?.waitUntil) runtime.waitUntil(writing);
}

/** Queue one call's record; it is written with the next request, or shortly. */
export function recordCall(sql: Sql, call: Call): void {
  pending.push(call);
  schedule(sql);
}

/** The waiting records, for a request's api_authorize call to carry (null: none). */
export function takeCalls(): Call[] | null {
  return pending.length ? pending.splice(0, BATCH) : null;
}

/** Records taken by a request whose api_authorize call failed: queued again. */
export function returnCalls(sql: Sql, calls: Call[] | null): void {
  if (!calls) return;
  pending.unshift(...calls);
  schedule(sql);
}

/** Resolves when every queued record is written (tests; a graceful shutdown). */
export async function usageWritten(): Promise<void> {
  while (writing) await writing;
}
