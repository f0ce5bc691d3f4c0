// HMAC-SHA256, base64 and canonical JSON with WebCrypto only: what signed webhooks
// (SnapTrade, payment providers) and signed API requests need.

const encoder = new TextEncoder();

/** Bytes backed by a plain ArrayBuffer (what WebCrypto accepts). */
export type Bytes = Uint8Array<ArrayBuffer>;

function toBytes(value: string | Bytes): Bytes {
  return typeof value === "string" ? encoder.encode(value) : value;
}

export function base64Encode(bytes: Bytes): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Decodes standard or URL-safe base64, with or without padding. Throws on bad input. */
export function base64Decode(text: string): Bytes {
  let normalized = text.replace(/-/g, "+").replace(/_/g, "/");
  while (normalized.length % 4) normalized += "=";
  const binary = atob(normalized);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export function base64UrlEncode(bytes: Bytes): string {
  return base64Encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function hmacSha256(key: string | Bytes, message: string | Bytes): Promise<Bytes> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw", toBytes(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, toBytes(message)));
}

export async function hmacSha256Base64(key: string | Bytes, message: string | Bytes): Promise<string> {
  return base64Encode(await hmacSha256(key, message));
}

/** Constant-time comparison (length is not secret). */
export function timingSafeEqual(a: Bytes, b: Bytes): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function escapeString(value: string): string {
  // JSON.stringify, then escape non-ASCII as \uXXXX: byte-identical to Python's
  // json.dumps(..., sort_keys=True, separators=(",", ":")), which signers commonly use.
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/** JSON with object keys sorted (by code point) and no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return escapeString(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError("canonical JSON has no NaN or Infinity");
    return JSON.stringify(value);
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (Array.isArray(value)) return "[" + value.map((v) => canonicalJson(v)).join(",") + "]";
  if (typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return "{" + keys.map((k) => escapeString(k) + ":" + canonicalJson(obj[k])).join(",") + "}";
  }
  throw new TypeError(`cannot encode ${typeof value} as JSON`);
}
