// Webhook deliveries limited per source, in Postgres (public.webhook_rate_take, a GCRA
// bucket per source): a provider's address, or a TradingView alert token. A source past its
// allowance gets 429 with Retry-After and the RateLimit-* headers, before its body is read.
import { db } from "./db.ts";

/** Deliveries a minute one provider address may send (bursts of retries fit easily);
 * WEBHOOK_RATE_PER_MINUTE overrides it. */
export function perAddressPerMinute(): number {
  const set = Number(Deno.env.get("WEBHOOK_RATE_PER_MINUTE") ?? "");
  return Number.isInteger(set) && set >= 1 ? set : 600;
}
/** Alerts a minute one TradingView token may send. */
export const PER_TOKEN_PER_MINUTE = 60;

/** The 429 reply when `source` is past `perMinute` deliveries a minute, else null. */
export async function limitSource(source: string, perMinute: number): Promise<Response | null> {
  const [row] = await db()<{ r: Record<string, number | boolean> }[]>`
    select public.webhook_rate_take(${source.slice(0, 200)}, ${perMinute}) as r`;
  const r = row.r;
  if (r.allowed) return null;
  return new Response(
    JSON.stringify({ error: `too many deliveries from this source: at most ${perMinute} a minute; retry later` }),
    {
      status: 429,
      headers: {
        "content-type": "application/json",
        "Retry-After": String(r.retry_after),
        "RateLimit-Limit": String(r.limit),
        "RateLimit-Remaining": String(r.remaining),
        "RateLimit-Reset": String(r.reset),
      },
    },
  );
}
