"""Worker registration, death and bot leases: one owner per bot, fair spreading, fencing."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.support.db import User, create_user, request_as
from worker.fleet import queue, workers
from worker.fleet.leases import LeaseChange, LeaseManager

TTL = 30.0


async def new_worker(pool: AsyncConnectionPool, name: str, capacity: int = 100) -> str:
    return await workers.register(
        pool,
        name=name,
        host="test",
        pid=1,
        version="test",
        queues=["default"],
        capacity=capacity,
        metadata={"leases": True},
    )


async def running_bots(conn: psycopg.AsyncConnection[Any], n: int) -> list[str]:
    """``n`` running bots of one user (plan limits are not what these tests are about)."""
    owner = await create_user(conn, f"owner-{uuid.uuid4().hex[:6]}@test.local")
    await conn.execute("set session_replication_role = replica")  # skip the plan-limit trigger
    try:
        cur = await conn.execute(
            "insert into bots (user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance,"
            " current_balance, stake_amount, status) select %s, 'bot ' || g, 'binance', 'ETH/BTC', '5m',"
            " 'sma_cross', 1, 1, 0.1, 'running' from generate_series(1, %s) g returning id::text",
            (owner.id, n),
        )
        return [r[0] for r in await cur.fetchall()]
    finally:
        await conn.execute("set session_replication_role = origin")


async def holders(conn: psycopg.AsyncConnection[Any]) -> Counter[str]:
    cur = await conn.execute(
        "select worker_id::text from bot_leases where expires_at > now() and worker_id is not null"
    )
    return Counter(r[0] for r in await cur.fetchall())


async def expire(conn: psycopg.AsyncConnection[Any], worker_id: str) -> None:
    """Let this worker's leases run out, as if TTL had passed without renewal."""
    await conn.execute(
        "update bot_leases set expires_at = now() - interval '1 second' where worker_id = %s",
        (worker_id,),
    )


async def test_bots_spread_evenly_and_move_to_a_joining_worker(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
) -> None:
    bots = await running_bots(conn, 10)
    a = LeaseManager(pool, await new_worker(pool, "a"), ttl_s=TTL)
    gained = await a.sync()
    assert sorted(c.bot_id for c in gained if c.gained) == sorted(bots)  # alone: takes them all
    b = LeaseManager(pool, await new_worker(pool, "b"), ttl_s=TTL)
    await b.sync()  # nothing free yet
    lost = await a.sync()  # a sees a peer and lets half go
    assert len([c for c in lost if not c.gained]) == 5
    await b.sync()
    assert sorted((await holders(conn)).values()) == [5, 5]
    assert set(a.owned).isdisjoint(b.owned) and len(a.owned) + len(b.owned) == 10
    # A moved bot's epoch grew: writes with b's epoch are the only ones accepted now.
    assert all(epoch == 2 for epoch in b.owned.values())
    for m in (a, b):
        await m.close()


async def test_capacity_caps_a_worker_and_the_rest_goes_elsewhere(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
) -> None:
    await running_bots(conn, 9)
    small = LeaseManager(pool, await new_worker(pool, "small", capacity=2), ttl_s=TTL)
    big = LeaseManager(pool, await new_worker(pool, "big", capacity=100), ttl_s=TTL)
    await small.sync()
    await big.sync()
    await small.sync()
    assert (len(small.owned), len(big.owned)) == (2, 7)


