// Returns the SnapTrade connection-portal URL for the calling user (Supabase JWT verified).
// First call: registers the user with SnapTrade (our user id is their SnapTrade user id)
// and keeps the user secret sealed in a pending brokerage_connections row. The
// CONNECTION_ADDED webhook later turns that row into the linked connection.
import { db } from "../_shared/db.ts";
import { JwtError, verifyUserRequest } from "../_shared/jwt.ts";
import { open, seal } from "./seal.ts";
import { loginLink, registerUser, SnapTradeError } from "./snaptrade.ts";

function reply(status: number, body: Record<string, unknown>): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

type Options = { redirect?: unknown; reconnect?: unknown; connectionType?: unknown; broker?: unknown };

async function readOptions(req: Request): Promise<Options | null> {
  const text = req.method === "POST" ? await req.text() : "";
  if (!text.trim()) return {};
  try {
    const value = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

export async function handler(req: Request): Promise<Response> {
  if (req.method !== "POST" && req.method !== "GET") return reply(405, { error: "use POST" });
  let userId: string;
  try {
    userId = (await verifyUserRequest(req)).sub as string;
  } catch (e) {
    if (e instanceof JwtError) return reply(401, { error: e.message });
    throw e;
  }
  const options = await readOptions(req);
  if (options === null) return reply(400, { error: "body must be a JSON object" });
  const portal: Record<string, unknown> = { connectionType: "read" };
  if (typeof options.redirect === "string") portal.customRedirect = options.redirect;
  if (typeof options.reconnect === "string") portal.reconnect = options.reconnect;
  if (typeof options.broker === "string") portal.broker = options.broker;
  if (options.connectionType === "trade" || options.connectionType === "trade-if-available") {
    portal.connectionType = options.connectionType;
  }

  const sql = db();
  try {
    const login = await sql.begin(async (tx) => {
      // One SnapTrade registration per user, even when the app calls twice at once.
      await tx`select pg_advisory_xact_lock(hashtextextended(${"snaptrade-register:" + userId}, 0))`;
      const rows = await tx`
        select provider_user_id, sealed_user_secret from public.brokerage_connections
         where user_id = ${userId} and provider = 'snaptrade' and sealed_user_secret is not null
         order by created_at desc limit 1`;
      if (rows.length) return { userId: rows[0].provider_user_id as string, sealed: rows[0].sealed_user_secret as string };
      const registered = await registerUser(userId);
      const sealed = await seal(registered.userSecret);
      await tx`
        insert into public.brokerage_connections (user_id, provider, provider_user_id, sealed_user_secret, status)
        values (${userId}, 'snaptrade', ${registered.userId}, ${sealed}, 'pending')`;
      return { userId: registered.userId, sealed };
    });
    const link = await loginLink(login.userId, await open(login.sealed), portal);
    return reply(200, { url: link.redirectURI, sessionId: link.sessionId ?? null });
  } catch (e) {
    if (e instanceof SnapTradeError) return reply(502, { error: `could not reach the brokerage link provider (${e.message})` });
    throw e;
  }
}

if (import.meta.main) {
  Deno.serve(handler);
}
