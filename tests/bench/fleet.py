"""Bot fleet benchmark: one worker process running 10,000 paper bots over 50 markets.

10 recorded BTC-quoted markets on 5 exchanges, a mix of strategies and parameters, and
replayed 5m candles. For each candle close it measures the time until every bot's
decision is persisted (fills, stops, strategy, credit holds, orders/trades/logs and
``bots.last_candle_at`` committed), then reports p50/p99 and the process's peak RSS.
The reference is the same fleet without sharing: one candle fetch and one strategy
computation per bot (the counts are printed side by side).

Last line: ``fleet: bots=<n> p50_s=<x> p99_s=<y> rss_mb=<z>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg

from tests.bench._common import bench_database, percentile
from worker.bots.clock import SteppedClock
from worker.bots.runner import PROGRESS_EVERY, BotRunner
from worker.candles import MarketData, ReplaySource
from worker.db import open_pool
from worker.fleet.leases import LeaseManager

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"
PAIRS = ["ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX", "XLM", "XMR", "ZEC"]
EXCHANGES = ["binance", "bybit", "kraken", "coinbase", "okx"]
STRATEGIES: list[tuple[str, dict[str, object]]] = [
    ("sma_cross", {"fast": 3, "slow": 8}),
    ("sma_cross", {"fast": 5, "slow": 20}),
    ("ema_cross", {"fast": 4, "slow": 12}),
    ("ema_cross", {"fast": 9, "slow": 21}),
    ("rsi", {"period": 14, "oversold": 35, "overbought": 65}),
    ("rsi", {"period": 7, "oversold": 30, "overbought": 70}),
    ("macd", {}),
    ("bollinger", {"period": 20, "std": 2}),
    ("bollinger", {"period": 14, "std": 1.5}),
    ("rsi_macd", {}),
]
START = datetime(2018, 1, 12, tzinfo=UTC)

SETUP = """
insert into public.plans (name, price_monthly, max_bots, max_strategies, features)
values ('Bench', 0, 100000, 10, '{"credits_per_trade": 0.01}') on conflict (name) do nothing;
insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
select gen_random_uuid(), 'authenticated', 'authenticated', 'bench' || g || '@bench.local', now(),
       '{"provider": "email"}', '{}', now(), now()
  from generate_series(1, %(users)s) g;
update public.subscriptions s set plan_id = (select id from public.plans where name = 'Bench'),
       status = 'active', expires_at = now() + interval '30 days';
insert into public.subscriptions (user_id, plan_id, status, expires_at)
select p.id, (select id from public.plans where name = 'Bench'), 'active', now() + interval '30 days'
  from public.profiles p where not exists (select 1 from public.subscriptions s where s.user_id = p.id);
"""
GRANTS = """
select public.credit_create_transfers(jsonb_agg(jsonb_build_object(
  'action', 'transfer', 'id', gen_random_uuid(), 'amount', 1000000, 'kind', 'grant',
  'debit_account_id', (select id from public.credit_accounts where code = 'system:grants'),
  'credit_account_id', a.id)))
  from public.credit_accounts a where a.kind = 'user'
"""
BOTS = """
insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, parameters, status,
                         initial_balance, stake_amount, stop_loss, take_profit)
select u.id, 'bench ' || i, m.exchange, m.pair, '5m', s.strategy, s.parameters::jsonb, 'running', 1, 0.05,
       case when i %% 3 = 0 then 2 end, case when i %% 4 = 0 then 3 end
  from generate_series(0, %(bots)s - 1) i
  join (select row_number() over () - 1 as k, id from public.profiles) u on u.k = i %% %(users)s
  join unnest(%(exchanges)s::text[], %(pairs)s::text[]) with ordinality as m(exchange, pair, n)
    on m.n - 1 = i %% %(markets)s
  join unnest(%(strategies)s::text[], %(params)s::text[]) with ordinality as s(strategy, parameters, n)
    on s.n - 1 = (i / %(markets)s) %% %(nstrat)s
