// Stores a user's exchange API key sealed, so the plaintext never rests in a table.
// POST (Supabase user JWT) {exchange, api_key, secret, password?, label?, testnet?}
//   -> 201 {id, exchange, label, api_key_hint, is_testnet, key_id}
// The secret is sealed with AES-256-GCM under the current master key
// (TRADEFLEET_MASTER_KEYS), in the envelope worker/sealing/keyring.py opens; the same
// (user, exchange, label) replaces the earlier key. Plaintext is never returned or logged.
import { db } from "../_shared/db.ts";
import { reply } from "../_shared/http.ts";
import { readUserBody, userId } from "../_shared/user_request.ts";
import { seal, SealConfigError } from "../_shared/seal.ts";

export const EXCHANGES = ["binance", "bybit", "mexc", "bitget", "kraken", "coinbase", "okx", "kucoin", "gate"];

type Input = { exchange: string; apiKey: string; secret: string; password: string | null; label: string; testnet: boolean };

function text(value: unknown, name: string, required: boolean, max = 512): string | null {
  if (value === undefined || value === null || value === "") {
    if (required) throw new Error(`${name} is required`);
    return null;
  }
  if (typeof value !== "string") throw new Error(`${name} must be a string`);
  const v = value.trim();
  if (!v && required) throw new Error(`${name} is required`);
  if (v.length > max) throw new Error(`${name} is longer than ${max} characters`);
  return v || null;
}

function parse(b: Record<string, unknown>): Input {
  const exchange = text(b.exchange, "exchange", true, 32)!.toLowerCase();
  if (!EXCHANGES.includes(exchange)) throw new Error(`exchange must be one of ${EXCHANGES.join(", ")}`);
  if (b.testnet !== undefined && typeof b.testnet !== "boolean") throw new Error("testnet must be true or false");
  return {
    exchange,
    apiKey: text(b.api_key, "api_key", true)!,
    secret: text(b.secret, "secret", true)!,
    password: text(b.password, "password", false),
    label: text(b.label, "label", false, 64) ?? "default",
    testnet: b.testnet === true,
  };
}

/** What the app shows instead of the key: its last four characters. */
export function hint(apiKey: string): string {
  return apiKey.length <= 4 ? "****" : `****${apiKey.slice(-4)}`;
}

export async function handler(req: Request): Promise<Response> {
  if (req.method !== "POST") return reply(405, { error: "use POST" });
  const user = await userId(req);
  if (user instanceof Response) return user;
  const body = await readUserBody(req);
  if (body instanceof Response) return body;
  let input: Input;
  try {
    input = parse(body);
  } catch (e) {
    return reply(400, { error: (e as Error).message });
  }
  let sealed: string;
  try {
    sealed = await seal(JSON.stringify({ api_key: input.apiKey, secret: input.secret, password: input.password }));
  } catch (e) {
    if (e instanceof SealConfigError) return reply(500, { error: `the server is not configured: ${e.message}` });
    throw e;
  }
  const keyId = sealed.split(":")[1];
  const rows = await db()`
    insert into public.exchange_credentials (user_id, exchange, label, sealed_secret, key_id, api_key_hint, is_testnet)
    values (${user}, ${input.exchange}, ${input.label}, ${sealed}, ${keyId}, ${hint(input.apiKey)}, ${input.testnet})
    on conflict on constraint exchange_credentials_one_label_per_exchange do update
      set sealed_secret = excluded.sealed_secret, key_id = excluded.key_id, api_key_hint = excluded.api_key_hint,
          is_testnet = excluded.is_testnet
    returning id, exchange, label, api_key_hint, is_testnet, key_id`;
  const r = rows[0];
  return reply(201, {
    id: r.id, exchange: r.exchange, label: r.label, api_key_hint: r.api_key_hint, is_testnet: r.is_testnet,
    key_id: r.key_id,
  });
}

if (import.meta.main) {
  Deno.serve(handler);
}
