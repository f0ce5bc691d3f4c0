"""Benchmark: webhook events stored -> aggregated holdings updated, 1,000 and 10,000 accounts x 10 positions.

A local fake SnapTrade serves positions over real HTTP (a threaded server on 127.0.0.1);
the database is a fresh clone of the migrated template on the shared cluster, dropped at
the end. The clock runs from the webhook events' insert (whose trigger enqueues one job per
event) until no holdings job is left: account syncs, then the holdings.aggregate jobs they
request. ``--workers`` processes (2 by default), started and connected before the clock,
model a fleet's workers: each has its own HTTP client, pool and batches, and claims, runs
and completes jobs through the fleet queue's public functions the way a fleet worker does
(batched claims up to its free slots, handlers run concurrently, outcomes written in
batches). Before printing, every user's
aggregated_holdings are checked against totals computed here from what the fake served.
Each size runs on a fresh database. Goal: 10,000 accounts in <= 10 s. Last line, for the
largest size (growth: seconds per account at the largest size over the smallest):

    holdings: accounts=<n> positions=<m> seconds=<s> ratio=<r> growth=<g>

The reference, measured in the same run for each size: the same accounts' positions fetched
from the fake over HTTP through the same client, ``--fetches`` at a time in each of
``--workers`` processes, and nothing else (ratio: seconds over the reference's).

Run: scripts/bench holdings [--sizes 1000,10000] [--accounts-per-user 10] [--workers 2] [--concurrency 200]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is sys.path[0]; sibling benches (e.g. queue.py) must not
# shadow the standard library.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
# ruff: noqa: E402

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import random
import re
import socket
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._common import growth, parse_sizes, print_curve, process_cpu
from tests.support import db as support
from worker.fleet import queue, workers
from worker.fleet.registry import Job, Registry
from worker.fleet.runtime import pool_size
from worker.holdings import HoldingsDeps, register
from worker.holdings.provider import HoldingsProvider, ProviderCredentials
from worker.holdings.snaptrade import SnapTradeClient, SnapTradeConfig
from worker.http_transport import AiohttpTransport
from worker.sealing import Keyring

SYMBOLS = [f"SYM{i:02d}" for i in range(40)]
POSITIONS_PER_ACCOUNT = 10
_PATH = re.compile(r"^/api/v1/accounts/([^/]+)/positions/all$")
AS_OF = datetime.now(UTC).isoformat()


def served_positions(n: int) -> list[tuple[str, str, str, str]]:
    """(symbol, units, price, cost basis) the fake serves for account ``acc-<n>``."""
    return [
        (SYMBOLS[(n + i) % len(SYMBOLS)], f"{(n % 7) + i + 1}.5", f"{100 + i}.25", f"{90 + i}.10")
        for i in range(POSITIONS_PER_ACCOUNT)
    ]


class FakeSnapTrade(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes the headers and the body separately; with Nagle on, the body waits
    # for the client's delayed ACK of the headers (~40 ms a response on Linux), which would
    # measure the fake, not the sync. Real HTTP servers set TCP_NODELAY too.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        match = _PATH.match(self.path.split("?", 1)[0])
        if not match or "Signature" not in self.headers:
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        n = int(match.group(1).rsplit("-", 1)[1])
        results = [
            {
                "instrument": {
                    "kind": "stock",
                    "id": s,
                    "symbol": s,
                    "raw_symbol": s,
                    "description": None,
                },
                "units": units,
                "price": price,
                "cost_basis": cost,
                "currency": "USD",
            }
            for s, units, price, cost in served_positions(n)
        ]
        body = json.dumps({"results": results, "data_freshness": {"as_of": AS_OF}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def serve(ready: multiprocessing.Queue[int]) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeSnapTrade)
    httpd.daemon_threads = True
    ready.put(httpd.server_address[1])
    httpd.serve_forever()


async def seed(
    url: str, keyring: Keyring, users: int, per_user: int
) -> tuple[list[dict[str, str]], dict[str, list[int]]]:
    """Users with an active SnapTrade connection and their accounts (as after linking).
    Returns one ACCOUNT_HOLDINGS_UPDATED delivery per account, and each user's account numbers."""
    import psycopg

    events: list[dict[str, str]] = []
    owners: dict[str, list[int]] = {}
    # One transaction: a commit (and its WAL flush) per row made the setup take minutes.
    async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
        for u in range(users):
            uid = uuid.uuid4()
            await conn.execute(
                "insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, "
                "updated_at) values (%s, 'authenticated', 'authenticated', %s, '{}', '{}', now(), now())",
                (uid, f"bench{u}@test.local"),
            )
            cur = await conn.execute(
                "insert into brokerage_connections (user_id, provider, provider_user_id, provider_connection_id, "
                "sealed_user_secret, status) values (%s, 'snaptrade', %s, %s, %s, 'active') returning id",
                (uid, str(uid), f"auth-{u}", keyring.seal_bytes(b"user-secret")),
            )
            row = await cur.fetchone()
            assert row is not None
            for a in range(per_user):
                n = u * per_user + a
                acc = f"acc-{n}"
                owners.setdefault(str(uid), []).append(n)
                await conn.execute(
                    "insert into brokerage_accounts (connection_id, user_id, provider_account_id, name) "
                    "values (%s, %s, %s, %s)",
                    (row[0], uid, acc, acc),
                )
                events.append(
                    {
                        "webhookId": str(uuid.uuid4()),
                        "eventType": "ACCOUNT_HOLDINGS_UPDATED",
                        "userId": str(uid),
                        "accountId": acc,
                        "brokerageAuthorizationId": f"auth-{u}",
                        "eventTimestamp": datetime.now(UTC).isoformat(),
                    }
                )
    return events, owners


