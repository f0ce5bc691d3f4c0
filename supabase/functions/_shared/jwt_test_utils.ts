// Test tokens as Supabase Auth issues them.
import { type CryptoKey, type JWTPayload, SignJWT } from "npm:jose@6.2.19";

export const SUPABASE_URL = "http://127.0.0.1:54321";
export const ISSUER = `${SUPABASE_URL}/auth/v1`;

/** A signed-in user's token, valid for an hour; `overrides` replace or add claims. */
export async function userToken(
  sub: string,
  key: Uint8Array | CryptoKey,
  { alg = "HS256", kid, ...overrides }: JWTPayload & { alg?: string; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub, role: "authenticated", aud: "authenticated", iss: ISSUER, iat: now, exp: now + 3600, ...overrides };
  return await new SignJWT(claims).setProtectedHeader({ alg, kid, typ: "JWT" }).sign(key);
}
