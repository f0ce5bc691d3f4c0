"""A worker in this process: payload validation, failures that must not become loops or
crashes, prompt drains and what its logs say about failed jobs."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any, Literal

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.support.fleet import fleet_settings, job_status, worker_running
from worker.errors import Retryable
from worker.fleet import builtin, retention
from worker.fleet.registry import JobContext, Payload, PayloadError, Registry
from worker.fleet.runtime import Worker
from worker.fleet.settings import RetentionSettings


class Count(Payload):
    n: int


class Raise(Payload):
    what: Literal["cancel", "cancelled_task", "exit", "interrupt", "retryable"]


async def count(ctx: JobContext[Count]) -> dict[str, int]:
    return {"n": ctx.payload.n}


async def raise_(ctx: JobContext[Raise]) -> None:
    what = ctx.payload.what
    if what == "cancel":
        raise asyncio.CancelledError
    if what == "cancelled_task":
        other = asyncio.create_task(asyncio.sleep(60))
        other.cancel()
        await other  # someone else's cancellation reaches the handler
    if what == "exit":
        raise SystemExit(3)
    if what == "interrupt":
        raise KeyboardInterrupt
    raise Retryable("exchange busy", retry_after=0.01)


def registry() -> Registry:
    r = Registry()
    builtin.register(r)
    retention.register(r, RetentionSettings(_env_file=None))  # type: ignore[call-arg]
    r.job("test.count", payload=Count)(count)
    r.job("test.raise", payload=Raise, max_attempts=2)(raise_)
    return r


async def job(conn: psycopg.AsyncConnection[Any], job_id: int) -> tuple[Any, ...]:
    cur = await conn.execute(
        "select status, attempts, last_error, result from jobs where id = %s", (job_id,)
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def jobs_count(conn: psycopg.AsyncConnection[Any]) -> int:
    cur = await conn.execute("select count(*) from jobs")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_python_enqueue_of_a_bad_payload_is_refused_before_any_row_is_written(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
) -> None:
    r = registry()
    with pytest.raises(PayloadError, match="n\n  Input should be a valid integer"):
        await r.enqueue(pool, "test.count", {"n": "many"})
    with pytest.raises(PayloadError, match="Extra inputs are not permitted"):
        await r.enqueue(pool, "test.count", {"n": 1, "typo": True})
    with pytest.raises(PayloadError, match="takes a Count payload, not Raise"):
        await r.enqueue(pool, "test.count", Raise(what="exit"))
    with pytest.raises(PayloadError, match=r"no job kind 'test\.unknown'"):
        await r.enqueue(pool, "test.unknown", {})
    assert await jobs_count(conn) == 0

    job_id = await r.enqueue(pool, "test.count", Count(n=2))
    assert await job(conn, job_id) == ("queued", 0, None, None)
    cur = await conn.execute("select payload, max_attempts from jobs where id = %s", (job_id,))
    assert await cur.fetchone() == ({"n": 2}, 5)


async def test_a_bad_payload_written_with_sql_ends_dead_at_once_while_a_good_one_runs(
    pool: AsyncConnectionPool, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    # What a buggy trigger or someone with SQL access could write.
    cur = await conn.execute(
        "insert into jobs (kind, payload, max_attempts) values "
        "('test.count', '{\"n\": \"many\"}', 5), ('test.count', '{\"n\": 7}', 5) returning id"
    )
    bad, good = [r[0] for r in await cur.fetchall()]
    async with worker_running(Worker(fleet_settings(db_url), registry())):
        await job_status(conn, good, "succeeded")
        await job_status(conn, bad, "dead")
    status, attempts, error, result = await job(conn, bad)
    assert (status, attempts, result) == ("dead", 1, None)
    assert error.startswith("invalid payload: 1 validation error for Count\nn\n")
    assert "Input should be a valid integer" in error
    assert (await job(conn, good))[::3] == ("succeeded", {"n": 7})


@pytest.mark.parametrize(
    ("what", "error"),
    [
        ("cancel", "CancelledError: the handler was cancelled"),
        ("cancelled_task", "CancelledError: the handler was cancelled"),
        ("exit", "SystemExit: 3"),
        ("interrupt", "KeyboardInterrupt: "),
    ],
)
async def test_cancellation_and_exits_raised_by_a_handler_fail_its_job_not_the_worker(
    pool: AsyncConnectionPool,
    db_url: str,
    conn: psycopg.AsyncConnection[Any],
    what: str,
    error: str,
) -> None:
    r = registry()
    failing = await r.enqueue(pool, "test.raise", {"what": what})
    async with worker_running(Worker(fleet_settings(db_url), r)):
        # Retried with backoff, then dead with the error: never released and re-claimed.
        await job_status(conn, failing, "dead")
        after = await r.enqueue(pool, "test.count", {"n": 1})
        await job_status(conn, after, "succeeded")  # the worker runs on
    assert (await job(conn, failing))[:3] == ("dead", 2, error)


async def test_stop_wakes_a_claim_loop_waiting_for_a_free_slot(
    pool: AsyncConnectionPool, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    r = Registry()
    started = asyncio.Event()

    async def forever(ctx: JobContext[Count]) -> None:
        started.set()
        await asyncio.Event().wait()

    r.job("test.forever", payload=Count)(forever)
    settings = fleet_settings(db_url, worker_concurrency=1, poll_interval_s=30, drain_timeout_s=0.5)
    w = Worker(settings, r)
    job_id = await r.enqueue(pool, "test.forever", {"n": 1})
    async with worker_running(w, stop_within_s=0.5 + 1):
        await asyncio.wait_for(started.wait(), 10)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 0.5 + 1
    assert (await job(conn, job_id))[:2] == ("queued", 0)  # released, untouched


async def test_a_failed_jobs_log_record_carries_its_id_kind_error_and_action(
    pool: AsyncConnectionPool,
    db_url: str,
    conn: psycopg.AsyncConnection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tradefleet.worker")
    r = registry()
    job_id = await r.enqueue(pool, "test.raise", {"what": "retryable"})
    async with worker_running(Worker(fleet_settings(db_url), r)):
        await job_status(conn, job_id, "dead")
    failed = [rec for rec in caplog.records if rec.getMessage() == "job failed"]
    assert len(failed) == 2
    for rec in failed:
        assert rec.__dict__["job_id"] == job_id
        assert rec.__dict__["kind"] == "test.raise"
        assert rec.__dict__["error"] == "Retryable: exchange busy"
        assert rec.__dict__["action"] == "job_failed"


async def test_periodic_payloads_are_checked_when_registered() -> None:
    r = registry()
    with pytest.raises(PayloadError, match="jobs_keep_s"):
        r.every("prune-often", timedelta(hours=1), "fleet.prune", {"jobs_keep_s": -1})
    assert "prune-often" not in r.periodic_jobs


async def test_a_payload_error_inside_a_handler_is_the_handlers_bug_not_a_bad_payload(
    pool: AsyncConnectionPool, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    r = registry()

    async def enqueues_badly(ctx: JobContext[Count]) -> None:
        await r.enqueue(ctx.pool, "test.count", {"n": "many"})

    r.job("test.enqueues_badly", payload=Count, max_attempts=2)(enqueues_badly)
    job_id = await r.enqueue(pool, "test.enqueues_badly", {"n": 1})
    async with worker_running(Worker(fleet_settings(db_url), r)):
        await job_status(conn, job_id, "dead")
    status, attempts, error, _ = await job(conn, job_id)
    # Retried like any crash, and the error says whose payload was wrong.
    assert (status, attempts) == ("dead", 2)
    assert error.startswith("PayloadError: 1 validation error for Count")