async def run_jobs(
    pool: AsyncConnectionPool, reg: Registry, concurrency: int, failures: list[str]
) -> int:
    """Run holdings jobs until none is left, the way a fleet worker does, through the fleet's
    public queue functions: claim up to the free slots in one round trip, run handlers
    concurrently, write the outcomes of the finished ones in one round trip. Returns how many ran."""
    worker_id = await workers.register(
        pool,
        name="bench-holdings",
        host=socket.gethostname(),
        pid=os.getpid(),
        version="bench",
        queues=["default"],
        capacity=concurrency,
    )
    kinds = sorted(k for k in reg.kinds if k.startswith("holdings."))
    log = logging.LoggerAdapter(logging.getLogger("bench"))
    running: set[asyncio.Task[tuple[Job, Any, BaseException | None]]] = set()
    ran = 0

    async def run(job: Job) -> tuple[Job, Any, BaseException | None]:
        try:
            return (
                job,
                await reg.kinds[job.kind].handler(reg.context(job, pool, worker_id, log)),
                None,
            )
        except Exception as e:
            return job, None, e

    while True:
        free = concurrency - len(running)
        claimed = (
            await queue.claim(pool, worker_id, ["default"], min(free, 50), kinds=kinds)
            if free
            else []
        )
        running.update(asyncio.create_task(run(job)) for job in claimed)
        if not running:
            return ran  # nothing running, nothing left to claim
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        running -= done
        outcomes = [t.result() for t in done]
        ok = [(job, result) for job, result, error in outcomes if error is None]
        if ok:
            await queue.complete(
                pool, worker_id, [job.id for job, _ in ok], [result for _, result in ok]
            )
        for job, _, error in outcomes:
            if error is not None:
                failures.append(f"{job.kind}: {error}")
                await queue.fail(pool, worker_id, job.id, str(error), retry=False)
        ran += len(outcomes)


def expected_holdings(owners: dict[str, list[int]]) -> dict[tuple[str, str], dict[str, Decimal]]:
    """Aggregated holdings per (user, symbol) computed from what the fake served: total units,
    units-weighted average cost, market value at the highest reported price, account count."""
    out: dict[tuple[str, str], dict[str, Decimal]] = {}
    for user_id, accounts in owners.items():
        per_symbol: dict[str, list[tuple[Decimal, Decimal, Decimal]]] = {}
        for n in accounts:
            for symbol, units, price, cost in served_positions(n):
                per_symbol.setdefault(symbol, []).append(
                    (Decimal(units), Decimal(price), Decimal(cost))
                )
        for symbol, rows in per_symbol.items():
            total = sum((u for u, _, _ in rows), Decimal(0))
            out[(user_id, symbol)] = {
                "total_units": total,
                "average_cost": sum((u * c for u, _, c in rows), Decimal(0)) / total,
                "market_value": (total * max(p for _, p, _ in rows)).quantize(Decimal("1e-8")),
                "account_count": Decimal(len(rows)),
            }
    return out


