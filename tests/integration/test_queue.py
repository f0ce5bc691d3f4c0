"""The job queue's SQL functions as the fleet (service_role) and operators see them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_lease_lock_order import deadlocks, waits_for_a_lock
from tests.support.db import User, request_as
from tests.support.waiting import wait_for
from worker.fleet import queue, workers


async def new_worker(pool: AsyncConnectionPool, name: str = "w") -> str:
    return await workers.register(
        pool, name=name, host="test", pid=1, version="test", queues=["default"], capacity=10
    )


async def job_row(conn: psycopg.AsyncConnection[Any], job_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    await cur.execute("select *, run_at - now() as delay from jobs where id = %s", (job_id,))
    row = await cur.fetchone()
    assert row is not None
    return row


async def test_same_idempotency_key_yields_one_job_and_enqueue_notifies(
    pool: AsyncConnectionPool, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as listener:
        await listener.execute("listen tradefleet_jobs")
        first = await queue.enqueue(pool, "fleet.noop", {"a": 1}, idempotency_key="period:1")
        second = await queue.enqueue(pool, "fleet.noop", {"a": 2}, idempotency_key="period:1")
        other = await queue.enqueue(pool, "fleet.noop", queue="slow")
        gen = listener.notifies(timeout=5, stop_after=2)
        got = [n.payload async for n in gen]
    assert first == second != other
    cur = await conn.execute("select count(*) from jobs where idempotency_key = 'period:1'")
    assert await cur.fetchone() == (1,)
    # One wake-up per job actually inserted, carrying its queue.
    assert got == ["default", "slow"]


async def test_concurrent_claims_never_share_a_job_and_respect_priority_run_at_and_kinds(
    pool: AsyncConnectionPool,
) -> None:
    w1, w2 = await new_worker(pool, "w1"), await new_worker(pool, "w2")
    ids = await queue.enqueue_many(pool, "fleet.noop", [{"n": i} for i in range(40)])
    urgent = await queue.enqueue(pool, "fleet.noop", priority=10)
    later = await queue.enqueue(pool, "fleet.noop", run_at=datetime.now(UTC) + timedelta(hours=1))
    other_kind = await queue.enqueue(pool, "other.kind")

    first = await queue.claim(pool, w1, ["default"], 1, kinds=["fleet.noop"])
    assert [j.id for j in first] == [urgent]
    a, b = await asyncio.gather(
        queue.claim(pool, w1, ["default"], 30, kinds=["fleet.noop"]),
        queue.claim(pool, w2, ["default"], 30, kinds=["fleet.noop"]),
    )
    claimed = [j.id for j in a] + [j.id for j in b]
    assert sorted(claimed) == ids  # every ready job exactly once, never the future or foreign kind
    assert later not in claimed and other_kind not in claimed
    assert all(j.attempts == 1 for j in a + b)


async def test_complete_only_by_the_lock_holder(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
) -> None:
    w1, w2 = await new_worker(pool, "w1"), await new_worker(pool, "w2")
    job_id = await queue.enqueue(pool, "fleet.noop")
    [job] = await queue.claim(pool, w1, ["default"], 5)
    assert await queue.complete(pool, w2, [job.id]) == set()
    assert await queue.complete(pool, w1, [job.id], [{"ok": True}]) == {job_id}
    row = await job_row(conn, job_id)
    assert (row["status"], row["result"], row["locked_by"]) == ("succeeded", {"ok": True}, None)
    assert row["finished_at"] >= row["started_at"]


async def test_failures_back_off_exponentially_with_jitter_then_die_keeping_the_last_error(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
) -> None:
    w = await new_worker(pool)
    job_id = await queue.enqueue(pool, "fleet.noop", max_attempts=3)
    for attempt, (low, high) in enumerate([(1.0, 2.0), (2.0, 4.0)], start=1):
        [job] = await queue.claim(pool, w, ["default"], 1)
        assert job.attempts == attempt
        assert await queue.fail(pool, w, job_id, f"boom {attempt}", backoff_base_s=2.0) == "queued"
        row = await job_row(conn, job_id)
        assert low - 0.1 <= row["delay"].total_seconds() <= high + 0.1
        assert row["last_error"] == f"boom {attempt}"
        assert await queue.claim(pool, w, ["default"], 1) == []  # not before its run_at
        await conn.execute("update jobs set run_at = now() where id = %s", (job_id,))
    [job] = await queue.claim(pool, w, ["default"], 1)
    assert await queue.fail(pool, w, job_id, "boom 3") == "dead"
    row = await job_row(conn, job_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("dead", 3, "boom 3")


async def test_fatal_dies_at_once_and_retry_after_is_honoured(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
) -> None:
    w = await new_worker(pool)
    fatal = await queue.enqueue(pool, "fleet.noop")
    slow = await queue.enqueue(pool, "fleet.noop")
    await queue.claim(pool, w, ["default"], 2)
    assert await queue.fail(pool, w, fatal, "bad parameters", retry=False) == "dead"
    assert await queue.fail(pool, w, slow, "rate limited", retry_after_s=60) == "queued"
    assert 59 <= (await job_row(conn, slow))["delay"].total_seconds() <= 60.5
    assert await queue.fail(pool, w, fatal, "again") is None  # no longer held


async def test_expired_locks_are_reclaimed_and_heartbeats_keep_them(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
) -> None:
    crashed, alive = await new_worker(pool, "crashed"), await new_worker(pool, "alive")
    lost = await queue.enqueue(pool, "fleet.noop", max_attempts=2)
    kept = await queue.enqueue(pool, "fleet.noop")
    last = await queue.enqueue(pool, "fleet.noop", max_attempts=1)
    await queue.claim(pool, crashed, ["default"], 1, lock_s=0.05)
    await queue.claim(pool, alive, ["default"], 1, lock_s=0.05)
    await queue.claim(pool, crashed, ["default"], 1, lock_s=0.05)
    assert await queue.extend_lock(pool, alive, kept, 60)
    assert not await queue.extend_lock(pool, alive, lost, 60)  # not its job

    async def locks_expired() -> bool:
        cur = await conn.execute(
            "select count(*) from jobs where status = 'running' and locked_until < now()"
        )
        return await cur.fetchone() == (2,)

    await wait_for("the 50 ms visibility timeouts to pass", locks_expired)
    assert await queue.reclaim_expired(pool) == 2
    assert (await job_row(conn, kept))["status"] == "running"
    row = await job_row(conn, lost)
    assert (row["status"], row["locked_by"]) == ("queued", None)
    assert "lock expired" in row["last_error"]
    assert (await job_row(conn, last))["status"] == "dead"  # no attempts left
    # The crashed worker's job runs again elsewhere; the crashed worker cannot complete it.
    [again] = await queue.claim(pool, alive, ["default"], 5)
    assert (again.id, again.attempts) == (lost, 2)
    assert await queue.complete(pool, crashed, [lost]) == set()


async def test_released_jobs_go_back_untouched(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
) -> None:
    w = await new_worker(pool)
    job_id = await queue.enqueue(pool, "fleet.noop")
    await queue.claim(pool, w, ["default"], 1)
    assert await queue.release(pool, w, [job_id]) == 1
    row = await job_row(conn, job_id)
    assert (row["status"], row["attempts"], row["locked_by"]) == ("queued", 0, None)


async def test_operators_see_depth_age_failures_and_dead_per_kind(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    w = await new_worker(pool)
    await queue.enqueue_many(pool, "credits.settle", [{}, {}, {}])
    await conn.execute("update jobs set run_at = now() - interval '2 minutes'")
    await queue.enqueue(pool, "bots.tick")
    [job] = await queue.claim(pool, w, ["default"], 1, kinds=["bots.tick"])
    await queue.fail(pool, w, job.id, "exchange down", retry=False)
    await queue.claim(pool, w, ["default"], 1, kinds=["credits.settle"])
    async with request_as(conn, users["admin"]) as cur:
        await cur.execute(
            "select kind, ready, running, failed, dead, oldest_ready_age_s, last_dead_error "
            "from job_queue_stats order by kind"
        )
        rows = await cur.fetchall()
    assert [
        (r["kind"], r["ready"], r["running"], r["dead"], r["last_dead_error"]) for r in rows
    ] == [
        ("bots.tick", 0, 0, 1, "exchange down"),
        ("credits.settle", 2, 1, 0, None),
    ]
    assert rows[1]["oldest_ready_age_s"] >= 119
    async with request_as(conn, users["alice"]) as cur:
        await cur.execute("select count(*) as n from job_queue_stats")
        assert await cur.fetchone() == {"n": 0}


@pytest.mark.parametrize("who", ["anon", "alice"])
async def test_apps_cannot_call_queue_functions(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], who: str
) -> None:
    requester: User | str = users[who] if who in users else who
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, requester) as cur:
            await cur.execute("select public.enqueue_job('fleet.noop')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, requester) as cur:
            await cur.execute("select * from public.claim_jobs(gen_random_uuid(), '{default}', 10)")


@pytest.mark.parametrize("call", ["complete_jobs", "worker_heartbeat"])
async def test_a_heartbeat_and_a_completion_of_the_same_jobs_never_deadlock(
    pool: AsyncConnectionPool, db_url: str, conn: psycopg.AsyncConnection[Any], call: str
) -> None:
    """A worker's heartbeat (extending its running jobs' locks) and its completion of some of
    them run on two connections at once. Both lock the jobs in id order: the other side
    here holds the first job, then takes the second while the call waits for the first."""
    w = await new_worker(pool)
    await queue.enqueue_many(pool, "fleet.noop", [{"n": i} for i in range(2)])
    first, second = sorted(j.id for j in await queue.claim(pool, w, ["default"], 2))
    # The first job's row now lies after the second's, so a scan in table order meets the
    # second first.
    await conn.execute("update jobs set updated_at = now() where id = %s", (first,))
    statement = {
        "complete_jobs": "select public.complete_jobs(%s, %s, null)",
        "worker_heartbeat": "select public.worker_heartbeat(%s, 30, %s)",
    }[call]
    before = await deadlocks(conn)
    async with (
        await psycopg.AsyncConnection.connect(db_url) as other,
        await psycopg.AsyncConnection.connect(db_url, autocommit=True) as caller,
    ):
        lock = "select 1 from jobs where id = %s for update"
        await other.execute(lock, (first,))
        # The array names the jobs in the order they finished: the second one first.
        calling = asyncio.create_task(caller.execute(statement, (w, [second, first])))
        await waits_for_a_lock(conn, caller, f"{call} waits for the first job's lock")
        await other.execute(lock, (second,))
        await other.commit()
        await calling
    assert await deadlocks(conn) == before
    if call == "complete_jobs":
        assert [(await job_row(conn, j))["status"] for j in (first, second)] == ["succeeded"] * 2