async def test_dead_worker_bots_are_taken_over_with_a_new_epoch_and_fenced(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    [bot] = await running_bots(conn, 1)
    a_id = await new_worker(pool, "a")
    a = LeaseManager(pool, a_id, ttl_s=TTL)
    b = LeaseManager(pool, await new_worker(pool, "b"), ttl_s=TTL)
    await a.sync()
    assert a.owned == {bot: 1}
    await b.sync()
    assert b.owned == {}  # a's lease is valid: exactly one owner

    await conn.execute(
        "update workers set heartbeat_at = now() - interval '1 minute' where id = %s", (a_id,)
    )
    assert await workers.mark_dead(pool, stale_s=TTL) == 1
    changes = await b.sync()
    assert changes == [LeaseChange(bot, 2, True)]

    order = (
        "insert into orders (bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, lease_epoch)"
        " select %s, user_id, %s, 'binance', 'ETH/BTC', 'buy', 'market', 1, %s from bots where id = %s"
    )
    await conn.execute(order, (bot, "b-1", 2, bot))
    with pytest.raises(psycopg.errors.SerializationFailure) as err:
        await conn.execute(order, (bot, "a-1", 1, bot))  # the old owner's write is rejected
    assert err.value.diag.constraint_name == "bot_leases_fencing"
    # a comes back (it was only paused): it does not get the bot back while b holds it.
    assert await workers.heartbeat(pool, a_id, 30) == "running"
    await a.sync()
    assert a.owned == {} and b.epoch(bot) == 2


async def test_expired_leases_are_taken_over_and_stopped_bots_released(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
) -> None:
    bots = await running_bots(conn, 2)
    a_id = await new_worker(pool, "a")
    a = LeaseManager(pool, a_id, ttl_s=TTL)
    b = LeaseManager(pool, await new_worker(pool, "b"), ttl_s=TTL, live_s=10)
    await a.sync()
    held = next(iter(a.owned))  # a's share while b is also live
    await expire(conn, a_id)
    await conn.execute(
        "update workers set heartbeat_at = now() - interval '1 minute' where id = %s", (a_id,)
    )
    await b.sync()  # a is no longer live: b's share is both bots
    assert sorted(b.owned) == sorted(bots)
    epoch = b.owned[held]
    assert epoch == 2  # taken over: the epoch grew
    other = next(bot for bot in bots if bot != held)
    assert b.owned[other] == 1  # never leased before
    await conn.execute("update bots set status = 'stopped' where id = %s", (held,))
    assert await b.sync() == [LeaseChange(held, epoch, False)]  # a stopped bot is let go
    assert list(b.owned) == [other]


async def test_graceful_stop_frees_leases_and_requeues_jobs(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
) -> None:
    [bot] = await running_bots(conn, 1)
    a_id = await new_worker(pool, "a")
    a = LeaseManager(pool, a_id, ttl_s=TTL)
    await a.sync()
    job_id = await queue.enqueue(pool, "fleet.noop")
    await queue.claim(pool, a_id, ["default"], 1)
    await workers.set_status(pool, a_id, "draining")
    assert (await a.sync()) == [LeaseChange(bot, 1, False)]  # draining workers hold no bots
    await workers.set_status(pool, a_id, "stopped")
    cur = await conn.execute("select status, locked_by from jobs where id = %s", (job_id,))
    assert await cur.fetchone() == ("queued", None)
    b = LeaseManager(pool, await new_worker(pool, "b"), ttl_s=TTL)
    await b.sync()
    assert b.owned == {bot: 2}


async def test_heartbeat_extends_only_the_jobs_the_worker_still_runs(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
) -> None:
    w = await new_worker(pool, "w")
    running = await queue.enqueue(pool, "fleet.noop")
    forgotten = await queue.enqueue(pool, "fleet.noop")  # its outcome was lost: let it expire
    await queue.claim(pool, w, ["default"], 2, lock_s=1)
    assert await workers.heartbeat(pool, w, 120, [running]) == "running"
    cur = await conn.execute(
        "select id, locked_until - now() > interval '100 seconds' from jobs order by id"
    )
    assert await cur.fetchall() == [(running, True), (forgotten, False)]


async def test_fleet_health_shows_workers_load_and_lag_to_admins_only(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    await running_bots(conn, 3)
    w = await new_worker(pool, "w")
    await LeaseManager(pool, w, ttl_s=TTL).sync()
    await queue.enqueue_many(pool, "fleet.noop", [{}, {}])
    await queue.claim(pool, w, ["default"], 1)
    await conn.execute(
        "update jobs set run_at = now() - interval '1 minute' where status = 'queued'"
    )
    async with request_as(conn, users["admin"]) as cur:
        await cur.execute(
            "select name, status, running_jobs, leased_bots, queue_lag_s from fleet_health"
        )
        [row] = await cur.fetchall()
    assert (row["name"], row["status"], row["running_jobs"], row["leased_bots"]) == (
        "w",
        "running",
        1,
        3,
    )
    assert row["queue_lag_s"] >= 59
    async with request_as(conn, users["alice"]) as cur:
        await cur.execute("select count(*) as n from fleet_health")
        assert await cur.fetchone() == {"n": 0}
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, users["alice"]) as cur:
            await cur.execute("select * from acquire_bot_leases(%s, 30)", (w,))
