// Returns the SnapTrade connection-portal URL for the calling user (Supabase JWT verified).
// First call: registers the user with SnapTrade (our user id is their SnapTrade user id)
// and keeps the user secret sealed in a pending brokerage_connections row. The
// CONNECTION_ADDED webhook later turns that row into the linked connection.
import { db } from "../_shared/db.ts";
import { reply } from "../_shared/http.ts";
import { readUserBody, userId } from "../_shared/user_request.ts";
import { open, seal, SealConfigError } from "../_shared/seal.ts";
import { loginLink, registerUser, SnapTradeError } from "./snaptrade.ts";

type Options = { redirect?: unknown; reconnect?: unknown; connectionType?: unknown; broker?: unknown };

export async function handler(req: Request): Promise<Response> {
  if (req.method !== "POST" && req.method !== "GET") return reply(405, { error: "use POST" });
  const user = await userId(req);
  if (user instanceof Response) return user;
  const options: Options | Response = req.method === "POST" ? await readUserBody(req, { optional: true }) : {};
  if (options instanceof Response) return options;
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
      await tx`select pg_advisory_xact_lock(hashtextextended(${"snaptrade-register:" + user}, 0))`;
      const rows = await tx`
        select provider_user_id, sealed_user_secret from public.brokerage_connections
         where user_id = ${user} and provider = 'snaptrade' and sealed_user_secret is not null
         order by created_at desc limit 1`;
      if (rows.length) return { userId: rows[0].provider_user_id as string, sealed: rows[0].sealed_user_secret as string };
      const registered = await registerUser(user);
      const sealed = await seal(registered.userSecret);
      await tx`
        insert into public.brokerage_connections (user_id, provider, provider_user_id, sealed_user_secret, status)
        values (${user}, 'snaptrade', ${registered.userId}, ${sealed}, 'pending')`;
      return { userId: registered.userId, sealed };
    });
    const link = await loginLink(login.userId, await open(login.sealed), portal);
    return reply(200, { url: link.redirectURI, sessionId: link.sessionId ?? null });
  } catch (e) {
    if (e instanceof SnapTradeError) return reply(502, { error: `could not reach the brokerage link provider (${e.message})` });
    if (e instanceof SealConfigError) return reply(500, { error: `the server is not configured: ${e.message}` });
    throw e;
  }
}

if (import.meta.main) {
  Deno.serve(handler);
}
