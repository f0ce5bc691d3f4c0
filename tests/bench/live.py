"""Live bot benchmark: one worker, 10,000 bots of which 1,000 trade live against fake
Binance processes over HTTP on this machine.

9,000 paper bots on the fleet benchmark's 50 markets and 1,000 live bots on five Binance
USDT markets (recorded candle shapes scaled to USDT prices), of 100 users with one key
each (bots on one key share a client, as in a worker), the keys sealed in the database
and opened by the worker. Each live bot's ccxt client talks to one of
``--fakes`` fake exchange processes (``python -m tests.fakes.serve binance``). For each
replayed 5m candle close it measures the time until every decision is persisted (for a
live bot: its orders placed on the exchange and answered, then written with the rest),
then reports p50/p99 and the worker's peak RSS. Protective orders placed on the exchanges
are counted (as orders of a protective type the fakes hold), and so are the worker's CPU
seconds and the HTTP requests its clients send per close (load-independent figures, for a
machine whose load moves the latencies).

The reference, measured side by side: the same 10,000 bots all on paper (ratio = live p99
/ paper p99). Each run is a process of its own (its own database and RSS).

Last line: ``live: bots=<n> live=<m> p50_s=<x> p99_s=<y> rss_mb=<z> ratio=<live/paper p99>``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg

from tests.bench._common import bench_database, percentile
from tests.bench.fleet import CANDLES, EXCHANGES, PAIRS, SETUP, START, STRATEGIES
from tests.fakes.serve import PROTECTIVE_TYPES
from tests.support.fake_exchange import FakeExchangeProcess, fake_exchange
from worker.bots.clock import SteppedClock
from worker.bots.market_catalog import MarketCatalog
from worker.bots.markets import offline_markets
from worker.bots.runner import BotRunner
from worker.candles import MarketData, ReplaySource
from worker.db import open_pool
from worker.exchanges import ExchangeCredentials
from worker.exchanges.market_cache import store_markets
from worker.fleet.collector import Collector
from worker.fleet.leases import LeaseManager
from worker.sealing import Keyring

LIVE_MARKETS = {  # live market -> (recorded market whose shapes it replays, scale)
    "BTC/USDT": ("ETH_BTC", 450_000),
    "ETH/USDT": ("ETH_BTC", 15_000),
    "LTC/USDT": ("LTC_BTC", 15_000),
    "ADA/USDT": ("ADA_BTC", 15_000),
    "TRX/USDT": ("TRX_BTC", 15_000),
}
BALANCE = "100000000"

CREDENTIALS = """
insert into public.exchange_credentials (user_id, exchange, sealed_secret, key_id, api_key_hint)
select id, 'binance', %(sealed)s, 'k1', '****-key' from public.profiles
"""
BOTS = """
insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, parameters, status,
                         initial_balance, stake_amount, stop_loss, take_profit, is_paper_trade,
                         exchange_credential_id)
select u.id, 'bench ' || i,
       case when live then 'binance' else m.exchange end,
       case when live then l.pair else m.pair end,
       '5m', s.strategy, s.parameters::jsonb, 'running',
       case when live then 10000 else 1 end, case when live then 50 else 0.05 end,
       case when i %% 3 = 0 then 2 end, case when i %% 4 = 0 then 3 end,
       not (live and %(live_on)s), c.id
  from generate_series(0, %(bots)s - 1) i
  cross join lateral (select i %% %(every)s = 0 and i / %(every)s < %(live)s as live) x
  join (select row_number() over () - 1 as k, id from public.profiles) u on u.k = i %% %(users)s
  join public.exchange_credentials c on c.user_id = u.id
  join unnest(%(exchanges)s::text[], %(pairs)s::text[]) with ordinality as m(exchange, pair, n)
    on m.n - 1 = i %% %(markets)s
  join unnest(%(live_pairs)s::text[]) with ordinality as l(pair, n)
    on l.n - 1 = (i / %(every)s) %% %(nlive)s
  join unnest(%(strategies)s::text[], %(params)s::text[]) with ordinality as s(strategy, parameters, n)
    on s.n - 1 = (i / %(markets)s) %% %(nstrat)s
"""


def replay_dir(tmp: Path) -> Path:
    """The recorded candles, plus the live markets' candles scaled to USDT prices."""
    for f in CANDLES.glob("*.csv"):
        (tmp / f.name).symlink_to(f)
    for pair, (source, scale) in LIVE_MARKETS.items():
        src = (CANDLES / f"{source}-5m.csv").read_text().splitlines()
        out = [src[0]]
        for line in src[1:]:
            d, *nums = line.split(",")
            out.append(",".join([d, *(f"{float(x) * scale:.8g}" for x in nums[:4]), nums[4]]))
        (tmp / f"{pair.replace('/', '_')}-5m.csv").write_text("\n".join(out) + "\n")
    return tmp


