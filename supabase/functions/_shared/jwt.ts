// Supabase Auth user JWTs, verified the way Supabase issues them:
//  - asymmetric signing keys (ES256, RS256) from the project's JWKS: SUPABASE_JWKS when
//    set (as `supabase functions serve` provides it), else fetched from
//    <SUPABASE_URL>/auth/v1/.well-known/jwks.json, cached for JWKS_CACHE_MS and fetched
//    again when a token names a key id the cache does not hold (key rotation);
//  - the legacy HS256 secret only when configured: as TRADEFLEET_JWT_SECRET (the CLI refuses
//    secrets whose names start with SUPABASE_), or as a symmetric ("oct") key in
//    SUPABASE_JWKS, which `supabase functions serve` puts there from the local secret. The
//    fetched JWKS is public and never yields an HS256 key, so a public key can never be
//    used as an HMAC secret.
// Every token must be issued by <SUPABASE_URL>/auth/v1 (or TRADEFLEET_JWT_ISSUER), for the
// `authenticated` audience, unexpired, already valid, with role `authenticated` and a sub.
import {
  base64url,
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  jwtVerify,
} from "npm:jose@6.2.19";

export type JwtClaims = JWTPayload & {
  role?: string;
  email?: string;
  app_metadata?: Record<string, unknown>;
};

/** The caller's token is refused: answer 401. */
export class JwtError extends Error {}

/** The server cannot verify tokens (missing configuration, signing keys unreachable): 500/503. */
export class JwtConfigError extends Error {
  constructor(message: string, readonly status: 500 | 503 = 500) {
    super(message);
  }
}

export const JWKS_CACHE_MS = 10 * 60 * 1000;
export const JWKS_REFETCH_COOLDOWN_MS = 30 * 1000;
const ASYMMETRIC = ["ES256", "RS256"];

export interface VerifierOptions {
  /** The shortest time between two fetches of the JWKS (a token with an unknown key id refetches). */
  cooldownMs?: number;
  cacheMs?: number;
}

/** Builds a verifier with its own JWKS cache; `verifyUserRequest` is the functions' shared one. */
export function userVerifier(options: VerifierOptions = {}): (req: Request) => Promise<JwtClaims> {
  const remote = new Map<string, JWTVerifyGetKey>();
  let inline: { text: string; keys: JWTVerifyGetKey; secrets: Uint8Array[] } | undefined;

  function inlineKeySet(): typeof inline {
    const text = Deno.env.get("SUPABASE_JWKS")?.trim();
    if (!text) return undefined;
    if (inline?.text !== text) {
      try {
        const set = JSON.parse(text) as JSONWebKeySet;
        const secrets = set.keys.filter((k) => k.kty === "oct" && typeof k.k === "string").map((k) => base64url.decode(k.k!));
        const asymmetric = set.keys.filter((k) => k.kty !== "oct");
        inline = { text, keys: createLocalJWKSet({ keys: asymmetric }), secrets };
      } catch (e) {
        throw new JwtConfigError(`SUPABASE_JWKS is not a JSON Web Key Set (${(e as Error).message})`);
      }
    }
    return inline;
  }

  function keySet(supabaseUrl: string | undefined): JWTVerifyGetKey {
    const local = inlineKeySet();
    if (local) return local.keys;
    if (!supabaseUrl) throw new JwtConfigError("SUPABASE_URL is not set, so the project's signing keys are unknown");
    const url = `${supabaseUrl}/auth/v1/.well-known/jwks.json`;
    let keys = remote.get(url);
    if (!keys) {
      keys = createRemoteJWKSet(new URL(url), {
        cacheMaxAge: options.cacheMs ?? JWKS_CACHE_MS,
        cooldownDuration: options.cooldownMs ?? JWKS_REFETCH_COOLDOWN_MS,
      });
      remote.set(url, keys);
    }
    return keys;
  }

  return async (req: Request): Promise<JwtClaims> => {
    const token = bearerToken(req);
    if (!token) throw new JwtError("missing bearer token");
    const supabaseUrl = Deno.env.get("SUPABASE_URL")?.replace(/\/+$/, "");
    const issuer = Deno.env.get("TRADEFLEET_JWT_ISSUER") || (supabaseUrl && `${supabaseUrl}/auth/v1`);
    if (!issuer) throw new JwtConfigError("SUPABASE_URL is not set, so the token issuer is unknown");
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new JwtError("malformed token");
    }
    const checks = { issuer, audience: "authenticated", requiredClaims: ["exp", "sub"], clockTolerance: 30 };
    let claims: JwtClaims;
    try {
      if (alg === "HS256") {
        const secret = Deno.env.get("TRADEFLEET_JWT_SECRET");
        const keys = secret ? [new TextEncoder().encode(secret)] : inlineKeySet()?.secrets ?? [];
        if (!keys.length) throw new JwtError("HS256 tokens are not accepted: no legacy JWT secret is configured");
        claims = await verifyWithAny(token, keys, { ...checks, algorithms: ["HS256"] });
      } else {
        claims = (await jwtVerify(token, keySet(supabaseUrl), { ...checks, algorithms: ASYMMETRIC })).payload;
      }
    } catch (e) {
      if (e instanceof JwtError || e instanceof JwtConfigError) throw e;
      // Only the fetched JWKS can fail like this: fetch() rejects with a TypeError, jose
      // reports a non-200 answer as ERR_JOSE_GENERIC and a body that is no key set as JWKSInvalid.
      const fetched = alg !== "HS256" && !Deno.env.get("SUPABASE_JWKS")?.trim();
      if (fetched && (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid || e instanceof TypeError ||
        (e instanceof errors.JOSEError && e.code === "ERR_JOSE_GENERIC"))) {
        throw new JwtConfigError(`could not fetch the project's signing keys (${(e as Error).message})`, 503);
      }
      if (e instanceof errors.JWTExpired) throw new JwtError("token expired");
      if (e instanceof errors.JWTClaimValidationFailed) throw new JwtError(`token refused: ${e.message}`);
      if (e instanceof errors.JOSEError) throw new JwtError(`invalid token (${e.code})`);
      throw e;
    }
    if (claims.role !== "authenticated" || typeof claims.sub !== "string" || !claims.sub) {
      throw new JwtError("not a signed-in user");
    }
    return claims;
  };
}

/** Verifies with the first of `keys` whose signature matches (the local JWKS may hold several secrets). */
async function verifyWithAny(token: string, keys: Uint8Array[], options: JWTVerifyOptions): Promise<JWTPayload> {
  for (const [i, key] of keys.entries()) {
    try {
      return (await jwtVerify(token, key, options)).payload;
    } catch (e) {
      if (!(e instanceof errors.JWSSignatureVerificationFailed) || i === keys.length - 1) throw e;
    }
  }
  throw new JwtError("no key to verify the token with");
}

/** The bearer token of a request, or null. */
export function bearerToken(req: Request): string | null {
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match ? match[1] : null;
}

/** Verifies the caller's Supabase user JWT; returns its claims. */
export const verifyUserRequest = userVerifier();
