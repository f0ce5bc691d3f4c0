"""Queue benchmark: Tradefleet's job queue against procrastinate, same run,
same PostgreSQL, each in a fresh database of its own.

For each system:
1. throughput: enqueue 100,000 trivial jobs, then 2 worker processes claim and complete
   them; jobs/s = jobs / (last finish - first start), from the database's own timestamps;
2. wake-up latency: with the workers idle and listening (NOTIFY), enqueue 500 jobs one by
   one; latency = start - enqueue per job (database timestamps), p50/p99.

Tradefleet runs as configured by default (claims and outcomes with asynchronous commit)
with 0, 100,000 and 1,000,000 jobs waiting in the same queue (due tomorrow: a backlog of
retries and scheduled work the claim must step over), then once with QUEUE_ASYNC_COMMIT=false
and no backlog for reference.

Run: ``scripts/bench queue`` (``--jobs N``, ``--sizes 0,100000`` for a quicker run). The
last line is ``queue: waiting=<largest> jobs_per_s=<ours at it> p99_wake_ms=<ours at it>
vs_empty=<jobs/s at it / jobs/s with none waiting> ratio=<ours with none waiting /
procrastinate jobs/s> growth=<time per job at the largest backlog / with none>``.
"""

from __future__ import annotations

import sys

# Run as a script, this file's folder comes first on sys.path and "queue.py" would shadow
# the standard library's queue module: drop that entry before importing anything else.
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    sys.path.pop(0)

import argparse
import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from tests.bench._common import parse_sizes, percentile, print_curve  # noqa: E402
from tests.support import db as support  # noqa: E402

WORKERS = 2
WAKE_JOBS = 500
WAKE_GAP_S = 0.004
PROCRASTINATE_CONCURRENCY = 20
PROCRASTINATE_BOX_S = 75.0


async def wait_until(
    what: str, check: Callable[[], Awaitable[bool]], limit_s: float, *, fail: bool = True
) -> None:
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > limit_s:
            if fail:
                raise SystemExit(f"bench: timed out waiting for {what}")
            return
        await asyncio.sleep(0.25)


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env=env)


async def count(url: str, query: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        cur = await c.execute(query)
        row = await cur.fetchone()
        return int(row[0]) if row else 0


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# --- Tradefleet ------------------------------------------------------------------------------


async def bench_ours(
    url: str, jobs: int, *, async_commit: bool = True, waiting: int = 0
) -> dict[str, float]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        if waiting:
            # A backlog in the same queue that is not due yet (retries, scheduled work): the
            # claim must step over it, not through it.
            await c.execute(
                "insert into public.jobs (queue, kind, payload, run_at) "
                "select 'bench', 'bench.later', '{}', now() + interval '1 day' "
                "from generate_series(1, %s)",
                (waiting,),
            )
            await c.execute("vacuum analyze public.jobs")
        t0 = time.monotonic()
        for start in range(0, jobs, 10_000):
            n = min(10_000, jobs - start)
            await c.execute(
                "select count(*) from public.enqueue_jobs('fleet.noop', "
                "array_fill('{\"bench\": 1}'::jsonb, array[%s]), 'bench')",
                (n,),
            )
        enqueue_s = time.monotonic() - t0
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WORKER_CONCURRENCY": "200",
        "WORKER_CLAIM_BATCH": "100",
        "POLL_INTERVAL_S": "1",
        "LOG_LEVEL": "WARNING",
        # Its own queue: the periodic jobs other capabilities register stay out of the way.
        "WORKER_QUEUES": "bench",
        "QUEUE_ASYNC_COMMIT": "true" if async_commit else "false",
    }
    procs = [
        spawn(
            [str(ROOT / ".venv" / "bin" / "tradefleet"), "worker"],
            {**env, "WORKER_NAME": f"bench-{i}"},
        )
        for i in range(WORKERS)
    ]
    try:
        await wait_until(
            "our workers to finish",
            lambda: _zero(
                url,
                "select count(*) from public.jobs where kind = 'fleet.noop' and status <> 'succeeded'",
            ),
            300,
        )
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
            cur = await c.execute(
                "select extract(epoch from max(finished_at) - min(started_at)) from public.jobs "
                "where kind = 'fleet.noop'"
            )
            row = await cur.fetchone()
            assert row is not None
            elapsed = float(row[0])
            # The workers are idle and listening now: single enqueues measure the wake-up.
            for _ in range(WAKE_JOBS):
                await c.execute("select public.enqueue_job('fleet.noop', '{\"wake\": 1}', 'bench')")
                await asyncio.sleep(WAKE_GAP_S)
        await wait_until(
            "our wake jobs",
            lambda: _zero(
                url,
                "select count(*) from public.jobs where payload ? 'wake' and status <> 'succeeded'",
            ),
            60,
        )
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
            cur = await c.execute(
                "select extract(epoch from started_at - created_at) * 1000 from public.jobs "
                "where payload ? 'wake'"
            )
            lat = [float(r[0]) for r in await cur.fetchall()]
    finally:
        stop(procs)
    return {
        "jobs_per_s": jobs / elapsed,
        "enqueue_per_s": jobs / enqueue_s,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
    }


