// Run from supabase/functions with SUPABASE_DB_URL pointing at a migrated database:
//   deno test --allow-net --allow-env --allow-read
import { closeDb, db } from "../_shared/db.ts";
import { base64Encode, canonicalJson, hmacSha256Base64 } from "../_shared/hmac.ts";
import { ISSUER, SUPABASE_URL, userToken } from "../_shared/jwt_test_utils.ts";
import { exportJWK, generateKeyPair } from "npm:jose@6.2.19";
import { handler } from "./index.ts";

const JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters";
const CONSUMER_KEY = "connect-consumer-key";
const PORTAL = "https://app.snaptrade.com/snapTrade/redeemToken?token=abc&clientId=TRADEFLEET";

function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}

type Call = { path: string; query: URLSearchParams; body: unknown; signed: boolean };

// A local SnapTrade that checks each request's signature the way SnapTrade does.
function fakeSnapTrade(calls: Call[]) {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const text = await req.text();
    const body = text ? JSON.parse(text) : null;
    const expected = await hmacSha256Base64(
      CONSUMER_KEY, canonicalJson({ content: body, path: url.pathname, query: url.search.slice(1) }),
    );
    const signed = req.headers.get("signature") === expected && url.searchParams.get("clientId") === "TRADEFLEET" &&
      Math.abs(Number(url.searchParams.get("timestamp")) - Date.now() / 1000) < 60;
    calls.push({ path: url.pathname, query: url.searchParams, body, signed });
    if (!signed) return Response.json({ detail: "Invalid signature", code: "1076" }, { status: 401 });
    if (url.pathname === "/api/v1/snapTrade/registerUser") {
      return Response.json({ userId: body.userId, userSecret: "plain-user-secret-123" });
    }
    if (url.pathname === "/api/v1/snapTrade/login") {
      if (url.searchParams.get("userSecret") !== "plain-user-secret-123") return new Response("{}", { status: 403 });
      return Response.json({ redirectURI: PORTAL, sessionId: "cf371bb4-a475-4f17-ab94-d0fee699960d" });
    }
    return new Response("{}", { status: 404 });
  });
}

async function withFake(fn: (calls: Call[]) => Promise<void>): Promise<void> {
  const calls: Call[] = [];
  const server = fakeSnapTrade(calls);
  Deno.env.set("TRADEFLEET_JWT_SECRET", JWT_SECRET);
  Deno.env.set("SUPABASE_URL", SUPABASE_URL);
  Deno.env.set("SNAPTRADE_CLIENT_ID", "TRADEFLEET");
  Deno.env.set("SNAPTRADE_CONSUMER_KEY", CONSUMER_KEY);
  Deno.env.set("SNAPTRADE_API_URL", `http://127.0.0.1:${server.addr.port}/api/v1`);
  Deno.env.set("TRADEFLEET_MASTER_KEYS", `k1:${base64Encode(crypto.getRandomValues(new Uint8Array(32)))}`);
  try {
    await fn(calls);
  } finally {
    await server.shutdown();
    await closeDb();
  }
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

function call(jwt: string | null, body: unknown = {}): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (jwt) headers.authorization = `Bearer ${jwt}`;
  return handler(new Request("http://localhost/brokerage-connect", { method: "POST", headers, body: JSON.stringify(body) }));
}

Deno.test("a signed-in user gets the connection portal URL; the secret is stored sealed", async () => {
  await withFake(async (calls) => {
    const user = await newUser();
    const res = await call(await token(user), { redirect: "https://app.example/after-link" });
    assertEquals(res.status, 200);
    assertEquals((await res.json()).url, PORTAL);
    assertEquals(calls.map((c) => [c.path, c.signed]), [
      ["/api/v1/snapTrade/registerUser", true],
      ["/api/v1/snapTrade/login", true],
    ]);
    assertEquals(calls[0].body, { userId: user });
    assertEquals((calls[1].body as Record<string, unknown>).customRedirect, "https://app.example/after-link");
    const rows = await db()`select provider_user_id, sealed_user_secret, status from public.brokerage_connections where user_id = ${user}`;
    assertEquals(rows.length, 1);
    assertEquals([rows[0].provider_user_id, rows[0].status], [user, "pending"]);
    const sealed = rows[0].sealed_user_secret as string;
    if (!sealed.startsWith("v1:k1:") || sealed.includes("plain-user-secret")) throw new Error(`not sealed: ${sealed}`);

    // Asking again reuses the registration.
    const again = await call(await token(user));
    assertEquals(again.status, 200);
    assertEquals(calls.filter((c) => c.path.endsWith("/registerUser")).length, 1);
    assertEquals((await db()`select count(*)::int as n from public.brokerage_connections where user_id = ${user}`)[0].n, 1);
  });
});

Deno.test("requests without a valid user JWT get 401 and reach no provider", async () => {
  await withFake(async (calls) => {
    const user = await newUser();
    assertEquals((await call(null)).status, 401);
    assertEquals((await call(await token(user, {}, "a-different-secret-of-enough-length!!"))).status, 401);
    assertEquals((await call(await token(user, { exp: Math.floor(Date.now() / 1000) - 3600 }))).status, 401);
    assertEquals((await call(await token(user, { role: "anon" }))).status, 401);
    assertEquals((await call("not.a.jwt")).status, 401);
    assertEquals(calls.length, 0);
  });
});

Deno.test("a provider failure is a 502 and stores nothing", async () => {
  await withFake(async () => {
    Deno.env.set("SNAPTRADE_CONSUMER_KEY", "wrong-key");
    const user = await newUser();
    const res = await call(await token(user));
    assertEquals(res.status, 502);
    assertEquals((await db()`select count(*)::int as n from public.brokerage_connections where user_id = ${user}`)[0].n, 0);
  });
});

Deno.test("a user whose token is signed with the project's ES256 key (JWKS) is served", async () => {
  await withFake(async (calls) => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    Deno.env.set("SUPABASE_JWKS", JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "es", alg: "ES256" }] }));
    try {
      const user = await newUser();
      const res = await call(await userToken(user, privateKey, { alg: "ES256", kid: "es", iss: ISSUER }));
      assertEquals(res.status, 200);
      assertEquals((await res.json()).url, PORTAL);
      assertEquals(calls.map((c) => c.path), ["/api/v1/snapTrade/registerUser", "/api/v1/snapTrade/login"]);
    } finally {
      Deno.env.delete("SUPABASE_JWKS");
    }
  });
});
