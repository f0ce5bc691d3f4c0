// What every function answers with, and how every function reads a request body: at most
// MAX_BODY_BYTES, checked against Content-Length and against the bytes actually read.
import type { Bytes } from "./hmac.ts";

/** The largest request body any function accepts (1 MiB); larger ones get 413. */
export const MAX_BODY_BYTES = 1024 * 1024;

export function reply(status: number, body: Record<string, unknown>): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** The request body's bytes, or null once it is larger than `limit` (answer 413). */
export async function readBody(req: Request, limit = MAX_BODY_BYTES): Promise<Bytes | null> {
  const declared = req.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > limit) {
    await req.body?.cancel();
    return null;
  }
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/** The body as text, or null when it is not UTF-8 (a byte-order mark is kept, so JSON refuses it). */
export function decodeUtf8(bytes: Bytes): string | null {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** The caller's address: the first X-Forwarded-For entry, if it is an IP address. */
export function clientIp(req: Request): string | null {
  const first = (req.headers.get("x-forwarded-for") ?? "").split(",")[0].trim();
  if (/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(first)) return first;
  if (first.includes(":") && /^[0-9a-fA-F:.]{2,45}$/.test(first)) {
    try {
      new URL(`http://[${first}]/`);
      return first;
    } catch {
      return null;
    }
  }
  return null;
}