async def verify(
    pool: AsyncConnectionPool, owners: dict[str, list[int]], accounts: int
) -> list[str]:
    """What must hold once the run is over; returns the problems found."""
    problems: list[str] = []
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select user_id::text, symbol, total_units, average_cost, market_value, account_count "
            "from aggregated_holdings"
        )
        actual = {
            (r[0], r[1]): {
                "total_units": r[2],
                "average_cost": r[3],
                "market_value": r[4],
                "account_count": Decimal(r[5]),
            }
            for r in await cur.fetchall()
        }
        counts = await (
            await conn.execute(
                "select (select count(*) from brokerage_positions), "
                "       (select count(*) from brokerage_accounts where provider_as_of is not null), "
                "       (select count(*) from webhook_events where status <> 'processed'), "
                "       (select count(*) from jobs where status <> 'succeeded'), "
                "       (select count(*) from sync_runs where trigger = 'webhook' and status = 'completed')"
            )
        ).fetchone()
    assert counts is not None
    positions, synced, unprocessed, unfinished, runs = counts
    want = expected_holdings(owners)
    if set(actual) != set(want):
        problems.append(
            f"aggregated holdings: {len(set(want) - set(actual))} (user, symbol) missing, "
            f"{len(set(actual) - set(want))} unexpected"
        )
    wrong = 0
    for key in set(actual) & set(want):
        a, w = actual[key], want[key]
        if (
            a["total_units"] != w["total_units"]
            or a["account_count"] != w["account_count"]
            or a["market_value"] != w["market_value"]
            or abs(a["average_cost"] - w["average_cost"]) > Decimal("1e-11")
        ):
            wrong += 1
    if wrong:
        problems.append(f"{wrong} aggregated holdings differ from the served positions")
    if positions != accounts * POSITIONS_PER_ACCOUNT or synced != accounts or runs != accounts:
        problems.append(
            f"{positions} positions, {synced} accounts synced, {runs} runs recorded "
            f"(want {accounts * POSITIONS_PER_ACCOUNT}, {accounts}, {accounts})"
        )
    if unprocessed or unfinished:
        problems.append(
            f"{unprocessed} webhook events not processed, {unfinished} jobs not succeeded"
        )
    return problems


