// What the api function's tests share (index.ts never imports it, so it is not deployed):
// users on plans of their own, keys created as the signed-in user does, requests through
// the handler, and answers checked against the OpenAPI document.
import { db } from "../_shared/db.ts";
import { handler } from "./index.ts";
import { resolveRef, ROUTES } from "./openapi.ts";
import { check } from "./schema.ts";

/** A user signed up (as `tag`@….test) on a plan of their own with the API, 100 backtest
 * minutes and `features` (1,000 API requests a minute unless given). */
export async function newUser(tag: string, features: Record<string, number> = {}, role = "user"): Promise<string> {
  const id = crypto.randomUUID();
  await db()`insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
             values (${id}, 'authenticated', 'authenticated', ${`${id}@${tag}.test`}, now(), ${db().json({ role })}, '{}', now(), now())`;
  const name = `${tag}-test-${crypto.randomUUID()}`;
  await db()`insert into public.plans (name, price_monthly, max_bots, max_strategies, api_access, backtest_minutes_per_month, features)
             values (${name}, 1, 20, 20, true, 100, ${db().json({ api_requests_per_minute: 1000, ...features })})`;
  await db()`update public.subscriptions set plan_id = (select id from public.plans where name = ${name}),
               status = 'active', expires_at = now() + interval '1 day' where user_id = ${id}`;
  return id;
}

/** A key of `user`'s with `scopes`, created through `create_api_key` as the user. */
export async function newKey(
  user: string, scopes: string[], expiresAt: string | null = null, name = "test",
): Promise<{ id: string; key: string }> {
  return await db().begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${JSON.stringify({ sub: user, role: "authenticated" })}, true),
                    set_config('role', 'authenticated', true)`;
    const [row] = await tx`select id, key from public.create_api_key(${name}, ${scopes}, ${expiresAt}::timestamptz)`;
    return { id: row.id as string, key: row.key as string };
  });
}

/** A request through the handler, from a client behind one proxy; a string body is sent as is. */
export function call(method: string, path: string, key: string | null, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { "x-forwarded-for": "198.51.100.7, 10.0.0.1" };
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  return handler(new Request(`http://localhost/api${path}`, {
    method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  }));
}

/** Fails unless `value` is what the OpenAPI document says operation `op` answers. */
export function conformsTo(value: unknown, op: string): void {
  const problem = check(value, ROUTES.find((r) => r.operationId === op)!.response, "", resolveRef);
  if (problem !== null) throw new Error(`${op}: ${problem}`);
}