async def _zero(url: str, query: str) -> bool:
    return await count(url, query) == 0


# --- procrastinate -------------------------------------------------------------------------


def procrastinate_app(url: str, max_size: int) -> Any:
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=url, min_size=1, max_size=max_size)
    )

    @app.task(name="noop", queue="default")
    async def noop(**kwargs: Any) -> None:
        return None

    return app


async def procrastinate_worker(url: str) -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    app = procrastinate_app(url, PROCRASTINATE_CONCURRENCY + 4)
    async with app.open_async():
        await app.run_worker_async(
            concurrency=PROCRASTINATE_CONCURRENCY,
            wait=True,
            listen_notify=True,
            fetch_job_polling_interval=1.0,
        )


async def bench_procrastinate(url: str, jobs: int) -> dict[str, float]:
    app = procrastinate_app(url, 4)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        noop = app.tasks["noop"]
        t0 = time.monotonic()
        for start in range(0, jobs, 10_000):
            n = min(10_000, jobs - start)
            await noop.batch_defer_async(*({"bench": 1} for _ in range(n)))
        enqueue_s = time.monotonic() - t0
        procs = [
            spawn([sys.executable, __file__, "--procrastinate-worker", url]) for _ in range(WORKERS)
        ]
        try:
            # Time-boxed: at a few hundred jobs/s, 100,000 would take the whole run. Its rate
            # is measured over the jobs it finished in the box.
            await wait_until(
                "procrastinate workers to finish",
                lambda: _zero(
                    url, "select count(*) from procrastinate_jobs where status <> 'succeeded'"
                ),
                PROCRASTINATE_BOX_S,
                fail=False,
            )
            stop(procs)
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
                cur = await c.execute(
                    "select count(*) filter (where type = 'succeeded'), extract(epoch from max(at) filter "
                    "(where type = 'succeeded') - min(at) filter (where type = 'started')) from procrastinate_events"
                )
                row = await cur.fetchone()
                assert row is not None
                done, elapsed = int(row[0]), float(row[1])
                # What the box left undone is not part of the wake-up measurement.
                await c.execute("delete from procrastinate_jobs where status <> 'succeeded'")
                cur = await c.execute("select coalesce(max(id), 0) from procrastinate_jobs")
                last = await cur.fetchone()
                assert last is not None
            procs = [
                spawn([sys.executable, __file__, "--procrastinate-worker", url])
                for _ in range(WORKERS)
            ]
            await asyncio.sleep(3)  # let them start and LISTEN
            for _ in range(WAKE_JOBS):
                await noop.defer_async(wake=1)
                await asyncio.sleep(WAKE_GAP_S)
            await wait_until(
                "procrastinate wake jobs",
                lambda: _zero(
                    url, "select count(*) from procrastinate_jobs where status <> 'succeeded'"
                ),
                60,
            )
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
                cur = await c.execute(
                    "select extract(epoch from s.at - d.at) * 1000 from procrastinate_events d "
                    "join procrastinate_events s on s.job_id = d.job_id and s.type = 'started' "
                    "where d.type = 'deferred' and d.job_id > %s",
                    (last[0],),
                )
                lat = [float(r[0]) for r in await cur.fetchall()]
        finally:
            stop(procs)
    return {
        "jobs_per_s": done / elapsed,
        "enqueue_per_s": jobs / enqueue_s,
        "done": done,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
    }


