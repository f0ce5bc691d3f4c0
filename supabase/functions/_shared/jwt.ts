// Supabase Auth user JWTs, verified the way Supabase issues them:
//  - asymmetric signing keys (ES256, RS256) from the project's JWKS: SUPABASE_JWKS when
//    set (as `supabase functions serve` provides it), else fetched from
//    <SUPABASE_URL>/auth/v1/.well-known/jwks.json, cached for JWKS_CACHE_MS and fetched
//    again when a token names a key id the cache does not hold (key rotation);
//  - the legacy HS256 secret only when configured as TRADEFLEET_JWT_SECRET (the CLI refuses
//    secrets whose names start with SUPABASE_).
// Every token must be issued by <SUPABASE_URL>/auth/v1 (or TRADEFLEET_JWT_ISSUER), for the
// `authenticated` audience, unexpired, already valid, with role `authenticated` and a sub.
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
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
  let inline: { text: string; keys: JWTVerifyGetKey } | undefined;

  function keySet(supabaseUrl: string | undefined): JWTVerifyGetKey {
    const text = Deno.env.get("SUPABASE_JWKS")?.trim();
    if (text) {
      if (inline?.text !== text) {
        try {
          inline = { text, keys: createLocalJWKSet(JSON.parse(text) as JSONWebKeySet) };
        } catch (e) {
          throw new JwtConfigError(`SUPABASE_JWKS is not a JSON Web Key Set (${(e as Error).message})`);
        }
      }
      return inline.keys;
    }
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
        if (!secret) throw new JwtError("HS256 tokens are not accepted: no legacy JWT secret is configured");
        claims = (await jwtVerify(token, new TextEncoder().encode(secret), { ...checks, algorithms: ["HS256"] })).payload;
      } else {
        claims = (await jwtVerify(token, keySet(supabaseUrl), { ...checks, algorithms: ASYMMETRIC })).payload;
      }
    } catch (e) {
      if (e instanceof JwtError || e instanceof JwtConfigError) throw e;
      if (e instanceof errors.JWKSTimeout || (e instanceof errors.JOSEError && e.code === "ERR_JOSE_GENERIC") ||
        e instanceof TypeError) {
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

/** The bearer token of a request, or null. */
export function bearerToken(req: Request): string | null {
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match ? match[1] : null;
}

/** Verifies the caller's Supabase user JWT; returns its claims. */
export const verifyUserRequest = userVerifier();