def start_price(tmp: Path, pair: str) -> Decimal:
    """The close of the candle at the replay's start: where the fake exchange fills."""
    at = START.strftime("%Y-%m-%dT%H:%M:%SZ")
    for line in (tmp / f"{pair.replace('/', '_')}-5m.csv").read_text().splitlines()[1:]:
        if line.startswith(at):
            return Decimal(line.split(",")[4])
    raise ValueError(f"no candle of {pair} at {at}")


@contextlib.contextmanager
def fakes(n: int, tmp: Path) -> Iterator[list[FakeExchangeProcess]]:
    args = [f"--price={p.replace('/', '')}={start_price(tmp, p)}" for p in LIVE_MARKETS]
    args += [f"--balance={a}={BALANCE}" for a in ("USDT", "BTC", "ETH", "LTC", "ADA", "TRX")]
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(fake_exchange("binance", args=tuple(args))) for _ in range(n)]


async def run(bots: int, live: int, closes: int, n_fakes: int, live_on: bool) -> dict[str, Any]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    keyring = Keyring.parse(f"k1:{base64.b64encode(os.urandom(32)).decode()}")
    sealed = ExchangeCredentials("test-key", "test-secret").seal(keyring)
    markets = [(ex, f"{p}/BTC") for ex in EXCHANGES for p in PAIRS]
    users = max(1, bots // 100)
    every = max(1, bots // max(live, 1))
    with (
        tempfile.TemporaryDirectory(prefix="bench-live-") as tmp_name,
        bench_database("live") as url,
    ):
        tmp = replay_dir(Path(tmp_name))
        with fakes(n_fakes if live_on else 0, tmp) as exchanges:
            t = time.perf_counter()
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                for statement in SETUP.split(";"):
                    if statement.strip():
                        await conn.execute(statement.replace("%(users)s", str(int(users))))
                await conn.execute(
                    "update public.plans set live_trading = true where name = 'Bench'"
                )
                await conn.execute(CREDENTIALS, {"sealed": sealed})
                await conn.execute(
                    "select public.credit_create_transfers(jsonb_agg(jsonb_build_object("
                    "'action', 'transfer', 'id', gen_random_uuid(), 'amount', 1000000, 'kind', 'grant',"
                    "'debit_account_id', (select id from public.credit_accounts where code = 'system:grants'),"
                    "'credit_account_id', a.id))) from public.credit_accounts a where a.kind = 'user'"
                )
                await conn.execute(
                    BOTS,
                    {
                        "bots": bots,
                        "live": live,
                        "every": every,
                        "live_on": live_on,
                        "users": users,
                        "markets": len(markets),
                        "exchanges": [m[0] for m in markets],
                        "pairs": [m[1] for m in markets],
                        "live_pairs": list(LIVE_MARKETS),
                        "nlive": len(LIVE_MARKETS),
                        "strategies": [s for s, _ in STRATEGIES],
                        "params": [json.dumps(p) for _, p in STRATEGIES],
                        "nstrat": len(STRATEGIES),
                    },
                )
                worker = await (
                    await conn.execute(
                        "select public.register_worker('bench', 'localhost', 1, 'bench', '{default}', "
                        "%s, '{\"leases\": true}')::text",
                        (bots * 2,),
                    )
                ).fetchone()
                assert worker is not None
            setup_s = time.perf_counter() - t

            def open_exchange(cfg: Any, creds: ExchangeCredentials, testnet: bool) -> Any:
                from worker.exchanges.live import LiveExchange

                url = exchanges[cfg.int_id % len(exchanges)].url
                ex = LiveExchange(cfg.exchange, creds, api_base_url=url, enable_rate_limit=False)
                fetch = ex.client.fetch

                async def counted(*args: Any, **kwargs: Any) -> Any:
                    requests[0] += 1
                    return await fetch(*args, **kwargs)

                ex.client.fetch = counted  # every HTTP request of the client
                return ex

            requests = [0]

            pool = await open_pool(url, max_size=4)
            leases = LeaseManager(pool, str(worker[0]), ttl_s=3600)
            clock = SteppedClock(START)
            runner = BotRunner(
                pool,
                leases,
                clock,
                MarketData(ReplaySource(tmp), pool),
                keyring=keyring,
                live_exchange=open_exchange,
                collector=Collector(),  # as a worker's runner
            )
            # As a worker does: the markets cache (filled here from the shipped definitions,
            # as the demo does) gives live bots their markets without a download each.
            await store_markets(pool, "binance", offline_markets("binance"))
            runner.builder.catalog = MarketCatalog(pool)
            try:
                t = time.perf_counter()
                await leases.sync()
                await runner.adopt(dict(leases.owned))
                adopt_s = time.perf_counter() - t
                now = START
                await runner.process_close(now)  # first close: loads each market's history once
                runner.after_close()
                durations: list[float] = []
                cpu: list[float] = []  # this process's CPU seconds per close
                sent: list[int] = []  # HTTP requests to the exchanges per close
                collected: list[float] = []  # garbage collection after each close
                for _ in range(closes):
                    now += timedelta(minutes=5)
                    await clock.advance_to(now)
                    t, c, r = time.perf_counter(), time.process_time(), requests[0]
                    await runner.process_close(now)
                    durations.append(time.perf_counter() - t)
                    # As the worker's candle loop does, once the close is persisted: its CPU
                    # counts in the close's, its time is not until-persisted latency.
                    t = time.perf_counter()
                    runner.after_close()
                    collected.append(time.perf_counter() - t)
                    cpu.append(time.process_time() - c)
                    sent.append(requests[0] - r)
                running = len(runner.bots)
                live_running = sum(1 for b in runner.bots.values() if not b.config.is_paper)
                async with pool.connection() as conn:
                    counts = await (
                        await conn.execute(
                            "select count(*) filter (where not is_paper_trade), count(*), "
                            "(select count(*) from public.protective_orders) from public.orders"
                        )
                    ).fetchone()
                    errors = await (
                        await conn.execute(
                            "select error_message, count(*) from public.bots where status = 'error' "
                            "group by 1 order by 2 desc limit 3"
                        )
                    ).fetchall()
            finally:
                await runner.close()
                await pool.close()
            on_exchanges = [o for ex in exchanges for o in (await ex.state())["orders"]]
            for ex in exchanges:
                await ex.aclose()
    assert counts is not None
    return {
        "bots": running,
        "live": live_running,
        "setup_s": setup_s,
        "adopt_s": adopt_s,
        "durations": durations,
        "cpu": cpu,
        "requests": sent,
        "collected": collected,
        "live_orders_db": counts[0],
        "orders_db": counts[1],
        "protective_db": counts[2],
        "orders_exchange": len(on_exchanges),
        "protective_exchange": sum(1 for o in on_exchanges if o["type"] in PROTECTIVE_TYPES),
        "errors": [list(e) for e in errors],
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "phases": runner.stats.phases[1:],
    }


def child(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """One run as a process of its own: its RSS is the worker's alone."""
    cmd = [
        sys.executable,
        "-P",
        __file__,
        "--child",
        mode,
        f"--bots={args.bots}",
        f"--live={args.live}",
        f"--closes={args.closes}",
        f"--fakes={args.fakes}",
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def report(name: str, r: dict[str, Any]) -> None:
    d = r["durations"]
    print(
        f"{name}: {r['bots']} bots ({r['live']} live) loaded in {r['adopt_s']:.1f}s; "
        f"{len(d)} closes: p50 {percentile(d, 50):.3f}s p99 {percentile(d, 99):.3f}s "
        f"max {max(d):.3f}s; orders persisted {r['orders_db']} ({r['live_orders_db']} live, "
        f"{r['protective_db']} protective), "
        f"on the fake exchanges {r['orders_exchange']} "
        f"(protective {r['protective_exchange']}); rss {r['rss_mb']:.0f} MB"
        + (f"; bots in error: {r['errors']}" if r["errors"] else "")
    )
    phases = r["phases"]
    print(
        f"  per close, p50 / p99: market data {percentile([p[0] for p in phases], 50):.3f} / "
        f"{percentile([p[0] for p in phases], 99):.3f}s, bot steps (exchange calls included) "
        f"{percentile([p[1] for p in phases], 50):.3f} / {percentile([p[1] for p in phases], 99):.3f}s, "
        f"persistence {percentile([p[2] for p in phases], 50):.3f} / "
        f"{percentile([p[2] for p in phases], 99):.3f}s"
    )
    print(
        f"  per close, p50 / p99: worker CPU {percentile(r['cpu'], 50):.3f} / "
        f"{percentile(r['cpu'], 99):.3f}s, exchange requests {percentile(r['requests'], 50):.0f} / "
        f"{percentile(r['requests'], 99):.0f} ({sum(r['requests'])} in all); "
        f"garbage collection after the close {percentile(r['collected'], 50):.3f} / "
        f"{percentile(r['collected'], 99):.3f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=10_000)
    parser.add_argument("--live", type=int, default=1_000)
    parser.add_argument("--closes", type=int, default=60)
    parser.add_argument("--fakes", type=int, default=2, help="fake exchange processes")
    parser.add_argument("--child", choices=["live", "paper"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        r = asyncio.run(run(args.bots, args.live, args.closes, args.fakes, args.child == "live"))
        print(json.dumps(r))
        return
    paper = child("paper", args)
    report("reference, all paper", paper)
    live = child("live", args)
    report("live", live)
    if live["live_orders_db"] + live["protective_db"] != live["orders_exchange"]:
        print(
            f"MISMATCH: {live['orders_exchange']} orders on the exchanges, "
            f"{live['live_orders_db']} live and {live['protective_db']} protective orders persisted"
        )
    p99_live = percentile(live["durations"], 99)
    p99_paper = percentile(paper["durations"], 99)
    print(
        f"live: bots={live['bots']} live={live['live']} "
        f"p50_s={percentile(live['durations'], 50):.3f} p99_s={p99_live:.3f} "
        f"rss_mb={live['rss_mb']:.0f} ratio={p99_live / p99_paper:.2f}"
    )


if __name__ == "__main__":
    main()
