// Helpers for the webhook functions' tests: signed requests and inbox lookups.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { closeDb, db } from "./db.ts";
import type { Bytes } from "./hmac.ts";

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

export interface BadBytesTarget {
  provider: string;
  handler: (req: Request) => Promise<Response>;
  /** The URL deliveries are posted to. */
  url: string | (() => string);
  /** A fresh, valid delivery (a JSON object) and how many rows it left behind. */
  event: () => Promise<{ raw: string; stored: () => Promise<number> }>;
  /** Headers that sign `body` correctly (a wrong signature when the provider could not sign it). */
  sign: (body: Bytes) => Promise<Record<string, string>>;
  /** The answer to a badly signed body, when the signature covers the raw bytes (checked first). */
  unsignedStatus?: 401;
}

const enc = new TextEncoder();

function withExtra(raw: string, fragment: string | Bytes): Bytes {
  const head = enc.encode(raw.slice(0, raw.lastIndexOf("}")) + ',"extra":');
  const mid = typeof fragment === "string" ? enc.encode(fragment) : fragment;
  const tail = enc.encode("}");
  const out = new Uint8Array(head.length + mid.length + tail.length);
  out.set(head);
  out.set(mid, head.length);
  out.set(tail, head.length + mid.length);
  return out;
}

const DEEP = "[".repeat(20_000) + "]".repeat(20_000);

/** Bodies a signer may well sign that Postgres cannot store: each gets 400 naming the problem. */
export const BAD_BODIES: [string, string | Bytes, RegExp][] = [
  ["a NUL character in a string", '"a\\u0000b"', /NUL/],
  ["a NUL character in a key", '{"k\\u0000":1}', /NUL/],
  ["a lone high surrogate", '"\\ud800"', /surrogate/],
  ["a lone low surrogate in a key", '{"\\udc00x":1}', /surrogate/],
  ["a number beyond a double (1e400)", "1e400", /out of range/],
  ["a number that underflows (1e-400)", "[1e-400]", /out of range/],
  ["nesting 20,000 levels deep", DEEP, /deeper than 64/],
  ["bytes that are not UTF-8", new Uint8Array([0x22, 0xff, 0xfe, 0x22]), /UTF-8/],
];

async function send(target: BadBytesTarget, body: Bytes, headers: Record<string, string>): Promise<Response> {
  return await target.handler(
    new Request(typeof target.url === "string" ? target.url : target.url(), { method: "POST", body, headers: { "content-type": "application/json", ...headers } }),
  );
}

async function errorOf(res: Response): Promise<string> {
  const body = await res.json();
  return String(body.error ?? body.message);
}

/** Registers the tests every webhook function must pass, whatever bytes it is sent. */
export function badBytesTests(target: BadBytesTarget): void {
  for (const [name, fragment, mention] of BAD_BODIES) {
    t(`${target.provider}: a signed body with ${name} gets 400 and stores nothing`, async () => {
      const { raw, stored } = await target.event();
      const body = withExtra(raw, fragment);
      const res = await send(target, body, await target.sign(body));
      const error = await errorOf(res);
      assertEquals([res.status, mention.test(error)], [400, true], error);
      assertEquals(await stored(), 0);
    });
  }

  t(`${target.provider}: unsigned hostile bodies get 4xx, never 5xx, and store nothing`, async () => {
    for (const fragment of ["1e400", DEEP, '"\\u0000"']) {
      const { raw, stored } = await target.event();
      const res = await send(target, withExtra(raw, fragment), { signature: "AAAA", "stripe-signature": "t=1,v1=00" });
      await res.body?.cancel();
      if (res.status < 400 || res.status >= 500) throw new Error(`${fragment.slice(0, 10)}: status ${res.status}`);
      if (target.unsignedStatus) assertEquals(res.status, target.unsignedStatus, fragment.slice(0, 10));
      assertEquals(await stored(), 0);
    }
  });

  t(`${target.provider}: a body over 1 MiB gets 413, by its length or by its bytes`, async () => {
    const { raw, stored } = await target.event();
    const big = withExtra(raw, JSON.stringify("x".repeat(1024 * 1024)));
    const res = await send(target, big, await target.sign(big));
    assertEquals([res.status, /larger than 1048576 bytes/.test(await errorOf(res))], [413, true]);
    const small = enc.encode(raw);
    const declared = await send(target, small, { ...(await target.sign(small)), "content-length": "2000000" });
    assertEquals(declared.status, 413);
    await declared.body?.cancel();
    assertEquals(await stored(), 0);
  });

  t(`${target.provider}: a signed body with non-ASCII text and its own spacing is accepted as sent`, async () => {
    const { raw, stored } = await target.event();
    const note = `prix à jour ✓ 😀 ${crypto.randomUUID()}`;
    const body = withExtra(raw.replace(/,"/g, ', "'), ` { "note" : "${note}" , "n": 100.0 } `);
    const res = await send(target, body, await target.sign(body));
    await res.body?.cancel();
    if (res.status >= 300) throw new Error(`status ${res.status}`);
    assertEquals(await stored(), 1);
    if (target.provider === "tradingview") return; // alerts become signals, not inbox rows
    const rows = await db()`select payload -> 'extra' ->> 'n' as n from public.webhook_events
                            where provider = ${target.provider} and payload -> 'extra' ->> 'note' = ${note}`;
    assertEquals(rows.map((r) => r.n), ["100.0"]);
  });
}
