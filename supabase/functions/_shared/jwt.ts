// HS256 JWTs as Supabase Auth issues them (signed with the project's JWT secret),
// verified with WebCrypto.
import { base64Decode, base64UrlEncode, type Bytes, hmacSha256, timingSafeEqual } from "./hmac.ts";

export type JwtClaims = {
  sub?: string;
  role?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  email?: string;
  app_metadata?: Record<string, unknown>;
  [claim: string]: unknown;
};

export class JwtError extends Error {}

const decoder = new TextDecoder();

function decodeSegment(segment: string): Record<string, unknown> {
  const value = JSON.parse(decoder.decode(base64Decode(segment)));
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new JwtError("malformed token");
  return value;
}

/** Verifies signature, `exp`/`nbf` (with leeway) and, when given, the audience. */
export async function verifyJwt(
  token: string,
  secret: string,
  options: { audience?: string; now?: number; leewaySeconds?: number } = {},
): Promise<JwtClaims> {
  const parts = token.split(".");
  if (parts.length !== 3) throw new JwtError("malformed token");
  let header: Record<string, unknown>;
  let claims: JwtClaims;
  let signature: Bytes;
  try {
    header = decodeSegment(parts[0]);
    claims = decodeSegment(parts[1]) as JwtClaims;
    signature = base64Decode(parts[2]);
  } catch {
    throw new JwtError("malformed token");
  }
  if (header.alg !== "HS256") throw new JwtError("unsupported token algorithm");
  const expected = await hmacSha256(secret, `${parts[0]}.${parts[1]}`);
  if (!timingSafeEqual(expected, signature)) throw new JwtError("invalid token signature");
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const leeway = options.leewaySeconds ?? 30;
  if (typeof claims.exp !== "number" || claims.exp + leeway < now) throw new JwtError("token expired");
  if (typeof claims.nbf === "number" && claims.nbf - leeway > now) throw new JwtError("token not yet valid");
  if (options.audience) {
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(options.audience)) throw new JwtError("token audience mismatch");
  }
  return claims;
}

/** The bearer token of a request, or null. */
export function bearerToken(req: Request): string | null {
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match ? match[1] : null;
}

/** Verifies the caller's Supabase user JWT (SUPABASE_JWT_SECRET); returns its claims. */
export async function verifyUserRequest(req: Request, secret = Deno.env.get("SUPABASE_JWT_SECRET")): Promise<JwtClaims> {
  if (!secret) throw new Error("SUPABASE_JWT_SECRET is not set");
  const token = bearerToken(req);
  if (!token) throw new JwtError("missing bearer token");
  const claims = await verifyJwt(token, secret, { audience: "authenticated" });
  if (claims.role !== "authenticated" || typeof claims.sub !== "string" || !claims.sub) {
    throw new JwtError("not a signed-in user");
  }
  return claims;
}

/** Signs claims with HS256 (tests, service-to-service calls). */
export async function signJwt(claims: JwtClaims, secret: string): Promise<string> {
  const enc = new TextEncoder();
  const head = base64UrlEncode(enc.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
  const body = base64UrlEncode(enc.encode(JSON.stringify(claims)));
  const sig = base64UrlEncode(await hmacSha256(secret, `${head}.${body}`));
  return `${head}.${body}.${sig}`;
}
