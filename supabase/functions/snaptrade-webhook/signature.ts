// SnapTrade's webhook signature, computed as SnapTrade's documentation computes it
// (docs/webhooks.md of passiv/snaptrade-sdks, "Verifying Webhook Authenticity"):
//
//   payload = request.get_json()
//   sig_content = json.dumps(payload, separators=(",", ":"), sort_keys=True)
//   signature = b64encode(hmac.new(CONSUMER_KEY.encode(), sig_content.encode(), sha256).digest())
//
// So the signed bytes are not the raw body but Python's serialisation of the parsed body:
// keys sorted by code point, no whitespace, every character outside printable ASCII
// escaped as \uXXXX (UTF-16, lower-case hex), integers as Python prints them and floats as
// Python's repr() prints them (100.0, 1e-07, 1e+16). `pythonSortedJson` reproduces that
// from the body's text, keeping each number's source text so no formatting is lost.
import { type Bytes, hmacSha256, base64Decode, timingSafeEqual } from "../_shared/hmac.ts";
import { parseJson } from "../_shared/json_body.ts";

class PyNumber {
  constructor(readonly source: string) {}
}

/** A JSON number's text as Python's json.loads + json.dumps give it back. */
export function pythonNumber(source: string): string {
  if (!/[.eE]/.test(source)) return source === "-0" ? "0" : source; // an int: JSON forbids leading zeros
  const x = Number(source); // float(): the same correctly rounded double
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  // toExponential() gives the shortest digits that round-trip, as repr() does.
  const [mantissa, exp] = Math.abs(x).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const decpt = Number(exp) + 1; // x = 0.DIGITS * 10^decpt
  if (decpt <= -4 || decpt > 16) {
    const e = decpt - 1;
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

/** A string as json.dumps(ensure_ascii=True) writes it. */
function pythonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else if (c === 0x08) out += "\\b";
    else if (c === 0x0c) out += "\\f";
    else if (c < 0x20 || c > 0x7e) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += s[i];
  }
  return out + '"';
}

/** Python orders str keys by code point (JavaScript's sort compares UTF-16 units). */
function byCodePoint(a: string, b: string): number {
  const x = [...a], y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function dump(v: unknown): string {
  if (v === null) return "null";
  if (v === true) return "true";
  if (v === false) return "false";
  if (v instanceof PyNumber) return pythonNumber(v.source);
  if (typeof v === "string") return pythonString(v);
  if (Array.isArray(v)) return "[" + v.map(dump).join(",") + "]";
  const obj = v as Record<string, unknown>;
  return "{" + Object.keys(obj).sort(byCodePoint).map((k) => pythonString(k) + ":" + dump(obj[k])).join(",") + "}";
}

/**
 * json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True). Throws a
 * SyntaxError for text that is not JSON and a RangeError for nesting beyond the limit.
 */
export function pythonSortedJson(text: string): string {
  return dump(parseJson(text, (_key, value, source) => typeof value === "number" ? new PyNumber(source ?? String(value)) : value));
}

/** True when `signature` (base64) is SnapTrade's signature of the JSON `text` under `consumerKey`. */
export async function verifySnapTrade(text: string, consumerKey: string, signature: string | null): Promise<boolean> {
  const signed = pythonSortedJson(text); // first, so a body that is not JSON is a 400 whatever the header
  if (!signature) return false;
  let given: Bytes;
  try {
    given = base64Decode(signature.trim());
  } catch {
    return false;
  }
  return timingSafeEqual(await hmacSha256(consumerKey, signed), given);
}
