"""Real ``tradefleet worker`` processes: crashes, takeovers, drains and database restarts."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.db import create_user
from tests.support.processes import RUNS_TABLE, TTL, Fleet, rows, scalar
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


async def running_workers(url: str) -> int:
    return int(await scalar(url, "select count(*) from workers where status = 'running'"))


async def test_kill_9_mid_job_runs_it_again_exactly_once_elsewhere(fleet: Fleet) -> None:
    url = fleet.url
    for name in ("w1", "w2", "w3"):
        fleet.start(name, FLEET_TEST_TICK_S="1")
    await wait_for("3 workers", lambda: _ge(running_workers(url), 3))
    started = time.time()
    await scalar(url, 'select enqueue_job(\'fleet.record\', \'{"tag": "victim", "sleep_s": 30}\')')
    await scalar(
        url,
        "select count(*) from enqueue_jobs('fleet.record', "
        "array_fill('{\"sleep_s\": 0.2}'::jsonb, array[30]))",
    )
    for mode in ("retryable", "fatal", "crash"):
        await scalar(
            url,
            "select enqueue_job('fleet.fail', %s, p_max_attempts => 3)",
            (psycopg.types.json.Jsonb({"mode": mode}),),
        )
    await wait_for(
        "the victim to start",
        lambda: _ge(scalar(url, "select count(*) from fleet_test_runs where tag = 'victim'"), 1),
    )
    victim_worker, pid = (
        await rows(
            url,
            "select w.id, w.pid from fleet_test_runs r join workers w "
            "on w.id = r.worker_id where r.tag = 'victim'",
        )
    )[0]
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()

    await wait_for(
        "the victim to run again",
        lambda: _ge(scalar(url, "select count(*) from fleet_test_runs where tag = 'victim'"), 2),
        limit_s=15,
    )
    await wait_for(
        "every record job to finish",
        lambda: _eq(
            scalar(
                url,
                "select count(*) from jobs where kind = 'fleet.record' and tag_of(payload) "
                "and status <> 'succeeded'".replace(
                    "tag_of(payload)", "coalesce(payload->>'tag', '') <> 'victim'"
                ),
            ),
            0,
        ),
    )

    runs = await rows(
        url,
        "select job_id, worker_id, started_at, finished_at from fleet_test_runs "
        "where coalesce(tag, '') <> 'tick' order by job_id, started_at",
    )
    by_job: dict[int, list[tuple[Any, ...]]] = {}
    for r in runs:
        by_job.setdefault(r[0], []).append(r)
    for job_runs in by_job.values():
        finished = [r for r in job_runs if r[3] is not None]
        unfinished = [r for r in job_runs if r[3] is None]
        # A job never completes twice; an unfinished run is the killed worker's (or the victim still running).
        assert len(finished) <= 1
        assert all(r[1] == victim_worker or r is job_runs[-1] for r in unfinished)
        # Never on two workers at once: a rerun starts only after the killed worker died.
        for earlier, later in itertools.pairwise(job_runs):
            assert earlier[1] == victim_worker and later[1] != victim_worker
            assert later[2].timestamp() >= killed_at
    victim_runs = [
        r for rs in by_job.values() for r in rs if rs[0][1] == victim_worker and len(rs) == 2
    ]
    assert victim_runs, "the victim ran again elsewhere"
    assert await scalar(url, "select status from workers where id = %s", (victim_worker,)) == "dead"

    # Failing handlers never kill a worker: they retry or go to dead with the error kept.
    await wait_for(
        "failing jobs to be dead",
        lambda: _eq(
            scalar(url, "select count(*) from jobs where kind = 'fleet.fail' and status <> 'dead'"),
            0,
        ),
    )
    dead = dict(
        await rows(
            url,
            "select payload->>'mode', attempts || ' ' || last_error from jobs "
            "where kind = 'fleet.fail'",
        )
    )
    assert dead == {
        "retryable": "3 Retryable: exchange busy",
        "fatal": "1 Fatal: invalid parameters",
        "crash": "3 ZeroDivisionError: handler bug",
    }
    assert [n for n, p in fleet.procs.items() if p.poll() is not None] == [
        n for n, p in fleet.procs.items() if p.pid == pid
    ]

    # Three workers enqueue the periodic tick, yet it runs once per period.
    periods = time.time() - started
    ticks = await scalar(
        url, "select count(*) from jobs where idempotency_key like 'periodic:fleet.tick:%%'"
    )
    assert 1 <= ticks <= periods + 2


async def _ge(value: Awaitable[Any], n: int) -> bool:
    return int(await value) >= n


async def _eq(value: Awaitable[Any], n: int) -> bool:
    return int(await value) == n


async def make_running_bots(url: str, n: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        owner = await create_user(c, f"fleet-{uuid.uuid4().hex[:6]}@test.local")
        await c.execute("set session_replication_role = replica")
        await c.execute(
            "insert into bots (user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance,"
            " current_balance, stake_amount, status) select %s, 'bot ' || g, 'binance', 'ETH/BTC', '5m',"
            " 'sma_cross', 1, 1, 0.1, 'running' from generate_series(1, %s) g",
            (owner.id, n),
        )


async def lease_counts(url: str) -> list[int]:
    got = await rows(
        url,
        "select count(*) from bot_leases where expires_at > now() and worker_id is not null "
        "group by worker_id order by 1",
    )
    return [int(r[0]) for r in got]


async def test_leases_spread_and_move_within_twice_the_ttl(fleet: Fleet) -> None:
    url = fleet.url
    await make_running_bots(url, 6)
    a = fleet.start("a")
    fleet.start("b")
    await wait_for("bots spread 3/3", lambda: _is(lease_counts(url), [3, 3]))
    held_by_a = dict(
        await rows(
            url,
            "select bot_id, epoch from bot_leases l join workers w on w.id = l.worker_id "
            "where w.name = 'a'",
        )
    )
    a.kill()
    killed = time.monotonic()
    await wait_for("b to hold all 6 bots", lambda: _is(lease_counts(url), [6]), limit_s=3 * TTL)
    assert time.monotonic() - killed <= 2 * TTL
    # Epochs grew for the bots that moved: a's writes would now be rejected.
    now = dict(await rows(url, "select bot_id, epoch from bot_leases"))
    assert all(now[bot] > epoch for bot, epoch in held_by_a.items())
    fleet.start("c")
    await wait_for(
        "bots spread again to the newcomer", lambda: _is(lease_counts(url), [3, 3]), limit_s=4 * TTL
    )


async def _is(value: Awaitable[Any], expected: Any) -> bool:
    return bool(await value == expected)


async def test_sigterm_drains_finishes_or_releases_and_frees_leases(fleet: Fleet) -> None:
    url = fleet.url
    await make_running_bots(url, 2)
    # A long poll: the drain must not wait for it (nor for a slot to free up).
    proc = fleet.start("drainer", DRAIN_TIMEOUT_S="2", WORKER_CONCURRENCY="2", POLL_INTERVAL_S="30")
    await wait_for("the drainer to lease its bots", lambda: _is(lease_counts(url), [2]))
    short = await scalar(
        url, 'select enqueue_job(\'fleet.record\', \'{"tag": "short", "sleep_s": 1.8}\')'
    )
    stuck = await scalar(
        url, 'select enqueue_job(\'fleet.record\', \'{"tag": "stuck", "sleep_s": 60}\')'
    )
    waiting = await scalar(url, "select enqueue_job('fleet.record', '{\"tag\": \"waiting\"}')")
    await wait_for(
        "both to start", lambda: _eq(scalar(url, "select count(*) from fleet_test_runs"), 2)
    )
    proc.send_signal(signal.SIGTERM)
    took = time.monotonic()
    assert await asyncio.to_thread(proc.wait, 20) == 0
    # Far below the 30 s poll and the 60 s stuck job: the drain waited for neither, even on a
    # loaded machine where the 2 s drain timeout stretches.
    assert time.monotonic() - took < 15
    status = dict(
        await rows(
            url, "select id, status || '/' || attempts from jobs where kind = 'fleet.record'"
        )
    )
    # The short job finished; the stuck one went back untouched; nothing new was claimed.
    assert status == {short: "succeeded/1", stuck: "queued/0", waiting: "queued/0"}
    assert await scalar(url, "select status from workers where name = 'drainer'") == "stopped"
    assert await lease_counts(url) == []
    assert '"action": "drain_start"' in fleet.log("drainer")


async def test_workers_reconnect_after_postgres_restarts(
    tmp_path: Path, private_cluster: tuple[str, Callable[[], None]]
) -> None:
    url, restart = private_cluster
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        await c.execute(RUNS_TABLE)
    fleet = Fleet(url, tmp_path)
    try:
        for name in ("r1", "r2"):
            fleet.start(name)
        await wait_for("2 workers", lambda: _ge(running_workers(url), 2))
        await scalar(
            url,
            "select count(*) from enqueue_jobs('fleet.record', "
            "array_fill('{\"sleep_s\": 0.1}'::jsonb, array[20]))",
        )
        await wait_for(
            "some jobs to run", lambda: _ge(scalar(url, "select count(*) from fleet_test_runs"), 3)
        )
        await asyncio.to_thread(restart)
        await scalar(
            url,
            "select count(*) from enqueue_jobs('fleet.record', "
            "array_fill('{\"sleep_s\": 0.1}'::jsonb, array[20]))",
        )
        await wait_for(
            "all 40 jobs to succeed",
            lambda: _eq(
                scalar(
                    url,
                    "select count(*) from jobs where kind = 'fleet.record' and status <> 'succeeded'",
                ),
                0,
            ),
            limit_s=30,
        )
        assert all(p.poll() is None for p in fleet.procs.values())
        assert await running_workers(url) == 2
        # After the restart the notification connection is back: a new job starts at once.
        job = await scalar(url, "select enqueue_job('fleet.record')")
        waited = await wait_for(
            "the new job",
            lambda: _eq(
                scalar(
                    url, "select count(*) from jobs where id = %s and status = 'succeeded'", (job,)
                ),
                1,
            ),
        )
        assert waited < 0.9  # faster than POLL_INTERVAL_S: woken, not polled
    finally:
        fleet.stop_all()
