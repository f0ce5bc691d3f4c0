// Run from supabase/functions with SUPABASE_DB_URL pointing at a migrated database:
//   deno test --allow-net --allow-env --allow-read --allow-run
// Organisation API keys through the public API: created by an organisation admin, they act
// within the organisation's bots only (never the paying owner's personal ones), the bots
// they create belong to the organisation, their scopes hold, revocation holds, and their
// rate limit is the organisation's own.
import { closeDb, db } from "../_shared/db.ts";
import { call, newUser } from "./test_support.ts";
import { usageWritten } from "./usage.ts";

function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}

const NEW_BOT = {
  name: "org api bot", exchange: "binance", trading_pair: "ETH/BTC", timeframe: "5m", strategy: "sma_cross",
  initial_balance: "100", stake_amount: 10,
};

// deno-lint-ignore no-explicit-any
type Row = Record<string, any>;

/** Run one statement in a transaction as the signed-in user; its rows. */
async function asUser(user: string, fn: (tx: ReturnType<typeof db>) => Promise<Row[]>): Promise<Row[]> {
  const rows = await db().begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${JSON.stringify({ sub: user, role: "authenticated" })}, true),
                    set_config('role', 'authenticated', true)`;
    // deno-lint-ignore no-explicit-any
    return [...await fn(tx as any)];
  });
  return rows as Row[];
}

/** The paying owner (with a personal bot and key), an admin, their organisation (one bot)
 * and a key the admin created for it. */
async function organisation(perMinute = 1000, scopes = ["bots:read", "bots:write", "trades:read"]) {
  const owner = await newUser("org-api", { api_requests_per_minute: perMinute });
  const admin = await newUser("org-api", { api_requests_per_minute: perMinute });
  const org = (await asUser(owner, (tx) => tx`select (public.create_organisation('desk')).id`))[0].id as string;
  await db()`insert into public.organisation_members (user_id, organisation_id, role) values (${admin}, ${org}, 'admin')`;
  const [personal] = await db()`insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
                                values (${owner}, 'personal', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1) returning id`;
  const [orgBot] = await db()`insert into public.bots (user_id, organisation_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
                              values (${owner}, ${org}, 'of the organisation', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1) returning id`;
  const [orgKey] = await asUser(admin, (tx) => tx`select id, key from public.create_organisation_api_key(${org}, 'desk', ${scopes})`);
  const [ownerKey] = await asUser(owner, (tx) => tx`select key from public.create_api_key('mine', ${["bots:read"]})`);
  return { owner, admin, org, personal: personal.id as string, orgBot: orgBot.id as string,
           orgKey: orgKey.key as string, orgKeyId: orgKey.id as string, ownerKey: ownerKey.key as string };
}

Deno.test("an organisation's key reaches the organisation's bots only, and creates bots for it", async () => {
  try {
    const o = await organisation();
    const listed = await (await call("GET", "/v1/bots", o.orgKey)).json();
    assertEquals(listed.data.map((b: { id: string }) => b.id), [o.orgBot], "the organisation key lists");
    const ownerListed = await (await call("GET", "/v1/bots", o.ownerKey)).json();
    assertEquals(ownerListed.data.map((b: { id: string }) => b.id).sort(), [o.orgBot, o.personal].sort(),
                 "the owner's own key lists");

    assertEquals((await call("GET", `/v1/bots/${o.personal}`, o.orgKey)).status, 404, "the owner's personal bot");
    const paused = await call("POST", `/v1/bots/${o.personal}/start`, o.orgKey);
    assertEquals(paused.status, 404, "starting the owner's personal bot");
    const [personal] = await db()`select status from public.bots where id = ${o.personal}`;
    assertEquals(personal.status, "stopped", "the personal bot is untouched");

    const started = await call("POST", `/v1/bots/${o.orgBot}/start`, o.orgKey);
    assertEquals(started.status, 200, "starting the organisation's bot");
    assertEquals((await started.json()).status, "running");

    const created = await call("POST", "/v1/bots", o.orgKey, NEW_BOT);
    assertEquals(created.status, 201, "creating a bot");
    const bot = await created.json();
    const [row] = await db()`select organisation_id, user_id from public.bots where id = ${bot.id}`;
    assertEquals([row.organisation_id, row.user_id], [o.org, o.owner], "the new bot's organisation and paying owner");
  } finally {
    await usageWritten();
    await closeDb();
  }
});

Deno.test("an organisation's key keeps its scopes, dies with revocation and has its own rate limit", async () => {
  try {
    const readOnly = await organisation(1000, ["bots:read"]);
    const refused = await call("POST", "/v1/bots", readOnly.orgKey, NEW_BOT);
    assertEquals(refused.status, 403, "creating with bots:read only");
    assertEquals((await refused.json()).scope, "bots:write");
    const [{ n }] = await db()`select count(*)::int as n from public.bots where organisation_id = ${readOnly.org}`;
    assertEquals(n, 1, "nothing was created");

    await asUser(readOnly.admin, (tx) => tx`select * from public.revoke_api_key(${readOnly.orgKeyId})`);
    assertEquals((await call("GET", "/v1/bots", readOnly.orgKey)).status, 401, "a revoked organisation key");

    // Two requests a minute on the paying owner's plan: the organisation's key spends the
    // organisation's allowance, not the owner's.
    const limited = await organisation(2);
    for (let i = 0; i < 2; i++) {
      const res = await call("GET", "/v1/bots", limited.orgKey);
      assertEquals(res.status, 200, `organisation request ${i + 1}`);
      await res.body?.cancel();
    }
    const over = await call("GET", "/v1/bots", limited.orgKey);
    assertEquals(over.status, 429, "the third organisation request");
    assertEquals(over.headers.get("RateLimit-Limit"), "2");
    await over.body?.cancel();
    const own = await call("GET", "/v1/bots", limited.ownerKey);
    assertEquals(own.status, 200, "the owner's own key, on its own allowance");
    await own.body?.cancel();
  } finally {
    await usageWritten();
    await closeDb();
  }
});
