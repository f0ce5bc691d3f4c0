// Payment-provider webhook signatures, verified over the exact raw body bytes (never
// decoded or re-serialised), compared in constant time. Web Crypto only (Deno built-in).
import { type Bytes, timingSafeEqual } from "./hmac.ts";

const encoder = new TextEncoder();

export type HmacAlgorithm = "SHA-256" | "SHA-512";

function bytesOf(value: string | Bytes): Bytes {
  return typeof value === "string" ? encoder.encode(value) : value;
}

/** Lower-case hex HMAC of `body` under `secret`. */
export async function hmacHex(algorithm: HmacAlgorithm, secret: string, body: string | Bytes): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: algorithm }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, bytesOf(body)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sameText(a: string, b: string): boolean {
  return timingSafeEqual(encoder.encode(a), encoder.encode(b));
}

export type Verdict = { ok: true } | { ok: false; reason: "missing" | "malformed" | "stale" | "mismatch" };

/**
 * Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…][,v0=…]`, HMAC-SHA256 over
 * `"{t}."` followed by the raw body; any v1 may match; the timestamp must be within
 * `toleranceS` of now.
 */
export async function verifyStripe(
  header: string | null,
  rawBody: Bytes,
  secret: string,
  toleranceS = 300,
  nowS = Math.floor(Date.now() / 1000),
): Promise<Verdict> {
  if (!header) return { ok: false, reason: "missing" };
  let timestamp: string | undefined;
  const v1: string[] = [];
  for (const part of header.split(",")) {
    const i = part.indexOf("=");
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (k === "t") timestamp = v;
    else if (k === "v1") v1.push(v.toLowerCase());
  }
  if (!timestamp || !/^\d{1,12}$/.test(timestamp) || v1.length === 0) return { ok: false, reason: "malformed" };
  const prefix = encoder.encode(`${timestamp}.`);
  const signed = new Uint8Array(prefix.length + rawBody.length);
  signed.set(prefix);
  signed.set(rawBody, prefix.length);
  const expected = await hmacHex("SHA-256", secret, signed);
  if (!v1.some((sig) => sameText(sig, expected))) return { ok: false, reason: "mismatch" };
  // Checked after the signature, so a forged header cannot probe the clock.
  if (Math.abs(nowS - Number(timestamp)) > toleranceS) return { ok: false, reason: "stale" };
  return { ok: true };
}

/** Paystack: `x-paystack-signature` = hex HMAC-SHA512 of the raw body under the secret key. */
export async function verifyPaystack(header: string | null, rawBody: Bytes, secret: string): Promise<Verdict> {
  if (!header) return { ok: false, reason: "missing" };
  const expected = await hmacHex("SHA-512", secret, rawBody);
  return sameText(header.trim().toLowerCase(), expected) ? { ok: true } : { ok: false, reason: "mismatch" };
}

/** Tripay: `X-Callback-Signature` = hex HMAC-SHA256 of the raw body under the private key. */
export async function verifyTripay(header: string | null, rawBody: Bytes, secret: string): Promise<Verdict> {
  if (!header) return { ok: false, reason: "missing" };
  const expected = await hmacHex("SHA-256", secret, rawBody);
  return sameText(header.trim().toLowerCase(), expected) ? { ok: true } : { ok: false, reason: "mismatch" };
}
