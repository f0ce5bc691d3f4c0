// User JWTs as Supabase issues them: asymmetric keys from the project's JWKS (served by a
// local server for the fetch path, or inline as SUPABASE_JWKS), and the legacy HS256
// secret only when configured. Keys are generated here.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { exportJWK, generateKeyPair, type JWK, UnsecuredJWT } from "npm:jose@6.2.19";
import { JwtConfigError, JwtError, userVerifier } from "./jwt.ts";
import { ISSUER, userToken } from "./jwt_test_utils.ts";

const enc = new TextEncoder();
const SECRET = "legacy-jwt-secret-with-at-least-32-characters";

async function keyPair(alg: "ES256" | "RS256", kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { privateKey, publicKey, jwk };
}

/** A local Auth server whose JWKS endpoint serves `keys()` and counts its fetches. */
function jwksServer(keys: () => JWK[]) {
  const state = { fetches: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname !== "/auth/v1/.well-known/jwks.json") return new Response("not found", { status: 404 });
    state.fetches++;
    return Response.json({ keys: keys() });
  });
  const url = `http://127.0.0.1:${server.addr.port}`;
  return { state, url, issuer: `${url}/auth/v1`, close: () => server.shutdown() };
}

function request(token: string | null): Request {
  return new Request("http://localhost/fn", { headers: token ? { authorization: `Bearer ${token}` } : {} });
}

async function refused(verify: (req: Request) => Promise<unknown>, token: string | null, why: RegExp): Promise<void> {
  try {
    await verify(request(token));
  } catch (e) {
    if (!(e instanceof JwtError)) throw e;
    if (!why.test(e.message)) throw new Error(`refused for another reason: ${e.message}`);
    return;
  }
  throw new Error(`accepted a token that should be refused (${why})`);
}

function env(vars: Record<string, string | undefined>): void {
  for (const name of ["SUPABASE_URL", "SUPABASE_JWKS", "TRADEFLEET_JWT_SECRET", "TRADEFLEET_JWT_ISSUER"]) {
    const value = vars[name];
    if (value === undefined) Deno.env.delete(name);
    else Deno.env.set(name, value);
  }
}

for (const alg of ["ES256", "RS256"] as const) {
  Deno.test(`${alg} tokens verify against the JWKS fetched from the project, cached between calls`, async () => {
    const { privateKey, jwk } = await keyPair(alg, `${alg}-1`);
    const auth = jwksServer(() => [jwk]);
    try {
      env({ SUPABASE_URL: auth.url });
      const verify = userVerifier();
      const token = await userToken("user-1", privateKey, { alg, kid: jwk.kid, iss: auth.issuer });
      assertEquals((await verify(request(token))).sub, "user-1");
      assertEquals((await verify(request(token))).sub, "user-1");
      assertEquals(auth.state.fetches, 1);
    } finally {
      await auth.close();
    }
  });
}

Deno.test("a token signed with a key id the cache does not know makes the JWKS be fetched again", async () => {
  const first = await keyPair("ES256", "old");
  const second = await keyPair("RS256", "new");
  let published = [first.jwk];
  const auth = jwksServer(() => published);
  try {
    env({ SUPABASE_URL: auth.url });
    const verify = userVerifier({ cooldownMs: 0 });
    const old = await userToken("u", first.privateKey, { alg: "ES256", kid: "old", iss: auth.issuer });
    assertEquals((await verify(request(old))).sub, "u");
    published = [first.jwk, second.jwk]; // the project rotates its signing key
    const rotated = await userToken("u", second.privateKey, { alg: "RS256", kid: "new", iss: auth.issuer });
    assertEquals((await verify(request(rotated))).sub, "u");
    assertEquals(auth.state.fetches, 2);
    const unknown = await userToken("u", second.privateKey, { alg: "RS256", kid: "nobody", iss: auth.issuer });
    await refused(verify, unknown, /no.?matching.?key|JWKS_NO_MATCHING_KEY/i);
  } finally {
    await auth.close();
  }
});

Deno.test("SUPABASE_JWKS, when set, is used without fetching anything", async () => {
  const { privateKey, jwk } = await keyPair("ES256", "inline");
  const auth = jwksServer(() => []);
  try {
    env({ SUPABASE_URL: auth.url, SUPABASE_JWKS: JSON.stringify({ keys: [jwk] }) });
    const token = await userToken("inline-user", privateKey, { alg: "ES256", kid: "inline", iss: auth.issuer });
    assertEquals((await userVerifier()(request(token))).sub, "inline-user");
    assertEquals(auth.state.fetches, 0);
  } finally {
    await auth.close();
  }
});

Deno.test("expired, not yet valid, wrong-audience, wrong-issuer and non-user tokens get refused", async () => {
  const { privateKey, jwk } = await keyPair("ES256", "k");
  const auth = jwksServer(() => [jwk]);
  try {
    env({ SUPABASE_URL: auth.url });
    const verify = userVerifier();
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: Record<string, unknown>) =>
      userToken("u", privateKey, { alg: "ES256", kid: "k", iss: auth.issuer, ...claims });
    await refused(verify, await sign({ exp: now - 3600 }), /expired/);
    await refused(verify, await sign({ nbf: now + 3600 }), /nbf/);
    await refused(verify, await sign({ aud: "anon" }), /aud/);
    await refused(verify, await sign({ iss: "https://another-project.supabase.co/auth/v1" }), /iss/);
    await refused(verify, await sign({ role: "anon" }), /not a signed-in user/);
    await refused(verify, await sign({ exp: undefined }), /exp/);
    await refused(verify, null, /missing bearer token/);
    await refused(verify, "not.a.jwt", /malformed|invalid/);
    // Same key id, another key: the signature does not verify.
    const impostor = await keyPair("ES256", "k");
    await refused(verify, await userToken("u", impostor.privateKey, { alg: "ES256", kid: "k", iss: auth.issuer }), /signature/i);
  } finally {
    await auth.close();
  }
});