# --- main --------------------------------------------------------------------------------------


def fresh_database(name: str, *, migrate: bool) -> str:
    """A new database; with ``migrate``, a clone of the migrated template (every migration:
    the queue measured is the one that ships, with its latest claim)."""
    template = support.ensure_template() if migrate else None
    with psycopg.connect(support.admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        if template:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return support.admin_url(name)


def drop_database(name: str) -> None:
    with psycopg.connect(support.admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def report(name: str, r: dict[str, float]) -> None:
    print(
        f"{name:>13}: {r['jobs_per_s']:9.0f} jobs/s processed  {r['enqueue_per_s']:9.0f} jobs/s enqueued  "
        f"wake p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms"
        + (
            f"  ({int(r['done'])} done in the {PROCRASTINATE_BOX_S:.0f} s box)"
            if "done" in r
            else ""
        ),
        flush=True,
    )


async def main(jobs: int, ours_only: bool, sizes: list[int]) -> None:
    support.ensure_platform()
    ours_db, theirs_db = f"tf_bench_ours_{os.getpid()}", f"tf_bench_procrastinate_{os.getpid()}"
    curve: list[tuple[int, dict[str, float]]] = []
    try:
        print(
            f"bench: {jobs} trivial jobs, {WORKERS} worker processes each, then {WAKE_JOBS} single "
            f"enqueues for wake-up latency (NOTIFY); with {', '.join(f'{n:,}' for n in sizes)} "
            "jobs waiting (not due) in the same queue",
            flush=True,
        )
        for waiting in sizes:
            r = await bench_ours(fresh_database(ours_db, migrate=True), jobs, waiting=waiting)
            report(f"{waiting:,} waiting", r)
            curve.append((waiting, r))
        if ours_only:
            return
        synced = await bench_ours(fresh_database(ours_db, migrate=True), jobs, async_commit=False)
        report("(sync commit)", synced)
        theirs = await bench_procrastinate(fresh_database(theirs_db, migrate=False), jobs)
        report("procrastinate", theirs)
    finally:
        drop_database(ours_db)
        drop_database(theirs_db)
        print_curve(
            "queue",
            "waiting",
            [(n, {"jobs_per_s": r["jobs_per_s"], "p99_wake_ms": r["p99_ms"]}) for n, r in curve],
        )
    empty, largest = curve[0][1], curve[-1][1]
    ratio = empty["jobs_per_s"] / theirs["jobs_per_s"]
    print(
        f"queue: waiting={curve[-1][0]} jobs_per_s={largest['jobs_per_s']:.0f} "
        f"p99_wake_ms={largest['p99_ms']:.1f} vs_empty={largest['jobs_per_s'] / empty['jobs_per_s']:.2f} "
        f"ratio={ratio:.2f} growth={empty['jobs_per_s'] / largest['jobs_per_s']:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument(
        "--sizes",
        default="0,100000,1000000",
        help="jobs waiting (not due) in the queue while the jobs run, comma-separated (a curve)",
    )
    parser.add_argument("--procrastinate-worker", metavar="URL")
    parser.add_argument(
        "--ours-only", action="store_true", help="skip procrastinate (quick checks)"
    )
    args = parser.parse_args()
    if args.procrastinate_worker:
        asyncio.run(procrastinate_worker(args.procrastinate_worker))
    else:
        asyncio.run(main(args.jobs, args.ours_only, parse_sizes(args.sizes)))