"""


async def run(bots: int, closes: int) -> None:
    markets = [(ex, f"{p}/BTC") for ex in EXCHANGES for p in PAIRS]
    users = max(1, bots // 100)
    with bench_database("fleet") as url:
        t = time.perf_counter()
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for statement in SETUP.split(";"):
                if statement.strip():
                    await conn.execute(statement.replace("%(users)s", str(int(users))))
            await conn.execute(GRANTS)
            await conn.execute(
                BOTS,
                {
                    "bots": bots,
                    "users": users,
                    "markets": len(markets),
                    "exchanges": [m[0] for m in markets],
                    "pairs": [m[1] for m in markets],
                    "strategies": [s for s, _ in STRATEGIES],
                    "params": [json.dumps(p) for _, p in STRATEGIES],
                    "nstrat": len(STRATEGIES),
                },
            )
            worker = await (
                await conn.execute(
                    "select public.register_worker('bench', 'localhost', 1, 'bench', '{default}', %s, "
                    "'{\"leases\": true}')::text",
                    (bots * 2,),
                )
            ).fetchone()
        assert worker is not None
        print(
            f"setup: {bots} bots of {users} users on {len(markets)} markets in {time.perf_counter() - t:.1f}s"
        )

        pool = await open_pool(url, max_size=4)
        leases = LeaseManager(pool, str(worker[0]), ttl_s=3600)
        clock = SteppedClock(START)
        md = MarketData(ReplaySource(CANDLES), pool)
        runner = BotRunner(pool, leases, clock, md)
        try:
            t = time.perf_counter()
            await leases.sync()
            await runner.adopt(dict(leases.owned))
            print(f"leased and loaded {len(runner.bots)} bots in {time.perf_counter() - t:.1f}s")
            now = START
            await runner.process_close(now)  # first close: loads each market's history once
            fetches0 = md.fetches
            durations: list[float] = []
            for _ in range(closes):
                now += timedelta(minutes=5)
                await clock.advance_to(now)
                t = time.perf_counter()
                await runner.process_close(now)
                durations.append(time.perf_counter() - t)
            groups = len({b.config.group for b in runner.bots.values()})
            async with pool.connection() as conn:
                orders, trades = await (
                    await conn.execute(
                        "select (select count(*) from public.orders), (select count(*) from public.trades)"
                    )
                ).fetchone() or (0, 0)
                # progress of quiet bots is written every PROGRESS_EVERY candles (staggered)
                behind = await (
                    await conn.execute(
                        "select count(*) from public.bots where last_candle_at is null or last_candle_at < %s",
                        (now - timedelta(minutes=5 * PROGRESS_EVERY),),
                    )
                ).fetchone() or (0,)
        finally:
            await runner.close()
            await pool.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_close_fetch = (md.fetches - fetches0) / closes
    print(
        f"{closes} candle closes: {orders} orders, {trades} trades; "
        f"bots whose persisted progress lags more than {PROGRESS_EVERY} candles: {behind[0]}"
    )
    print(
        f"shared work per close: {per_close_fetch:.0f} candle fetches (reference without sharing: {bots}), "
        f"<= {groups} strategy computations (reference: {bots}) -> {bots / max(groups, 1):.0f}x fewer"
    )
    phases = runner.stats.phases[1:]
    print(
        f"per close: min {min(durations):.3f}s max {max(durations):.3f}s; p50 of market data "
        f"{percentile([p[0] for p in phases], 50):.3f}s, bot steps {percentile([p[1] for p in phases], 50):.3f}s, "
        f"persistence {percentile([p[2] for p in phases], 50):.3f}s"
    )
    print(
        f"fleet: bots={len(runner.bots) or bots} p50_s={percentile(durations, 50):.3f} "
        f"p99_s={percentile(durations, 99):.3f} rss_mb={rss_mb:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=10_000)
    parser.add_argument("--closes", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(run(args.bots, args.closes))


if __name__ == "__main__":
    main()
