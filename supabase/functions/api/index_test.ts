// Run from supabase/functions with SUPABASE_DB_URL pointing at a migrated database:
//   deno test --allow-net --allow-env --allow-read --allow-run
// The public API through real keys and a real database: each scope, row-level security
// through a key, revoked and expired keys, 429 and its headers, bodies against the
// schema, and the OpenAPI document against what the handler does.
import { closeDb, db } from "../_shared/db.ts";
import { openApiDocument, resolveRef, ROUTES, SCOPES } from "./openapi.ts";
import { check, type Schema } from "./schema.ts";
import { call, conformsTo, newKey, newUser } from "./test_support.ts";
import { usageWritten } from "./usage.ts";

function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}

/** A user on a plan of their own: `perMinute` API requests a minute and `features`. */
const apiUser = (role = "user", perMinute = 1000, features: Record<string, number> = {}) =>
  newUser("api", { api_requests_per_minute: perMinute, ...features }, role);

function assert(condition: unknown, message: string): void {
  if (!condition) throw new Error(message);
}

const NEW_BOT = {
  name: "api bot", exchange: "binance", trading_pair: "ETH/BTC", timeframe: "5m", strategy: "sma_cross",
  initial_balance: "1000.5", stake_amount: 10,
};

async function botCount(user: string): Promise<number> {
  const [r] = await db()`select count(*)::int as n from public.bots where user_id = ${user}`;
  return r.n as number;
}

const NEW_BACKTEST = { strategy: "rsi", trading_pair: "BTC/USDT", timeframe: "1h", parameters: { period: 14 } };

async function backtestCount(user: string): Promise<number> {
  const [r] = await db()`select count(*)::int as n from public.backtest_runs where user_id = ${user}`;
  return r.n as number;
}

/** Every queued usage record written, then the connections closed. */
async function done(): Promise<void> {
  await usageWritten();
  await closeDb();
}

/** A concrete path for a route, with `id` for {id}. */
const pathOf = (path: string, id: string) => path.replace("{id}", id);