class DatabaseCpu:
    """CPU seconds the database's backends spend (the cluster runs on this
    machine): sampled every 0.2 s while the run lasts, each backend's last sample minus its
    first (what a backend spends after the last sample is missed). Unlike wall time, it hardly depends on what else runs on the machine."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    async def sample(self) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select pid from pg_stat_activity where datname = current_database()"
            )
            pids = [r[0] for r in await cur.fetchall()]
        for pid in pids:
            seconds = process_cpu(pid)
            if seconds is None:
                continue
            self.first.setdefault(pid, seconds)
            self.last[pid] = seconds

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            await self.sample()

    def seconds(self) -> float:
        return sum(self.last[p] - self.first[p] for p in self.last)


def provider_client(base: str, concurrency: int) -> tuple[httpx.AsyncClient, SnapTradeClient]:
    """A worker's SnapTrade client, as SnapTradeClient's default one: httpx over aiohttp."""
    http = httpx.AsyncClient(timeout=30.0, transport=AiohttpTransport(limit=concurrency * 2))
    return http, SnapTradeClient(SnapTradeConfig("BENCH", "bench-key", base), http=http)


def reference_process(
    base: str,
    args: argparse.Namespace,
    accounts: list[int],
    ready: multiprocessing.Queue[str],
    start: Any,
    results: multiprocessing.Queue[float],
) -> None:
    """The reference's worker: the provider requests alone (no database), ``--fetches`` at
    a time through the same client; reports the seconds from ``start`` to its last answer."""
    results.put(asyncio.run(_fetch_all(base, args, accounts, ready, start)))


async def _fetch_all(
    base: str,
    args: argparse.Namespace,
    accounts: list[int],
    ready: multiprocessing.Queue[str],
    start: Any,
) -> float:
    http, snaptrade = provider_client(base, args.concurrency)
    gate = asyncio.Semaphore(args.fetches)
    creds = ProviderCredentials("bench-user", "user-secret")

    async def fetch(n: int) -> None:
        async with gate:
            snapshot = await snaptrade.positions(creds, f"acc-{n}")
        assert len(snapshot.holdings) == POSITIONS_PER_ACCOUNT

    try:
        ready.put("ready")
        await asyncio.to_thread(start.wait)
        started = time.perf_counter()
        await asyncio.gather(*(fetch(n) for n in accounts))
        return time.perf_counter() - started
    finally:
        await http.aclose()


def reference(args: argparse.Namespace, base: str, accounts: int) -> float:
    """Seconds to fetch every account's positions from the fake over HTTP and nothing else,
    split over ``--workers`` processes as the jobs are: the floor the provider sets."""
    ctx = multiprocessing.get_context("spawn")
    ready: multiprocessing.Queue[str] = ctx.Queue()
    results: multiprocessing.Queue[float] = ctx.Queue()
    start = ctx.Event()
    procs = [
        ctx.Process(
            target=reference_process,
            args=(base, args, list(range(i, accounts, args.workers)), ready, start, results),
        )
        for i in range(args.workers)
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(True, 120)
        start.set()
        return max(results.get(True, 600) for _ in procs)
    finally:
        for proc in procs:
            proc.join(30)


def worker_process(
    url: str,
    base: str,
    key: bytes,
    args: argparse.Namespace,
    ready: multiprocessing.Queue[str],
    start: Any,
    results: multiprocessing.Queue[tuple[int, list[str], float]],
) -> None:
    """One fleet worker: its own HTTP client, registry, pool and batches, as each worker
    process of a fleet has. Waits for ``start`` (the deliveries are stored), then runs
    holdings jobs until none is left and reports (jobs run, failures, CPU seconds it used)."""
    results.put(asyncio.run(_worker(url, base, key, args, ready, start)))


async def _worker(
    url: str,
    base: str,
    key: bytes,
    args: argparse.Namespace,
    ready: multiprocessing.Queue[str],
    start: Any,
) -> tuple[int, list[str], float]:
    keyring = Keyring({"bench": key})
    http, snaptrade = provider_client(base, args.concurrency)
    providers: dict[str, HoldingsProvider] = {"snaptrade": snaptrade}
    reg = Registry()
    register(
        reg,
        HoldingsDeps(
            keyring=keyring, providers=providers, snaptrade=snaptrade, max_fetches=args.fetches
        ),
    )
    size = pool_size(args.concurrency)  # as the fleet runtime sizes a worker's pool
    pool = AsyncConnectionPool(
        url,
        min_size=size,
        max_size=size,
        open=False,
        kwargs={"autocommit": True, "options": "-c role=service_role"},
    )
    await pool.open(wait=True, timeout=60)
    failures: list[str] = []
    try:
        ready.put("ready")
        await asyncio.to_thread(start.wait)
        cpu = time.process_time()
        ran = await run_jobs(pool, reg, args.concurrency, failures)
        cpu = time.process_time() - cpu
    finally:
        await pool.close()
        await http.aclose()
    return ran, failures, cpu


async def measure(
    args: argparse.Namespace, base: str, users: int, accounts_per_user: int
) -> dict[str, Any]:
    """One size: a fresh database, every account's webhook event, until no holdings job is
    left in any of the ``--workers`` worker processes (started and connected beforehand)."""
    support.ensure_platform()
    template = support.ensure_template()
    key = os.urandom(32)
    keyring = Keyring({"bench": key})
    ctx = multiprocessing.get_context("spawn")
    with support.cloned_database(template) as url:
        events, owners = await seed(url, keyring, users, accounts_per_user)
        # Deliveries of many users arrive interleaved, not user by user.
        random.Random(7).shuffle(events)
        ready: multiprocessing.Queue[str] = ctx.Queue()
        results: multiprocessing.Queue[tuple[int, list[str], float]] = ctx.Queue()
        start = ctx.Event()
        procs = [
            ctx.Process(target=worker_process, args=(url, base, key, args, ready, start, results))
            for _ in range(args.workers)
        ]
        for proc in procs:
            proc.start()
        pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=2,
            open=False,
            kwargs={"autocommit": True, "options": "-c role=service_role"},
        )
        await pool.open(wait=True, timeout=60)
        failures: list[str] = []
        ran = 0
        worker_cpu = 0.0
        try:
            for _ in procs:
                await asyncio.to_thread(ready.get, True, 120)
            db_cpu = DatabaseCpu(pool)
            await db_cpu.sample()
            sampler = asyncio.create_task(db_cpu.run())
            started = time.perf_counter()
            # What the Edge Function does per delivery: one idempotent insert (the trigger enqueues).
            async with pool.connection() as conn:
                await conn.execute(
                    "insert into webhook_events (provider, event_id, event_type, payload, occurred_at) "
                    "select 'snaptrade', e ->> 'webhookId', e ->> 'eventType', e, (e ->> 'eventTimestamp')::timestamptz "
                    "from jsonb_array_elements(%s::jsonb) e",
                    (json.dumps(events),),
                )
            start.set()
            for _ in procs:
                n, failed, cpu = await asyncio.to_thread(results.get, True, 1800)
                ran += n
                failures.extend(failed)
                worker_cpu += cpu
            seconds = time.perf_counter() - started
            sampler.cancel()
            problems = await verify(pool, owners, len(events))
            async with pool.connection() as conn:
                positions = (
                    await (
                        await conn.execute("select count(*) from brokerage_positions")
                    ).fetchone()
                    or [0]
                )[0]
                holdings = (
                    await (
                        await conn.execute("select count(*) from aggregated_holdings")
                    ).fetchone()
                    or [0]
                )[0]
        finally:
            await pool.close()
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.terminate()
    return {
        "accounts": len(events),
        "positions": positions,
        "holdings": holdings,
        "ran": ran,
        "worker_cpu": worker_cpu,
        "db_cpu": db_cpu.seconds(),
        "seconds": seconds,
        "failures": failures,
        "problems": problems,
    }


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--sizes",
        default="1000,10000",
        help="accounts, comma-separated (a curve; goal 10,000 in 10 s)",
    )
    parser.add_argument("--accounts-per-user", type=int, default=10)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=200,
        help="jobs a worker runs at once (WORKER_CONCURRENCY)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes (a fleet's workers, each with its own pool and batches)",
    )
    parser.add_argument(
        "--fetches",
        type=int,
        default=HoldingsDeps.max_fetches,
        help="provider requests in flight at once (HoldingsDeps.max_fetches)",
    )
    args = parser.parse_args()

    # The fake provider runs in its own process, as a real one would (no shared GIL).
    ready: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ready,), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{ready.get(timeout=30)}/api/v1"
    rows: list[tuple[int, dict[str, float]]] = []
    try:
        for accounts in parse_sizes(args.sizes):
            users = max(1, accounts // args.accounts_per_user)
            r = await measure(args, base, users, args.accounts_per_user)
            if r["failures"] or r["problems"]:
                print(
                    f"FAILED at {r['accounts']} accounts: {len(r['failures'])} job failures "
                    f"(first: {r['failures'][:3]}); {'; '.join(r['problems'])}"
                )
                return 1
            print(
                f"holdings detail: accounts={r['accounts']} jobs run: {r['ran']} "
                f"({r['ran'] - r['accounts']} holdings.aggregate); aggregated holdings rows: "
                f"{r['holdings']}, all as served; CPU: workers {r['worker_cpu']:.2f} s, "
                f"database {r['db_cpu']:.2f} s ({args.workers} workers)",
                flush=True,
            )
            floor = reference(args, base, r["accounts"])
            print(
                f"holdings reference: accounts={r['accounts']} the provider requests alone "
                f"(no database, {args.workers} processes, {args.fetches} in flight each): "
                f"{floor:.2f} s",
                flush=True,
            )
            rows.append(
                (
                    r["accounts"],
                    {"positions": r["positions"], "seconds": r["seconds"], "reference": floor},
                )
            )
    finally:
        server.terminate()
        server.join(5)
    print_curve("holdings", "accounts", rows)
    accounts, last = rows[-1]
    rate = growth([(n, f["seconds"]) for n, f in rows]) if len(rows) > 1 else 1.0
    print(
        f"holdings: accounts={accounts} positions={int(last['positions'])} "
        f"seconds={last['seconds']:.2f} ratio={last['seconds'] / last['reference']:.2f} "
        f"growth={rate:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
