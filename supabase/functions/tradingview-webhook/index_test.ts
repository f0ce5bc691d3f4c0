import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { db } from "../_shared/db.ts";
import { badBytesTests, done, post, t } from "../_shared/webhook_test_utils.ts";
import { handler, normalizePair } from "./index.ts";

const URL_ = "http://localhost/tradingview-webhook";

async function providerWithToken(): Promise<{ strategy: string; token: string }> {
  const sql = db();
  const user = crypto.randomUUID();
  const strategy = crypto.randomUUID();
  await sql`insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
            values (${user}, 'authenticated', 'authenticated', ${`tv-${user}@test.local`},
                    ${sql.json({ role: "provider" })}, ${sql.json({})}, now(), now())`;
  await sql`insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified)
            values (${strategy}, ${user}, 'TV strategy', 'marketplace', true, true)`;
  const claims = JSON.stringify({ sub: user, role: "authenticated", app_metadata: { role: "provider" } });
  const token = await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claims}, true)`;
    const [r] = await tx<{ t: string }[]>`select public.rotate_tradingview_token(${strategy}) as t`;
    return r.t;
  });
  return { strategy, token: token as string };
}

async function signals(strategy: string) {
  const rows = await db()<{ status: string; side: string; pair: string; source: string; result_pct: string | null }[]>`
    select status, side, pair, source, result_pct::text from public.signals where strategy_id = ${strategy}`;
  return rows.map((r) => ({ ...r }));
}

const send = (body: unknown, token?: string) =>
  handler(post(token ? `${URL_}?token=${token}` : URL_, typeof body === "string" ? body : JSON.stringify(body), {}));

t("tickers become BASE/QUOTE pairs", () => {
  assertEquals(normalizePair("BINANCE:BTCUSDT"), "BTC/USDT");
  assertEquals(normalizePair("ethusdt.p"), "ETH/USDT");
  assertEquals(normalizePair("SOL/USDC"), "SOL/USDC");
  assertEquals(normalizePair("XYZ"), null);
  return Promise.resolve();
});

t("a valid alert publishes a signal of the token's strategy, queued for the fleet", async () => {
  const { strategy, token } = await providerWithToken();
  const res = await send({ action: "buy", ticker: "BINANCE:BTCUSDT", price: "100.5", sl: 95, tp: 120, id: "a1" }, token);
  assertEquals(res.status, 201);
  const body = await res.json();
  assertEquals(body.status, "created");
  assertEquals(await signals(strategy), [{ status: "open", side: "long", pair: "BTC/USDT", source: "tradingview", result_pct: null }]);
  const [job] = await db()`select count(*)::int as n from public.jobs where kind = 'signals.fanout'
                            and payload ->> 'signal_id' = ${body.signal_id}`;
  assertEquals(job.n, 1);
});

t("a token past 60 alerts a minute gets 429 with Retry-After; another token goes on", async () => {
  const { strategy, token } = await providerWithToken();
  for (let i = 0; i < 60; i++) {
    const res = await send({ action: "buy", ticker: "NOT A PAIR" }, token);
    assertEquals(res.status, 400);
    await res.body?.cancel();
  }
  const refused = await send({ action: "buy", ticker: "BINANCE:BTCUSDT", price: 1, id: "late" }, token);
  assertEquals(refused.status, 429);
  assertEquals(Number(refused.headers.get("Retry-After")) >= 1, true);
  await refused.body?.cancel();
  assertEquals(await signals(strategy), [], "the refused alert published nothing");
  const other = await providerWithToken();
  const res = await send({ action: "buy", ticker: "BINANCE:BTCUSDT", price: 1, id: "other" }, other.token);
  assertEquals(res.status, 201);
  await res.body?.cancel();
});

t("a duplicated alert yields one signal; an exit closes it with its result", async () => {
  const { strategy, token } = await providerWithToken();
  const alert = { token, action: "short", pair: "ETH/USDT", price: 200, alert_id: 7 };
  assertEquals((await send(alert)).status, 201);
  const again = await send(alert);
  assertEquals(again.status, 200);
  assertEquals((await again.json()).duplicate, true);
  await db()`insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
             values ('binance', 'ETH/USDT', '1h', date_trunc('hour', now()) - interval '1 hour', 190, 205, 175, 180)
             on conflict do nothing`;
  const exit = await send({ token, action: "exit", pair: "ETHUSDT", price: 180 });
  assertEquals(exit.status, 200);
  assertEquals((await exit.json()).status, "closed");
  assertEquals(await signals(strategy), [{ status: "closed", side: "short", pair: "ETH/USDT", source: "tradingview", result_pct: "10.0000" }]);
  const nothing = await send({ token, action: "close", pair: "ETHUSDT", price: 180 });
  assertEquals(nothing.status, 404);
  await nothing.body?.cancel();
});

t("an exit on a pair the fleet holds no prices for is refused and the signal stays open", async () => {
  const { strategy, token } = await providerWithToken();
  assertEquals((await send({ token, action: "buy", pair: "ZZZ/USDT", price: 1, alert_id: 1 })).status, 201);
  const exit = await send({ token, action: "exit", pair: "ZZZUSDT", price: 99 });
  assertEquals(exit.status, 400);
  assertMatch((await exit.json()).error, /no prices for ZZZ\/USDT/);
  assertEquals(await signals(strategy), [{ status: "open", side: "long", pair: "ZZZ/USDT", source: "tradingview", result_pct: null }]);
});

t("an invalid or missing token is refused and publishes nothing", async () => {
  const { strategy, token } = await providerWithToken();
  const wrong = await send({ action: "buy", pair: "BTC/USDT", price: 1 }, token + "x");
  assertEquals(wrong.status, 401);
  await wrong.body?.cancel();
  const missing = await send({ action: "buy", pair: "BTC/USDT", price: 1 });
  assertEquals(missing.status, 401);
  await missing.body?.cancel();
  assertEquals(await signals(strategy), []);
});

t("a stale alert is refused", async () => {
  const { strategy, token } = await providerWithToken();
  const old = new Date(Date.now() - 301_000).toISOString();
  const res = await send({ action: "buy", pair: "BTC/USDT", price: 1, time: old }, token);
  assertEquals(res.status, 400);
  assertEquals(await res.json(), { error: "alert is stale" });
  const fresh = await send({ action: "buy", pair: "BTC/USDT", price: 1, time: new Date().toISOString() }, token);
  assertEquals(fresh.status, 201);
  await fresh.body?.cancel();
  assertEquals((await signals(strategy)).length, 1);
});

t("malformed alerts are refused with 400", async () => {
  const { strategy, token } = await providerWithToken();
  for (const body of ["{{strategy.order.action}}", { action: "buy" }, { action: "teleport", pair: "BTC/USDT" },
                      { action: "buy", pair: "BTC/USDT", price: "{{close}}" }, { action: "entry", pair: "BTC/USDT" },
                      { action: "buy", pair: "BTC/USDT", price: 1, leverage: 500 }]) {
    const res = await send(body, token);
    assertEquals(res.status, 400, JSON.stringify(body));
    await res.body?.cancel();
  }
  assertEquals(await signals(strategy), []);
});

// Alerts in any order. An entry, an update and an exit of one position, each order they can
// arrive in, with a re-delivery of the entry after the exit: the natural order ends closed at
// the exit's price. An update or exit that arrives before its entry is refused with 404
// (nothing is kept for later: TradingView does not retry, and a stray exit must not close the
// next entry), so those orders end with the signal open and the refusal in the alert log.
const ALERTS = ["entry", "update", "exit"] as const;
const permutations = <T>(xs: readonly T[]): T[][] =>
  xs.length <= 1 ? [[...xs]] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));

async function signalState(strategy: string) {
  const rows = await db()<{ status: string; stop_loss: string | null; exit_price: string | null }[]>`
    select status, stop_loss::float8::text as stop_loss, exit_price::float8::text as exit_price
    from public.signals where strategy_id = ${strategy}`;
  return rows.map((r) => ({ ...r }));
}

t("alerts in every order: the entry counts once, an early update or exit is refused and stores nothing", async () => {
  await db()`insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
             values ('binance', 'SOL/USDT', '1h', date_trunc('hour', now()) - interval '1 hour', 100, 112, 95, 110)
             on conflict do nothing`;
  for (const order of permutations(ALERTS)) {
    const { strategy, token } = await providerWithToken();
    const alerts = {
      entry: { token, action: "buy", pair: "SOLUSDT", price: 100, alert_id: `e-${strategy}` },
      update: { token, action: "update", pair: "SOLUSDT", sl: 96 },
      exit: { token, action: "exit", pair: "SOLUSDT", price: 110 },
    };
    const statuses: Record<string, number> = {};
    for (const name of [...order, "entry" as const]) { // the entry is delivered again last
      const res = await send(alerts[name]);
      const body = await res.json();
      statuses[name] = res.status;
      if (res.status === 404) {
        assertMatch(body.error, /no open signal on SOL\/USDT for this (update|exit): an alert that arrives before its entry is refused/);
      }
    }
    const seen = order.join(",");
    const at = (name: string) => order.indexOf(name as typeof ALERTS[number]);
    const exitLast = at("exit") > at("entry"); // the exit found the entry open
    const updated = at("update") > at("entry") && (!exitLast || at("update") < at("exit"));
    assertEquals(statuses.entry, 200, `${seen}: the re-delivered entry is a duplicate`);
    assertEquals(statuses.exit, exitLast ? 200 : 404, seen);
    assertEquals((await signalState(strategy)).length, 1, `${seen}: one signal`);
    const [signal] = await signalState(strategy);
    assertEquals(signal.status, exitLast ? "closed" : updated ? "updated" : "open", seen);
    assertEquals(signal.exit_price, exitLast ? "110" : null, seen);
    assertEquals(signal.stop_loss, updated ? "96" : null, seen);
    if (seen === ALERTS.join(",")) {
      assertEquals(signal, { status: "closed", stop_loss: "96", exit_price: "110" }, "the natural order");
    }
  }
});

// A fresh strategy per delivery; its URL carries the token (TradingView signs nothing).
let current = { strategy: "", token: "" };
badBytesTests({
  provider: "tradingview",
  handler,
  url: () => `${URL_}?token=${current.token}`,
  event: async () => {
    current = await providerWithToken();
    const strategy = current.strategy;
    const raw = JSON.stringify({ action: "buy", pair: "BTC/USDT", price: 100, id: crypto.randomUUID() });
    return { raw, stored: async () => (await signals(strategy)).length };
  },
  sign: () => Promise.resolve({}),
});

done();
