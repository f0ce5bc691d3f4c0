// The two SnapTrade calls the connect flow needs, signed as SnapTrade documents:
// clientId and timestamp in the query; Signature = base64 HMAC-SHA256 (consumer key) of
// canonical JSON {"content", "path", "query"} of the request exactly as sent.
import { canonicalJson, hmacSha256Base64 } from "../_shared/hmac.ts";

export class SnapTradeError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

export function snaptradeConfig() {
  const clientId = Deno.env.get("SNAPTRADE_CLIENT_ID");
  const consumerKey = Deno.env.get("SNAPTRADE_CONSUMER_KEY");
  if (!clientId || !consumerKey) throw new Error("SNAPTRADE_CLIENT_ID and SNAPTRADE_CONSUMER_KEY must be set");
  const baseUrl = (Deno.env.get("SNAPTRADE_API_URL") || "https://api.snaptrade.com/api/v1").replace(/\/$/, "");
  return { clientId, consumerKey, baseUrl };
}

export async function signedRequest(
  method: string, path: string, query: Record<string, string>, content: unknown,
): Promise<unknown> {
  const { clientId, consumerKey, baseUrl } = snaptradeConfig();
  const url = new URL(baseUrl + path);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  url.searchParams.set("clientId", clientId);
  url.searchParams.set("timestamp", String(Math.floor(Date.now() / 1000)));
  const signature = await hmacSha256Base64(
    consumerKey, canonicalJson({ content: content ?? null, path: url.pathname, query: url.search.slice(1) }),
  );
  const response = await fetch(url, {
    method,
    headers: { "content-type": "application/json", Signature: signature },
    body: content === undefined ? undefined : JSON.stringify(content),
  });
  const text = await response.text();
  if (!response.ok) throw new SnapTradeError(`SnapTrade answered ${response.status}`, response.status);
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    throw new SnapTradeError("SnapTrade answered with a body that is not JSON", 502);
  }
}

export async function registerUser(userId: string): Promise<{ userId: string; userSecret: string }> {
  const data = await signedRequest("POST", "/snapTrade/registerUser", {}, { userId }) as Record<string, unknown>;
  if (typeof data?.userSecret !== "string") throw new SnapTradeError("registerUser returned no secret", 502);
  return { userId: String(data.userId ?? userId), userSecret: data.userSecret };
}

export async function loginLink(
  userId: string, userSecret: string, options: Record<string, unknown>,
): Promise<{ redirectURI: string; sessionId?: string }> {
  const data = await signedRequest("POST", "/snapTrade/login", { userId, userSecret }, options) as Record<
    string, unknown
  >;
  if (typeof data?.redirectURI !== "string") throw new SnapTradeError("login returned no portal URL", 502);
  return { redirectURI: data.redirectURI, sessionId: typeof data.sessionId === "string" ? data.sessionId : undefined };
}