Deno.test("the OpenAPI document is served and matches the routes the handler serves", async () => {
  try {
    const res = await call("GET", "/openapi.json", null);
    assertEquals(res.status, 200);
    const doc = await res.json();
    assertEquals(doc.openapi, "3.1.0");
    assertEquals(doc, JSON.parse(JSON.stringify(openApiDocument("http://localhost/api"))), "served document");
    const documented = Object.entries(doc.paths as Record<string, Record<string, { "x-scope": string }>>)
      .flatMap(([path, ops]) => Object.entries(ops).map(([m, op]) => `${m.toUpperCase()} ${path} ${op["x-scope"]}`)).sort();
    assertEquals(documented, ROUTES.map((r) => `${r.method} ${r.path} ${r.scope}`).sort(), "documented operations");
    // Every $ref resolves.
    const refs = JSON.stringify(doc).match(/#\/components\/schemas\/\w+/g) ?? [];
    for (const r of refs) assert(doc.components.schemas[r.split("/").pop()!], `unresolved ${r}`);

    // Every documented operation is served: with a key holding every scope, none is 404 or 405;
    // an undocumented one is.
    const user = await apiUser();
    const { key } = await newKey(user, SCOPES);
    const [bot] = await db()`insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
                             values (${user}, 'doc', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1) returning id`;
    for (const r of ROUTES) {
      const res = await call(r.method, pathOf(r.path, bot.id), key, r.body ? {} : undefined);
      const answer = await res.json();
      const unrouted = res.status === 405 || (res.status === 404 && String(answer.error).startsWith("no such endpoint"));
      assert(!unrouted, `${r.method} ${r.path} is documented but answered ${res.status}`);
    }
    assertEquals((await call("GET", "/v1/nothing", key)).status, 404);
    assertEquals((await call("DELETE", "/v1/bots", key)).status, 405);
  } finally {
    await done();
  }
});

Deno.test("bots through a key: create, read, start, pause, stop; answers match the documented schemas", async () => {
  try {
    const user = await apiUser();
    const { key } = await newKey(user, ["bots:read", "bots:write", "trades:read"]);
    const schemaOf = (op: string) => ROUTES.find((r) => r.operationId === op)!.response;
    const conforms = (value: unknown, op: string) => {
      const problem = check(value, schemaOf(op), "", resolveRef);
      assert(problem === null, `${op}: ${problem}`);
    };

    const created = await call("POST", "/v1/bots", key, { ...NEW_BOT, parameters: { fast: 5, slow: 20 } });
    assertEquals(created.status, 201);
    assertEquals(created.headers.get("RateLimit-Limit"), "1000");
    const bot = await created.json();
    conforms(bot, "createBot");
    assertEquals([bot.name, bot.status, bot.is_paper_trade, bot.initial_balance], ["api bot", "stopped", true, "1000.50000000"]);
    const [stored] = await db()`select parameters from public.bots where id = ${bot.id}`;
    assertEquals(stored.parameters, { fast: 5, slow: 20 }, "parameters are stored as the JSON object sent");

    for (const [op, path, status] of [["startBot", "start", "running"], ["pauseBot", "pause", "paused"], ["stopBot", "stop", "stopped"]]) {
      const res = await call("POST", `/v1/bots/${bot.id}/${path}`, key);
      assertEquals(res.status, 200, op);
      const body = await res.json();
      conforms(body, op);
      assertEquals(body.status, status, op);
      const [row] = await db()`select status from public.bots where id = ${bot.id}`;
      assertEquals(row.status, status, `${op} in the table`);
    }

    const listed = await call("GET", "/v1/bots", key);
    const list = await listed.json();
    conforms(list, "listBots");
    assertEquals(list.data.map((b: { id: string }) => b.id), [bot.id]);
    const one = await call("GET", `/v1/bots/${bot.id}`, key);
    conforms(await one.json(), "getBot");

    await db()`insert into public.bot_leases (bot_id, epoch, expires_at) values (${bot.id}, 1, now() + interval '1 minute')`;
    const [order] = await db()`insert into public.orders (bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, lease_epoch)
                               values (${bot.id}, ${user}, ${"api-" + bot.id}, 'binance', 'ETH/BTC', 'buy', 'market', 1, 1) returning id`;
    await db()`insert into public.trades (bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time)
               values (${bot.id}, ${user}, 'binance', 'ETH/BTC', 'buy', 1, 0.05, now())`;
    const orders = await (await call("GET", `/v1/bots/${bot.id}/orders`, key)).json();
    conforms(orders, "listBotOrders");
    assertEquals(orders.data.map((o: { id: string }) => o.id), [order.id]);
    const trades = await (await call("GET", `/v1/bots/${bot.id}/trades`, key)).json();
    conforms(trades, "listBotTrades");
    assertEquals([trades.data.length, trades.data[0].price], [1, "0.050000000000"]);
  } finally {
    await done();
  }
});

Deno.test("each route needs its scope: 403 names it and nothing is written", async () => {
  try {
    const user = await apiUser();
    const [bot] = await db()`insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
                             values (${user}, 'scoped', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1) returning id`;
    for (const scope of SCOPES) {
      const { key } = await newKey(user, SCOPES.filter((s) => s !== scope));
      for (const r of ROUTES.filter((r) => r.scope === scope)) {
        const body = r.operationId === "createBot" ? NEW_BOT
          : r.operationId === "publishSignal" ? { strategy_id: crypto.randomUUID(), pair: "ETH/BTC", side: "long" }
          : r.operationId === "startBacktest" ? NEW_BACKTEST
          : r.operationId === "requestData" ? { trading_pair: "BTC/USDT", timeframe: "1h", start_date: "2024-01-01T00:00:00Z" }
          : undefined;
        const res = await call(r.method, pathOf(r.path, bot.id), key, body);
        assertEquals(res.status, 403, `${r.operationId} without ${scope}`);
        assertEquals(await res.json(), { error: `this API key lacks the scope ${scope}`, scope }, r.operationId);
      }
    }
    assertEquals(await botCount(user), 1, "bots after refused writes");
    assertEquals(await backtestCount(user), 0, "backtests after refused writes");
    const [requests] = await db()`select count(*)::int as n from public.data_requests where user_id = ${user}`;
    assertEquals(requests.n, 0, "data requests after refused writes");
    const [row] = await db()`select status from public.bots where id = ${bot.id}`;
    assertEquals(row.status, "stopped");
  } finally {
    await done();
  }
});

Deno.test("a key acts as its user: row-level security hides and protects other users' bots", async () => {
  try {
    const alice = await apiUser();
    const bob = await apiUser();
    const [bot] = await db()`insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
                             values (${alice}, 'alice''s', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1) returning id`;
    const { key } = await newKey(bob, ["bots:read", "bots:write", "trades:read"]);
    assertEquals((await (await call("GET", "/v1/bots", key)).json()).data, []);
    assertEquals((await call("GET", `/v1/bots/${bot.id}`, key)).status, 404);
    assertEquals((await call("GET", `/v1/bots/${bot.id}/trades`, key)).status, 404);
    assertEquals((await call("POST", `/v1/bots/${bot.id}/start`, key)).status, 404);
    const [row] = await db()`select status from public.bots where id = ${bot.id}`;
    assertEquals(row.status, "stopped", "alice's bot did not start");
    // A bot bob creates is his, whatever the body says (user_id is not a field).
    const res = await call("POST", "/v1/bots", key, { ...NEW_BOT, user_id: alice });
    assertEquals([res.status, (await res.json()).error], [400, "user_id is not a known field"]);
  } finally {
    await done();
  }
});

Deno.test("unknown, malformed, revoked and expired keys all get the same 401", async () => {
  try {
    const user = await apiUser();
    const revoked = await newKey(user, ["bots:read"]);
    const expired = await newKey(user, ["bots:read"], new Date(Date.now() + 60_000).toISOString());
    await db().begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', ${JSON.stringify({ sub: user, role: "authenticated" })}, true),
                      set_config('role', 'authenticated', true)`;
      await tx`select * from public.revoke_api_key(${revoked.id})`;
    });
    await db()`update public.api_keys set expires_at = now() - interval '1 second' where id = ${expired.id}`;
    const answers = [];
    for (const key of [revoked.key, expired.key, "tf_live_" + "A".repeat(32), "tf_live_short", "sk_live_whatever", null]) {
      const res = await call("GET", "/v1/bots", key);
      answers.push([res.status, await res.json(), res.headers.get("WWW-Authenticate")]);
    }
    for (const a of answers) assertEquals(a, [401, { error: "invalid API key" }, 'Bearer realm="api"']);
    const [k] = await db()`select last_used_at from public.api_keys where id = ${revoked.id}`;
    assertEquals(k.last_used_at, null, "a refused key is not marked used");
  } finally {
    await done();
  }
});

Deno.test("over the plan's rate: 429 with Retry-After and RateLimit headers, and nothing written", async () => {
  try {
    const user = await apiUser("user", 2);
    const { key, id } = await newKey(user, ["bots:read", "bots:write"]);
    const first = await call("GET", "/v1/bots", key);
    assertEquals([first.status, first.headers.get("RateLimit-Limit"), first.headers.get("RateLimit-Remaining")], [200, "2", "1"]);
    await first.body?.cancel();
    const second = await call("GET", "/v1/bots", key);
    assertEquals([second.status, second.headers.get("RateLimit-Remaining")], [200, "0"]);
    await second.body?.cancel();
    const [before] = await db()`select last_used_at from public.api_keys where id = ${id}`;
    const third = await call("POST", "/v1/bots", key, NEW_BOT);
    assertEquals(third.status, 429);
    const retry = Number(third.headers.get("Retry-After"));
    assert(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assertEquals([third.headers.get("RateLimit-Limit"), third.headers.get("RateLimit-Remaining")], ["2", "0"]);
    assert(Number(third.headers.get("RateLimit-Reset")) >= 1, "RateLimit-Reset");
    assert(((await third.json()).error as string).includes("api_requests_per_minute"), "names the limit");
    assertEquals(await botCount(user), 0, "no bot from a refused request");
    const [after] = await db()`select last_used_at from public.api_keys where id = ${id}`;
    assertEquals(after.last_used_at, before.last_used_at, "a refused request does not touch the key");
  } finally {
    await done();
  }
});

Deno.test("bodies that do not match the schema get 400 naming the field, before the key is used", async () => {
  try {
    const user = await apiUser("user", 1000);
    const { key, id } = await newKey(user, ["bots:write", "signals:write"]);
    const cases: [unknown, string][] = [
      [{ ...NEW_BOT, name: undefined }, "name is required"],
      [{ ...NEW_BOT, exchange: "nasdaq" }, "exchange must be one of"],
      [{ ...NEW_BOT, stake_amount: -1 }, "stake_amount must be greater than 0"],
      [{ ...NEW_BOT, initial_balance: "1e3" }, "initial_balance must match"],
      [{ ...NEW_BOT, trading_pair: "eth-btc" }, "trading_pair must match"],
      [{ ...NEW_BOT, max_open_trades: 1.5 }, "max_open_trades must be an integer"],
      [{ ...NEW_BOT, strategy_id: "nope" }, "strategy_id must be a UUID"],
      [{ ...NEW_BOT, is_paper_trade: false }, "is_paper_trade is not a known field"],
      [[NEW_BOT], "body must be a JSON object"],
      ["{not json", ""],
    ];
    for (const [body, error] of cases) {
      const res = await call("POST", "/v1/bots", key, body);
      assertEquals(res.status, 400, JSON.stringify(body));
      const answer = await res.json();
      assert((answer.error as string).startsWith(error), `${answer.error} should start with ${error}`);
    }
    const sig = await call("POST", "/v1/signals", key, { strategy_id: crypto.randomUUID(), side: "long" });
    assertEquals([sig.status, (await sig.json()).field], [400, "pair"]);
    const badId = await call("POST", "/v1/bots/42/start", key);
    assertEquals([badId.status, (await badId.json()).field], [400, "id"]);
    // What the database refuses is a 400 too (stake beyond the numeric's range), and writes nothing.
    const big = await call("POST", "/v1/bots", key, { ...NEW_BOT, stake_amount: "99999999999999999999" });
    assertEquals(big.status, 400);
    await big.body?.cancel();
    assertEquals(await botCount(user), 0, "no bot from a refused body");
    const [k] = await db()`select last_used_at from public.api_keys where id = ${id}`;
    assert(k.last_used_at !== null, "the database refusal came after the key was used");
  } finally {
    await done();
  }
});

Deno.test("signals: a provider publishes on their own strategy; a user's key cannot", async () => {
  try {
    const provider = await apiUser("provider");
    const user = await apiUser("user");
    const [strategy] = await db()`insert into public.strategies (user_id, name, strategy_type, engine, is_public, monthly_price)
                                  values (${provider}, 'signals', 'marketplace', 'sma_cross', true, 0) returning id`;
    const { key } = await newKey(provider, ["signals:write"]);
    const res = await call("POST", "/v1/signals", key, {
      strategy_id: strategy.id, pair: "BTC/USDT", side: "long", entry_price: "65000.5", stop_loss: 60000, idempotency_key: "a1",
    });
    assertEquals(res.status, 201);
    const signal = await res.json();
    const problem = check(signal, ROUTES.find((r) => r.operationId === "publishSignal")!.response as Schema, "", resolveRef);
    assert(problem === null, `publishSignal: ${problem}`);
    assertEquals([signal.pair, signal.entry_price, signal.status], ["BTC/USDT", "65000.500000000000", "open"]);
    const again = await call("POST", "/v1/signals", key, { strategy_id: strategy.id, pair: "BTC/USDT", side: "long", idempotency_key: "a1" });
    assertEquals(again.status, 409);
    await again.body?.cancel();

    const { key: userKey } = await newKey(user, ["signals:write"]);
    const refused = await call("POST", "/v1/signals", userKey, { strategy_id: strategy.id, pair: "BTC/USDT", side: "short" });
    assertEquals(refused.status, 403);
    await refused.body?.cancel();
    const [n] = await db()`select count(*)::int as n from public.signals where strategy_id = ${strategy.id}`;
    assertEquals(n.n, 1);
  } finally {
    await done();
  }
});

Deno.test("the portfolio through a key: value and holdings of the key's user only", async () => {
  try {
    const alice = await apiUser();
    const bob = await apiUser();
    await db()`insert into public.aggregated_holdings (user_id, symbol, total_units, average_cost, last_price, account_count)
               values (${alice}, 'AAPL', 10, 150, 190.5, 1), (${alice}, 'MSFT', 2, 300, 410, 1), (${bob}, 'TSLA', 5, 200, 250, 1)`;
    const { key } = await newKey(alice, ["portfolio:read"]);
    const res = await call("GET", "/v1/portfolio", key);
    assertEquals(res.status, 200);
    const portfolio = await res.json();
    conformsTo(portfolio, "getPortfolio");
    assertEquals(portfolio.holdings.map((h: { symbol: string; market_value: string }) => [h.symbol, Number(h.market_value)]),
                 [["AAPL", 1905], ["MSFT", 820]], "alice's holdings, largest first");
    assertEquals([portfolio.value.holdings_count, Number(portfolio.value.total_value)], [2, 2725]);
    const { key: bobKey } = await newKey(bob, ["bots:read"]);
    const refused = await call("GET", "/v1/portfolio", bobKey);
    assertEquals([refused.status, (await refused.json()).scope], [403, "portfolio:read"]);
    const { key: bobPortfolio } = await newKey(bob, ["portfolio:read"]);
    const bobs = await (await call("GET", "/v1/portfolio", bobPortfolio)).json();
    assertEquals(bobs.holdings.map((h: { symbol: string }) => h.symbol), ["TSLA"], "bob sees only his");
  } finally {
    await done();
  }
});

Deno.test("backtests through a key: start one, list it, read it and its result; others' stay hidden", async () => {
  try {
    const alice = await apiUser();
    const bob = await apiUser();
    const { key } = await newKey(alice, ["backtests:read", "backtests:write"]);
    const started = await call("POST", "/v1/backtests", key, {
      ...NEW_BACKTEST, start_date: "2026-01-01T00:00:00Z", end_date: "2026-02-01T00:00:00Z",
    });
    const run = await started.json();
    assertEquals(started.status, 201, JSON.stringify(run));
    conformsTo(run, "startBacktest");
    assertEquals([run.status, run.strategy, run.parameters, run.start_date], ["queued", "rsi", { period: 14 }, "2026-01-01T00:00:00.000Z"]);
    const [job] = await db()`select count(*)::int as n from public.jobs where kind = 'backtest.run' and payload ->> 'run_id' = ${run.id}`;
    assertEquals(job.n, 1, "the run is queued for the fleet, as from the app");

    const list = await (await call("GET", "/v1/backtests", key)).json();
    conformsTo(list, "listBacktests");
    assertEquals(list.data.map((r: { id: string }) => r.id), [run.id]);
    const pending = await (await call("GET", `/v1/backtests/${run.id}`, key)).json();
    conformsTo(pending, "getBacktest");
    assertEquals(pending.result, null);

    await db()`insert into public.backtest_results (run_id, user_id, trading_pair, timeframe, start_date, end_date, initial_balance,
                 final_balance, total_return, total_return_percentage, max_drawdown, win_rate, total_trades, winning_trades,
                 losing_trades, best_trade, worst_trade)
               values (${run.id}, ${alice}, 'BTC/USDT', '1h', '2026-01-01', '2026-02-01', 1000, 1100, 100, 10, 5, 60, 5, 3, 2, 50, -20)`;
    await db()`update public.backtest_runs set status = 'completed', finished_at = now() where id = ${run.id}`;
    const done = await (await call("GET", `/v1/backtests/${run.id}`, key)).json();
    conformsTo(done, "getBacktest");
    assertEquals([done.status, done.result.final_balance, done.result.total_trades], ["completed", "1100.00000000", 5]);

    const { key: bobKey } = await newKey(bob, ["backtests:read", "backtests:write"]);
    assertEquals((await call("GET", `/v1/backtests/${run.id}`, bobKey)).status, 404, "alice's run is hidden from bob");
    assertEquals((await (await call("GET", "/v1/backtests", bobKey)).json()).data, []);
  } finally {
    await done();
  }
});

Deno.test("a backtest body that does not match the schema is 400 naming the field, and nothing is queued", async () => {
  try {
    const user = await apiUser();
    const { key } = await newKey(user, ["backtests:write"]);
    const cases: [unknown, string][] = [
      [{ ...NEW_BACKTEST, strategy: undefined }, "strategy"],
      [{ ...NEW_BACKTEST, timeframe: "2h" }, "timeframe"],
      [{ ...NEW_BACKTEST, start_date: "yesterday" }, "start_date"],
      [{ ...NEW_BACKTEST, trading_pair: "btc" }, "trading_pair"],
      [{ ...NEW_BACKTEST, user_id: crypto.randomUUID() }, "user_id"],
    ];
    for (const [body, field] of cases) {
      const res = await call("POST", "/v1/backtests", key, body);
      assertEquals([res.status, (await res.json()).field], [400, field], JSON.stringify(body));
    }
    // The database's own refusal (end before start) is a 400 too, and writes nothing.
    const backwards = await call("POST", "/v1/backtests", key, {
      ...NEW_BACKTEST, start_date: "2026-02-01T00:00:00Z", end_date: "2026-01-01T00:00:00Z",
    });
    assertEquals(backwards.status, 400);
    await backwards.body?.cancel();
    assertEquals(await backtestCount(user), 0);
  } finally {
    await done();
  }
});

Deno.test("every call with a known key is metered: rolled up per minute and day, seen by its owner only", async () => {
  try {
    const alice = await apiUser();
    const bob = await apiUser();
    const { key, id } = await newKey(alice, ["bots:read"]);
    for (let i = 0; i < 3; i++) await (await call("GET", "/v1/bots", key)).body?.cancel();
    await (await call("POST", "/v1/bots", key, NEW_BOT)).body?.cancel(); // 403: no bots:write
    await (await call("GET", "/v1/bots", "tf_live_" + "B".repeat(32))).body?.cancel(); // unknown: nobody to meter
    await usageWritten();
    const raw = await db()`select endpoint, status, latency_ms from private.api_calls where key_id = ${id} order by status, endpoint`;
    assertEquals(raw.map((r) => [r.endpoint, r.status]),
                 [["GET /v1/bots", 200], ["GET /v1/bots", 200], ["GET /v1/bots", 200], ["POST /v1/bots", 403]]);
    assert(raw.every((r) => r.latency_ms >= 0), "latencies are recorded");

    const [rolled] = await db()`select public.api_usage_rollup() as r`;
    assert((rolled.r as { calls: number }).calls >= 4, `rolled ${JSON.stringify(rolled.r)}`);
    const [left] = await db()`select count(*)::int as n from private.api_calls where key_id = ${id}`;
    assertEquals(left.n, 0, "rolled-up calls leave the raw table");
    const seen = async (user: string, relation: string) =>
      await db().begin(async (tx) => {
        await tx`select set_config('request.jwt.claims', ${JSON.stringify({ sub: user, role: "authenticated" })}, true),
                        set_config('role', 'authenticated', true)`;
        return await tx.unsafe(`select * from public.${relation} where key_id = $1 order by 1`, [id]);
      });
    const minutes = await seen(alice, "api_usage_per_minute");
    assertEquals(minutes.map((m) => [m.endpoint, m.status, m.calls]).sort(),
                 [["GET /v1/bots", 200, 3], ["POST /v1/bots", 403, 1]]);
    const days = await seen(alice, "api_usage_per_day");
    assertEquals(days.map((d) => [Number(d.calls), Number(d.errors)]), [[4, 1]]);
    assertEquals((await seen(bob, "api_usage_per_minute")).length, 0, "bob sees none of alice's usage");
    assertEquals((await seen(bob, "api_usage_per_day")).length, 0, "bob sees none of alice's usage per day");
  } finally {
    await done();
  }
});

Deno.test("a plan may limit each key: one key at its limit gets 429 while the user's other key still passes", async () => {
  try {
    const user = await apiUser("user", 100, { api_key_requests_per_minute: 2 });
    const a = await newKey(user, ["bots:read"]);
    const b = await newKey(user, ["bots:read"]);
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const res = await call("GET", "/v1/bots", a.key);
      statuses.push([res.status, res.headers.get("RateLimit-Limit")]);
      if (res.status === 429) {
        assert(((await res.json()).error as string).includes("api_key_requests_per_minute"), "names the per-key limit");
        assert(Number(res.headers.get("Retry-After")) >= 1, "Retry-After");
      } else await res.body?.cancel();
    }
    assertEquals(statuses, [[200, "2"], [200, "2"], [429, "2"]]);
    const other = await call("GET", "/v1/bots", b.key);
    assertEquals(other.status, 200, "the user's other key has its own bucket");
    await other.body?.cancel();
  } finally {
    await done();
  }
});
