// Run from supabase/functions with SUPABASE_DB_URL pointing at a migrated database:
//   deno test --allow-net --allow-env --allow-read --allow-run
// The cross-check opens what was stored with the worker's Python Keyring.
import { closeDb, db } from "../_shared/db.ts";
import { base64Encode } from "../_shared/hmac.ts";
import { SUPABASE_URL, userToken } from "../_shared/jwt_test_utils.ts";
import { handler } from "./index.ts";

const JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters";
const ROOT = new URL("../../../", import.meta.url).pathname;

function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}

function setup(): string {
  const keys = `k2:${base64Encode(crypto.getRandomValues(new Uint8Array(32)))},` +
    `k1:${base64Encode(crypto.getRandomValues(new Uint8Array(32)))}`;
  Deno.env.set("TRADEFLEET_JWT_SECRET", JWT_SECRET);
  Deno.env.set("SUPABASE_URL", SUPABASE_URL);
  Deno.env.set("TRADEFLEET_MASTER_KEYS", keys);
  return keys;
}

async function newUser(): Promise<string> {
  const id = crypto.randomUUID();
  await db()`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
             values (${id}, 'authenticated', 'authenticated', ${id + "@test.local"}, now(), '{"role":"user"}', '{}', now(), now())`;
  return id;
}

async function token(sub: string, overrides: Record<string, unknown> = {}, secret = JWT_SECRET): Promise<string> {
  return await userToken(sub, new TextEncoder().encode(secret), overrides);
}

function call(jwt: string | null, body: unknown): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (jwt) headers.authorization = `Bearer ${jwt}`;
  return handler(new Request("http://localhost/exchange-credentials", { method: "POST", headers, body: JSON.stringify(body) }));
}

async function pythonOpens(keys: string, sealed: string): Promise<Record<string, unknown>> {
  const code = "import json, sys; from worker.exchanges import ExchangeCredentials; " +
    "from worker.sealing import SealingSettings; " +
    "c = ExchangeCredentials.open(SealingSettings().keyring(), sys.stdin.read()); " +
    "print(json.dumps({'api_key': c.api_key, 'secret': c.secret, 'password': c.password}))";
  const child = new Deno.Command(`${ROOT}.venv/bin/python`, {
    args: ["-c", code], cwd: ROOT, env: { TRADEFLEET_MASTER_KEYS: keys }, stdin: "piped", stdout: "piped", stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(sealed));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("a user's key is stored sealed under the current master key and the worker opens it", async () => {
  const keys = setup();
  try {
    const user = await newUser();
    const res = await call(await token(user), {
      exchange: "binance", api_key: "AKIA-plain-api-key-7Q2x", secret: "s3cr3t-plain-value", label: "main", testnet: true,
    });
    assertEquals(res.status, 201);
    const body = await res.json();
    assertEquals([body.exchange, body.label, body.api_key_hint, body.is_testnet, body.key_id],
      ["binance", "main", "****7Q2x", true, "k2"]);
    const text = JSON.stringify(body);
    if (text.includes("plain")) throw new Error("plaintext in the response");
    const rows = await db()`select user_id, sealed_secret, key_id from public.exchange_credentials where id = ${body.id}`;
    assertEquals([rows[0].user_id, rows[0].key_id], [user, "k2"]);
    const sealed = rows[0].sealed_secret as string;
    if (!sealed.startsWith("v1:k2:") || sealed.includes("plain")) throw new Error(`not sealed: ${sealed}`);
    assertEquals(await pythonOpens(keys, sealed),
      { api_key: "AKIA-plain-api-key-7Q2x", secret: "s3cr3t-plain-value", password: null });

    // The same exchange and label replaces the key.
    const again = await call(await token(user), {
      exchange: "binance", api_key: "second-key-ABCD", secret: "x", password: "pw", label: "main",
    });
    assertEquals(again.status, 201);
    assertEquals((await again.json()).id, body.id);
    const n = await db()`select count(*)::int as n, max(api_key_hint) as h from public.exchange_credentials where user_id = ${user}`;
    assertEquals([n[0].n, n[0].h], [1, "****ABCD"]);
  } finally {
    await closeDb();
  }
});

Deno.test("bad requests are refused with a reason and store nothing", async () => {
  setup();
  try {
    const user = await newUser();
    const jwt = await token(user);
    assertEquals((await call(null, { exchange: "binance", api_key: "a", secret: "b" })).status, 401);
    assertEquals((await call(await token(user, {}, "another-secret-that-is-long-enough!!"), {})).status, 401);
    const bad = await call(jwt, { exchange: "nasdaq", api_key: "a", secret: "b" });
    assertEquals(bad.status, 400);
    if (!(await bad.json()).error.includes("exchange")) throw new Error("error does not name the field");
    const missing = await call(jwt, { exchange: "bybit", api_key: "a" });
    assertEquals([missing.status, (await missing.json()).error], [400, "secret is required"]);
    const raw = (body: string, headers: Record<string, string> = {}) =>
      handler(new Request("http://localhost/exchange-credentials", {
        method: "POST", body, headers: { authorization: `Bearer ${jwt}`, ...headers },
      }));
    const nul = await raw('{"exchange": "binance", "api_key": "abc\\u0000d", "secret": "s"}');
    assertEquals([nul.status, /NUL/.test((await nul.json()).error)], [400, true]);
    const surrogate = await raw('{"exchange": "binance", "api_key": "k", "secret": "s", "label": "\\udfff"}');
    assertEquals([surrogate.status, /surrogate/.test((await surrogate.json()).error)], [400, true]);
    const big = await raw(JSON.stringify({ exchange: "binance", api_key: "k", secret: "s".repeat(2 * 1024 * 1024) }));
    assertEquals(big.status, 413);
    await big.body?.cancel();
    assertEquals((await db()`select count(*)::int as n from public.exchange_credentials where user_id = ${user}`)[0].n, 0);

    // No project URL: tokens cannot be checked, and the answer says why.
    Deno.env.delete("SUPABASE_URL");
    const noUrl = await call(jwt, { exchange: "binance", api_key: "k", secret: "s" });
    assertEquals([noUrl.status, /SUPABASE_URL is not set/.test((await noUrl.json()).error)], [500, true]);
    Deno.env.set("SUPABASE_URL", SUPABASE_URL);

    // No master keys on the server: its operator's fault, said plainly.
    Deno.env.delete("TRADEFLEET_MASTER_KEYS");
    const unconfigured = await call(jwt, { exchange: "binance", api_key: "k", secret: "s" });
    assertEquals([unconfigured.status, (await unconfigured.json()).error],
      [500, "the server is not configured: TRADEFLEET_MASTER_KEYS is not set"]);
  } finally {
    await closeDb();
  }
});
