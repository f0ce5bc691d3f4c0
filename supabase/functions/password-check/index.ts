// Is this password in a known breach? For apps to call at sign-up and password change.
// POST {password} -> 200 {pwned: boolean, count: integer}
// k-anonymity: the password's SHA-1 is computed here and only its first five hex characters
// go to the Pwned Passwords range API (with Add-Padding, so the answer's size says nothing);
// the suffixes that come back ("SUFFIX:COUNT" lines; padding entries count 0) are compared
// here. Neither the password nor its full hash leaves the function or is logged.
// PWNED_PASSWORDS_URL overrides the range API's base (default https://api.pwnedpasswords.com/range/).
import { decodeUtf8, readBody, reply } from "../_shared/http.ts";
import { isRecord, parseStorableJson } from "../_shared/json_body.ts";

/** The largest body taken: a password of at most MAX_PASSWORD characters in JSON. */
const MAX_BODY = 4096;
export const MAX_PASSWORD = 1024;
const TIMEOUT_MS = 5000;

export async function sha1Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
}

/** How often `suffix` appears in a range answer; padding entries (count 0) never match. */
export function countIn(rangeBody: string, suffix: string): number {
  for (const line of rangeBody.split(/\r?\n/)) {
    const [s, c] = line.trim().split(":");
    if (s && c && s.toUpperCase() === suffix) {
      const n = Number(c);
      return Number.isSafeInteger(n) && n > 0 ? n : 0;
    }
  }
  return 0;
}

export async function handler(req: Request): Promise<Response> {
  if (req.method !== "POST") return reply(405, { error: "use POST" });
  const bytes = await readBody(req, MAX_BODY);
  if (bytes === null) return reply(413, { error: `body is larger than ${MAX_BODY} bytes` });
  const text = decodeUtf8(bytes);
  if (text === null) return reply(400, { error: "body is not valid UTF-8" });
  const parsed = parseStorableJson(text);
  if (!parsed.ok) return reply(400, { error: parsed.error });
  if (!isRecord(parsed.value)) return reply(400, { error: "body must be a JSON object" });
  const password = parsed.value.password;
  if (typeof password !== "string" || password.length === 0) {
    return reply(400, { error: "password is required (a non-empty string)", field: "password" });
  }
  if (password.length > MAX_PASSWORD) {
    return reply(400, { error: `password is longer than ${MAX_PASSWORD} characters`, field: "password" });
  }
  const hash = await sha1Hex(password);
  const base = Deno.env.get("PWNED_PASSWORDS_URL") || "https://api.pwnedpasswords.com/range/";
  let body: string;
  try {
    const res = await fetch(`${base}${hash.slice(0, 5)}`, {
      headers: { "Add-Padding": "true", "User-Agent": "tradefleet-password-check" },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (!res.ok) {
      await res.body?.cancel();
      return reply(503, { error: `the breach check is unavailable (range API answered ${res.status})` });
    }
    body = await res.text();
  } catch {
    return reply(503, { error: "the breach check is unavailable (range API unreachable)" });
  }
  const count = countIn(body, hash.slice(5));
  return reply(200, { pwned: count > 0, count });
}

if (import.meta.main) {
  Deno.serve(handler);
}
