// Run from supabase/functions with SUPABASE_DB_URL pointing at a migrated database:
//   deno test --allow-net --allow-env --allow-read --allow-run
// Research through the public API: optimisations and batches queued with a key (the same
// backtest_runs rows the app inserts), their ranked results read back, each answer checked
// against the OpenAPI document, and bodies that do not fit refused naming the field.
import { closeDb, db } from "../_shared/db.ts";
import { call, conformsTo, newKey, newUser } from "./test_support.ts";
import { usageWritten } from "./usage.ts";

/** JSON with object keys sorted: jsonb keeps its own key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v);
}

function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = canonical(actual), e = canonical(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}

async function runCount(user: string): Promise<number> {
  const [r] = await db()`select count(*)::int as n from public.backtest_runs where user_id = ${user}`;
  return r.n as number;
}

async function done(): Promise<void> {
  await usageWritten();
  await closeDb();
}

const RESULT_COLUMNS = `run_id, user_id, trading_pair, timeframe, start_date, end_date, initial_balance, final_balance,
  total_return, total_return_percentage, max_drawdown, win_rate, total_trades, winning_trades, losing_trades, best_trade,
  worst_trade, metadata`;

Deno.test("a batch through a key: queued for its markets, read back with each market's result, best first", async () => {
  try {
    const user = await newUser("research-api", { max_concurrent_backtests: 10 });
    const key = (await newKey(user, ["backtests:read", "backtests:write"], null, "research")).key;
    const started = await call("POST", "/v1/backtests", key, {
      mode: "batch", strategy: "rsi", trading_pairs: ["ETH/BTC", "LTC/BTC", "XLM/BTC"], timeframe: "5m",
    });
    const run = await started.json();
    assertEquals(started.status, 201, JSON.stringify(run));
    conformsTo(run, "startBacktest");
    assertEquals([run.mode, run.trading_pair, run.trading_pairs, run.status], ["batch", "ETH/BTC", ["ETH/BTC", "LTC/BTC", "XLM/BTC"], "queued"]);
    const [job] = await db()`select count(*)::int as n from public.jobs where kind = 'backtest.run' and payload ->> 'run_id' = ${run.id}`;
    assertEquals(job.n, 1, "queued for the fleet as from the app");

    for (const [pair, ret] of [["ETH/BTC", -2], ["LTC/BTC", 7], ["XLM/BTC", 3]] as const) {
      await db().unsafe(
        `insert into public.backtest_results (${RESULT_COLUMNS})
         values ($1, $2, $3, '5m', '2026-01-01', '2026-02-01', 1000, $4, $5, $6, 5, 60, 5, 3, 2, 50, -20, '{}')`,
        [run.id, user, pair, 1000 + ret * 10, ret * 10, ret],
      );
    }
    await db()`update public.backtest_runs set status = 'completed', finished_at = now(),
                 summary = ${db().json({ mean_return_percentage: 2.6667, best_market: "LTC/BTC" })} where id = ${run.id}`;
    const read = await (await call("GET", `/v1/backtests/${run.id}`, key)).json();
    conformsTo(read, "getBacktest");
    assertEquals(read.results.map((r: { trading_pair: string }) => r.trading_pair), ["LTC/BTC", "XLM/BTC", "ETH/BTC"],
      "the markets, best return first");
    assertEquals([read.summary.best_market, read.ranked], ["LTC/BTC", null]);
  } finally {
    await done();
  }
});

Deno.test("an optimisation through a key: its grid queued, its ranked parameter sets read back", async () => {
  try {
    const user = await newUser("research-api", { max_concurrent_backtests: 10 });
    const key = (await newKey(user, ["backtests:read", "backtests:write"], null, "research")).key;
    const optimization = { ranges: { fast: [5, 8, 10], slow: { start: 20, stop: 40, step: 10 } }, metric: "sharpe_ratio",
                           oos_fraction: 0.3, top: 50 };
    const started = await call("POST", "/v1/backtests", key, {
      mode: "optimize", strategy: "sma_cross", parameters: { fast: 10, slow: 20 }, trading_pair: "ETH/BTC",
      timeframe: "5m", optimization,
    });
    const run = await started.json();
    assertEquals(started.status, 201, JSON.stringify(run));
    conformsTo(run, "startBacktest");
    assertEquals([run.mode, run.optimization, run.trading_pairs], ["optimize", optimization, null]);

    const ranked = [{ params: { fast: 8, slow: 30 }, stats: { sharpe_ratio: 1.9 }, oos_stats: { sharpe_ratio: 1.1 } },
                    { params: { fast: 5, slow: 20 }, stats: { sharpe_ratio: 1.2 }, oos_stats: null }];
    await db().unsafe(
      `insert into public.backtest_results (${RESULT_COLUMNS})
       values ($1, $2, 'ETH/BTC', '5m', '2026-01-01', '2026-02-01', 1000, 1100, 100, 10, 5, 60, 5, 3, 2, 50, -20,
               jsonb_build_object('optimization', $3::text::jsonb))`,
      [run.id, user, JSON.stringify({ ranked, best_params: { fast: 8, slow: 30 } })],
    );
    await db()`update public.backtest_runs set status = 'completed', finished_at = now() where id = ${run.id}`;
    const read = await (await call("GET", `/v1/backtests/${run.id}`, key)).json();
    conformsTo(read, "getBacktest");
    assertEquals([read.ranked, read.results, read.result.final_balance], [ranked, [], "1100.00000000"]);
  } finally {
    await done();
  }
});

Deno.test("research bodies that do not fit are 400 naming the field, and nothing is queued", async () => {
  try {
    const user = await newUser("research-api", { max_concurrent_backtests: 10 });
    const key = (await newKey(user, ["backtests:write"], null, "research")).key;
    const base = { strategy: "rsi", timeframe: "5m" };
    const cases: [unknown, string][] = [
      [{ ...base, mode: "grid", trading_pair: "ETH/BTC" }, "mode"],
      [{ ...base, mode: "batch" }, "trading_pairs"],
      [{ ...base, mode: "batch", trading_pairs: ["ETH/BTC", "eth"] }, "trading_pairs[1]"],
      [{ ...base, mode: "batch", trading_pairs: Array.from({ length: 21 }, (_, i) => `A${i}/BTC`) }, "trading_pairs"],
      [{ ...base, trading_pairs: ["ETH/BTC"] }, "trading_pairs"],
      [{ ...base }, "trading_pair"],
      [{ ...base, mode: "optimize", trading_pair: "ETH/BTC", optimization: [1] }, "optimization"],
    ];
    for (const [body, field] of cases) {
      const res = await call("POST", "/v1/backtests", key, body);
      assertEquals([res.status, (await res.json()).field], [400, field], JSON.stringify(body));
    }
    // The database's own refusals (a repeated market) are 400 too.
    const repeated = await call("POST", "/v1/backtests", key, { ...base, mode: "batch", trading_pairs: ["ETH/BTC", "ETH/BTC"] });
    assertEquals(repeated.status, 400);
    await repeated.body?.cancel();
    assertEquals(await runCount(user), 0, "nothing queued by a refused body");
  } finally {
    await done();
  }
});
