// JSON bodies as Postgres can store them. Postgres `jsonb` refuses a NUL character
// (\u0000) and lone UTF-16 surrogates; the worker reads numbers as doubles, so a number
// beyond their range (1e400, or 1e-400 which underflows to 0) has no value, and neither
// has a number written with more than MAX_NUMBER_CHARS characters; nesting is bounded so
// that no parser, here or in Postgres, runs out of stack. Each is a 400 naming the problem.

/** The deepest nesting of arrays and objects a body may have. */
export const MAX_JSON_DEPTH = 64;
/** The longest number a body may write (a double has 17 significant digits). */
export const MAX_NUMBER_CHARS = 100;

export type JsonResult = { ok: true; value: unknown } | { ok: false; error: string };

/** How deep `text` nests arrays and objects, counted without parsing (so without recursion). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest) deepest = depth;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

function describe(s: string): string {
  return JSON.stringify(s.length > 40 ? s.slice(0, 40) + "…" : s);
}

function storable(s: string, what: string): string | null {
  if (s.includes("\u0000")) return `${what} ${describe(s)} contains a NUL character (\\u0000), which cannot be stored`;
  if (!s.isWellFormed()) return `${what} ${describe(s)} contains a lone UTF-16 surrogate, which cannot be stored`;
  return null;
}

function numberProblem(v: number, source: string): string | null {
  if (source.length > MAX_NUMBER_CHARS) return `a number has more than ${MAX_NUMBER_CHARS} characters`;
  const underflow = v === 0 && /[1-9]/.test(source.split(/[eE]/)[0]);
  if (!Number.isFinite(v) || underflow) return `number ${source} is out of range`;
  return null;
}

/**
 * Checks nesting and syntax of `text` and parses it; the reviver sees each number's
 * source text. Throws a SyntaxError or a RangeError (nesting) on bad input.
 */
export function parseJson(text: string, reviver?: (key: string, value: unknown, source: string | undefined) => unknown): unknown {
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) throw new RangeError(`body nests deeper than ${MAX_JSON_DEPTH} levels`);
  if (!reviver) return JSON.parse(text);
  return JSON.parse(text, function (key, value, context?: { source?: string }) {
    return reviver(key, value, context?.source);
  } as (this: unknown, key: string, value: unknown) => unknown);
}

/** Parses a body that Postgres can store as jsonb, or says why it cannot. */
export function parseStorableJson(text: string): JsonResult {
  let problem: string | null = null;
  let value: unknown;
  try {
    value = parseJson(text, (key, v, source) => {
      if (problem) return v;
      problem = storable(key, "key");
      if (!problem && typeof v === "string") problem = storable(v, "string");
      if (!problem && typeof v === "number") problem = numberProblem(v, source ?? String(v));
      return v;
    });
  } catch (e) {
    if (e instanceof RangeError) return { ok: false, error: e.message };
    return { ok: false, error: `body is not JSON (${(e as Error).message})` };
  }
  return problem ? { ok: false, error: problem } : { ok: true, value };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
