"""Bot fleet benchmark, as a curve: paper bots over 50 markets, one to four worker processes.

10 recorded BTC-quoted markets on 5 exchanges, a mix of strategies and parameters, and
replayed 5m candles. Each size (by default 25,000 bots in 1 worker process, 50,000 in 2 and
100,000 in 4, all on one database) gets a fresh database. The workers share the bots by
their leases. For each candle close the bench measures the time until every worker has
persisted every bot's decision (fills, stops, strategy, credit holds, orders/trades/logs,
equity and ``bots.last_candle_at`` committed; each worker then collects its garbage, as
the worker's candle loop does, before the next close), and reports p50/p99, the largest worker's
peak RSS and CPU seconds per close (p50: on a shared machine, the part of the wall time
that is the worker's own work), the database's commits per second
(``pg_stat_database.xact_commit``) and WAL bytes per close (``pg_current_wal_lsn``
difference) over the measured closes. The shared
work is printed beside its reference without sharing (one candle fetch and one strategy
computation per bot).

``--sizes 10000 --workers 1`` is the quick single-worker run (2 to 8 minutes on 2 shared
cores). The curve took 23 minutes with ``--closes 10`` at load average 15 to 20; the default
30 closes add about 26 minutes at that load.

Last line: ``fleet: bots=<n> workers=<w> p50_s=<x> p99_s=<y> rss_mb=<z> growth=<g>
commits_per_s=<c> wal_kb_per_close=<k>`` with the largest size's figures; growth is its p99
per bot over the smallest size's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg

from tests.bench._common import bench_database, percentile
from worker.bots.clock import SteppedClock
from worker.bots.runner import BotRunner
from worker.bots.stepping import PROGRESS_EVERY
from worker.candles import MarketData, ReplaySource
from worker.db import open_pool
from worker.fleet.collector import Collector
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


@dataclass
class Size:
    """One point of the curve."""

    bots: int
    workers: int
    durations: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    commits_per_s: float = 0.0
    commits_per_close: float = 0.0
    wal_kb_per_close: float = 0.0
    lines: list[str] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return percentile(self.durations, 50)

    @property
    def p99(self) -> float:
        return percentile(self.durations, 99)


async def setup(url: str, bots: int, workers: int) -> list[str]:
    """Users, credits and running bots; registers the worker processes (equal capacity, so
    each leases an equal share). Returns their worker ids."""
    markets = [(ex, f"{p}/BTC") for ex in EXCHANGES for p in PAIRS]
    users = max(1, bots // 100)
    t = time.perf_counter()
    ids: list[str] = []
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
        for n in range(workers):
            row = await (
                await conn.execute(
                    "select public.register_worker(%s, 'localhost', %s, 'bench', '{default}', %s, "
                    "'{\"leases\": true}')::text",
                    (f"bench-{n}", n + 1, bots),
                )
            ).fetchone()
            assert row is not None
            ids.append(str(row[0]))
    print(
        f"setup: {bots} bots of {users} users on {len(markets)} markets, {workers} worker(s), "
        f"in {time.perf_counter() - t:.1f}s",
        flush=True,
    )
    return ids


def worker_process(url: str, worker_id: str, pipe: Connection) -> None:
    """One worker process: leases its share, then runs each close the parent sends."""
    asyncio.run(_worker(url, worker_id, pipe))


async def _worker(url: str, worker_id: str, pipe: Connection) -> None:
    pool = await open_pool(url, max_size=4)
    leases = LeaseManager(pool, worker_id, ttl_s=3600)
    clock = SteppedClock(START)
    md = MarketData(ReplaySource(CANDLES), pool)
    runner = BotRunner(pool, leases, clock, md, collector=Collector())  # as a worker's runner
    try:
        t = time.perf_counter()
        await leases.sync()
        await runner.adopt(dict(leases.owned))
        await runner.process_close(START)  # first close: loads each market's history once
        runner.after_close()
        pipe.send(("ready", len(runner.bots), time.perf_counter() - t))
        fetches0 = md.fetches
        closes = 0
        cpu: list[float] = []
        collected: list[float] = []  # garbage collection after each close
        while True:
            message = pipe.recv()
            if message[0] != "close":
                break
            now = datetime.fromisoformat(message[1])
            await clock.advance_to(now)
            t, c = time.perf_counter(), time.process_time()
            await runner.process_close(now)
            pipe.send(("closed", time.perf_counter() - t))
            # As the worker's candle loop does, once the close is persisted (between closes:
            # the parent waits for it before the next one, untimed): its CPU counts in the
            # close's, its time is not until-persisted latency.
            t = time.perf_counter()
            runner.after_close()
            collected.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            closes += 1
            pipe.send(("collected", collected[-1]))
        groups = len({b.config.group for b in runner.bots.values()})
        phases = runner.stats.phases[1:]
        pipe.send(
            (
                "stats",
                {
                    "bots": len(runner.bots),
                    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    "fetches": (md.fetches - fetches0) / max(closes, 1),
                    "groups": groups,
                    "market_s": percentile([p[0] for p in phases], 50),
                    "steps_s": percentile([p[1] for p in phases], 50),
                    "persist_s": percentile([p[2] for p in phases], 50),
                    "cpu_s": percentile(cpu, 50),
                    "gc_s": percentile(collected, 50),
                },
            )
        )
    finally:
        await runner.close()
        await pool.close()


async def database_counters(url: str) -> tuple[int, int]:
    """Commits of the bench database so far and the cluster's WAL position (bytes)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("select pg_stat_force_next_flush()")
        await asyncio.sleep(1.1)  # other backends flush their counters at least every second
        await conn.execute("select pg_stat_clear_snapshot()")
        row = await (
            await conn.execute(
                "select xact_commit, pg_current_wal_lsn() - '0/0'::pg_lsn "
                "from pg_stat_database where datname = current_database()"
            )
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def run_size(size: Size, closes: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    with bench_database("fleet") as url:
        ids = await setup(url, size.bots, size.workers)
        pipes: list[Connection] = []
        procs = []
        for worker_id in ids:
            here, there = ctx.Pipe()
            proc = ctx.Process(target=worker_process, args=(url, worker_id, there), daemon=True)
            proc.start()
            pipes.append(here)
            procs.append(proc)
        try:
            loop = asyncio.get_running_loop()

            async def ask(message: tuple[str, ...]) -> list[Any]:
                for p in pipes:
                    p.send(message)
                return list(
                    await asyncio.gather(*(loop.run_in_executor(None, p.recv) for p in pipes))
                )

            ready = list(await asyncio.gather(*(loop.run_in_executor(None, p.recv) for p in pipes)))
            print(
                f"leased and loaded {sum(r[1] for r in ready)} bots "
                f"({', '.join(str(r[1]) for r in ready)}) in {max(r[2] for r in ready):.1f}s",
                flush=True,
            )
            commits0, wal0 = await database_counters(url)
            now = START
            for _ in range(closes):
                now += timedelta(minutes=5)
                t = time.perf_counter()
                await ask(("close", now.isoformat()))
                size.durations.append(time.perf_counter() - t)
                # each worker collects its garbage between closes, as the worker's loop does
                await asyncio.gather(*(loop.run_in_executor(None, p.recv) for p in pipes))
            elapsed = sum(size.durations)
            commits1, wal1 = await database_counters(url)
            stats = [r[1] for r in await ask(("stop",))]
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                orders, trades, behind = await (
                    await conn.execute(
                        "select (select count(*) from public.orders), (select count(*) from public.trades), "
                        "(select count(*) from public.bots where last_candle_at is null or last_candle_at < %s)",
                        (now - timedelta(minutes=5 * PROGRESS_EVERY),),
                    )
                ).fetchone() or (0, 0, 0)
        finally:
            for proc in procs:
                proc.join(timeout=60)
                if proc.is_alive():
                    proc.kill()
    # commits during the closes over the time of the closes (the counter reads add 2)
    size.commits_per_s = (commits1 - commits0 - 2) / elapsed
    size.commits_per_close = (commits1 - commits0 - 2) / closes
    size.wal_kb_per_close = (wal1 - wal0) / closes / 1024
    size.rss_mb = max(s["rss_mb"] for s in stats)
    fetches = sum(s["fetches"] for s in stats)
    groups = max(s["groups"] for s in stats)
    size.lines = [
        f"{closes} candle closes: {orders} orders, {trades} trades; "
        f"bots whose persisted progress lags more than {PROGRESS_EVERY} candles: {behind}",
        f"shared work per close: {fetches:.0f} candle fetches (reference without sharing: {size.bots}), "
        f"<= {groups} strategy computations per worker (reference: {size.bots}) -> "
        f"{size.bots / max(groups * size.workers, 1):.0f}x fewer",
        f"per close: min {min(size.durations):.3f}s max {max(size.durations):.3f}s; p50 per worker of market data "
        f"{max(s['market_s'] for s in stats):.3f}s, bot steps {max(s['steps_s'] for s in stats):.3f}s, "
        f"persistence {max(s['persist_s'] for s in stats):.3f}s; worker CPU "
        f"{max(s['cpu_s'] for s in stats):.3f}s; garbage collection after the close "
        f"{max(s['gc_s'] for s in stats):.3f}s",
        f"database: {size.commits_per_s:.1f} commits/s ({size.commits_per_close:.1f} per close), "
        f"{size.wal_kb_per_close:.0f} kB WAL per close",
    ]
    for line in size.lines:
        print(line, flush=True)
    print(
        f"size: bots={size.bots} workers={size.workers} p50_s={size.p50:.3f} p99_s={size.p99:.3f} "
        f"rss_mb={size.rss_mb:.0f}",
        flush=True,
    )


async def run(sizes: list[Size], closes: int) -> None:
    for size in sizes:
        await run_size(size, closes)
    print("\ncurve (candle close -> every decision persisted):")
    print(
        f"{'bots':>8} {'workers':>7} {'p50_s':>7} {'p99_s':>7} {'us/bot':>7} {'rss_mb':>6} {'commits/s':>9} {'kB WAL/close':>12}"
    )
    for s in sizes:
        print(
            f"{s.bots:>8} {s.workers:>7} {s.p50:>7.3f} {s.p99:>7.3f} {s.p99 / s.bots * 1e6:>7.1f} "
            f"{s.rss_mb:>6.0f} {s.commits_per_s:>9.1f} {s.wal_kb_per_close:>12.0f}"
        )
    small, large = sizes[0], sizes[-1]
    growth = (large.p99 / large.bots) / (small.p99 / small.bots)
    print(
        f"fleet: bots={large.bots} workers={large.workers} p50_s={large.p50:.3f} p99_s={large.p99:.3f} "
        f"rss_mb={large.rss_mb:.0f} growth={growth:.2f} commits_per_s={large.commits_per_s:.1f} "
        f"wal_kb_per_close={large.wal_kb_per_close:.0f}"
    )


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=_ints, default=[25_000, 50_000, 100_000], help="bots per point"
    )
    parser.add_argument(
        "--workers", type=_ints, default=[1, 2, 4], help="worker processes per point (one per size)"
    )
    parser.add_argument("--closes", type=int, default=30, help="measured candle closes per point")
    parser.add_argument("--bots", type=int, help="one point of this many bots (same as --sizes N)")
    args = parser.parse_args()
    sizes, workers = ([args.bots], args.workers[:1]) if args.bots else (args.sizes, args.workers)
    if len(workers) != len(sizes):
        parser.error("--workers needs one count per size")
    asyncio.run(run([Size(b, w) for b, w in zip(sizes, workers, strict=True)], args.closes))


if __name__ == "__main__":
    main()