Deno.test("alg none and algorithm confusion are refused", async () => {
  const { jwk } = await keyPair("RS256", "k");
  const auth = jwksServer(() => [jwk]);
  try {
    const none = new UnsecuredJWT({ sub: "u", role: "authenticated" }).setAudience("authenticated").setIssuer(auth.issuer)
      .setExpirationTime("1h").encode();
    // HS256 keyed with the public key an attacker can read from the JWKS.
    const confused = await userToken("u", enc.encode(JSON.stringify(jwk)), { alg: "HS256", kid: "k", iss: auth.issuer });
    env({ SUPABASE_URL: auth.url });
    await refused(userVerifier(), none, /ALG_NOT_ALLOWED|not allowed/i);
    await refused(userVerifier(), confused, /HS256 tokens are not accepted/);
    env({ SUPABASE_URL: auth.url, TRADEFLEET_JWT_SECRET: SECRET });
    await refused(userVerifier(), none, /ALG_NOT_ALLOWED|not allowed/i);
    await refused(userVerifier(), confused, /signature/i);
  } finally {
    await auth.close();
  }
});

Deno.test("legacy HS256 tokens verify only with TRADEFLEET_JWT_SECRET", async () => {
  const token = await userToken("legacy", enc.encode(SECRET));
  env({ SUPABASE_URL: "http://127.0.0.1:54321", SUPABASE_JWKS: '{"keys": []}' });
  await refused(userVerifier(), token, /no legacy JWT secret/);
  env({ SUPABASE_URL: "http://127.0.0.1:54321", SUPABASE_JWKS: '{"keys": []}', TRADEFLEET_JWT_SECRET: SECRET });
  assertEquals((await userVerifier()(request(token))).sub, "legacy");
  await refused(userVerifier(), await userToken("legacy", enc.encode("another-secret-of-at-least-32-characters")), /signature/i);
  env({ TRADEFLEET_JWT_ISSUER: ISSUER, TRADEFLEET_JWT_SECRET: SECRET });
  assertEquals((await userVerifier()(request(token))).sub, "legacy");
});

Deno.test("with `supabase functions serve`, the local secret in SUPABASE_JWKS verifies HS256 tokens", async () => {
  const { jwk } = await keyPair("RS256", "rsa");
  // What the CLI injects: the public signing keys plus the legacy secret as an "oct" key.
  const oct = { kty: "oct", k: btoa(SECRET).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_") };
  env({ TRADEFLEET_JWT_ISSUER: ISSUER, SUPABASE_JWKS: JSON.stringify({ keys: [jwk, oct] }) });
  assertEquals((await userVerifier()(request(await userToken("local", enc.encode(SECRET))))).sub, "local");
  // The RSA public key is no HMAC secret, even next to an "oct" key.
  const confused = await userToken("u", enc.encode(JSON.stringify(jwk)), { alg: "HS256" });
  await refused(userVerifier(), confused, /signature/i);
  env({ TRADEFLEET_JWT_ISSUER: ISSUER, SUPABASE_JWKS: JSON.stringify({ keys: [jwk] }) });
  await refused(userVerifier(), await userToken("local", enc.encode(SECRET)), /no legacy JWT secret/);
});

Deno.test("a server that cannot verify tokens says why: 500 without configuration, 503 without its keys", async () => {
  const { privateKey } = await keyPair("ES256", "k");
  const token = await userToken("u", privateKey, { alg: "ES256", kid: "k" });
  env({});
  let error: unknown;
  await userVerifier()(request(token)).catch((e) => error = e);
  assertEquals([error instanceof JwtConfigError, (error as JwtConfigError).status], [true, 500]);
  assertEquals(/SUPABASE_URL is not set/.test((error as Error).message), true);

  // An Auth server that answers with something else than a key set.
  const broken = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response("oops", { status: 502 }));
  const brokenUrl = `http://127.0.0.1:${broken.addr.port}`;
  env({ SUPABASE_URL: brokenUrl });
  error = undefined;
  await userVerifier()(request(await userToken("u", privateKey, { alg: "ES256", kid: "k", iss: `${brokenUrl}/auth/v1` })))
    .catch((e) => error = e);
  await broken.shutdown();
  assertEquals([error instanceof JwtConfigError, (error as JwtConfigError).status], [true, 503]);

  const auth = jwksServer(() => []);
  await auth.close(); // nothing listens there any more
  env({ SUPABASE_URL: auth.url });
  error = undefined;
  await userVerifier()(request(await userToken("u", privateKey, { alg: "ES256", kid: "k", iss: auth.issuer })))
    .catch((e) => error = e);
  assertEquals([error instanceof JwtConfigError, (error as JwtConfigError).status], [true, 503]);
});
