"""One lock order for leases: renewing, releasing and taking leases over (lease churn) while
steps of the same bots are written never deadlocks, and no step is lost."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_leases import new_worker, running_bots
from tests.support.waiting import wait_for

BOTS = 1500
ROUNDS = 30
START = datetime(2026, 1, 1, tzinfo=UTC)
DEADLOCKS = "select deadlocks from pg_stat_database where datname = current_database()"


async def deadlocks(conn: psycopg.AsyncConnection[Any]) -> int:
    await conn.execute("select pg_stat_clear_snapshot()")
    row = await (await conn.execute(DEADLOCKS)).fetchone()
    assert row is not None
    return int(row[0])


async def waits_for_a_lock(
    conn: psycopg.AsyncConnection[Any], other: psycopg.AsyncConnection[Any], what: str
) -> None:
    """Until ``other``'s backend waits for a lock (seen from ``conn``)."""
    pid = other.info.backend_pid

    async def waiting() -> bool:
        cur = await conn.execute(
            "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s", (pid,)
        )
        row = await cur.fetchone()
        return bool(row and row[0])

    await wait_for(what, waiting, 10)


async def test_lease_churn_and_steps_of_the_same_bots_never_deadlock(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, db_url: str
) -> None:
    bots = await running_bots(conn, BOTS)
    holder = await new_worker(pool, "holder", capacity=BOTS)
    churners = [await new_worker(pool, f"churn-{i}", capacity=1) for i in range(2)]
    # The holder's leases, taken over time in any order (their rows are not in bot-id order).
    await conn.execute(
        "insert into bot_leases (bot_id, worker_id, epoch, acquired_at, renewed_at, expires_at)"
        " select b, %s, 1, now(), now(), now() + interval '1 hour'"
        " from unnest(%s::uuid[]) b order by random()",
        (holder, random.sample(bots, len(bots))),
    )
    before = await deadlocks(conn)
    lost: list[str] = []
    failed: list[str] = []

    async def steps(offset: int) -> None:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
            for i in range(ROUNDS):
                candle = START + timedelta(minutes=5 * i)
                batch = [
                    {"bot_id": b, "epoch": 1, "candle_at": candle.isoformat()}
                    for b in bots[offset::3]
                ]
                try:
                    await c.execute(
                        "select * from public.bot_apply_steps(%s::jsonb)", (json.dumps(batch),)
                    )
                except psycopg.Error as e:
                    lost.append(f"{candle}: {e}")

    async def churn(worker: str | None) -> None:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
            for _ in range(ROUNDS):
                try:
                    if worker is None:  # the holder renews what it holds
                        await c.execute(
                            "select * from public.acquire_bot_leases(%s, 3600)", (holder,)
                        )
                    else:  # others come, take their share, and let go of it
                        await c.execute(
                            "select * from public.acquire_bot_leases(%s, 0.01)", (worker,)
                        )
                        await c.execute("select public.release_bot_leases(%s)", (worker,))
                except psycopg.Error as e:
                    failed.append(str(e))

    await asyncio.gather(
        steps(0), steps(1), steps(2), churn(None), churn(None), *map(churn, churners)
    )

    assert lost == [] and failed == []
    assert await deadlocks(conn) == before
    # Bots the holder kept all along (the churners took one each, now and then) carry every
    # step: none was lost to a deadlock.
    (kept, late) = (
        await (
            await conn.execute(
                "select count(*), count(*) filter (where b.last_candle_at is distinct from %s)"
                " from bots b join bot_leases l on l.bot_id = b.id"
                " where b.id = any(%s::uuid[]) and l.epoch = 1",
                (START + timedelta(minutes=5 * (ROUNDS - 1)), bots),
            )
        ).fetchall()
    )[0]
    assert kept >= BOTS - 2 * len(churners) and late == 0


async def test_marking_two_dead_workers_never_deadlocks_with_a_takeover_of_their_leases(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, db_url: str
) -> None:
    """Two dead workers' leases interleave in bot order (w1: 1st and 4th bot, w2: 2nd and
    3rd). A worker taking them over locks them in bot-id order, as acquire_bot_leases does;
    marking the workers dead must lock them in that order too, not one worker's after the
    other's (which deadlocked: it held the 4th while waiting for the 2nd)."""
    b1, b2, b3, b4 = sorted(await running_bots(conn, 4))
    w1 = await new_worker(pool, "dead-1")
    w2 = await new_worker(pool, "dead-2")
    await conn.execute(
        "insert into bot_leases (bot_id, worker_id, epoch, acquired_at, renewed_at, expires_at)"
        " select b, w, 1, now(), now(), now() - interval '1 minute'"
        " from unnest(%s::uuid[], %s::uuid[]) as t(b, w)",
        ([b1, b4, b2, b3], [w1, w1, w2, w2]),
    )
    await conn.execute(
        "update workers set heartbeat_at = now() - interval '1 hour' where id = any(%s::uuid[])",
        ([w1, w2],),
    )
    before = await deadlocks(conn)
    async with (
        await psycopg.AsyncConnection.connect(db_url) as taker,
        await psycopg.AsyncConnection.connect(db_url, autocommit=True) as marker,
    ):
        lock = "select 1 from bot_leases where bot_id = %s for update"
        await taker.execute(lock, (b2,))
        marking = asyncio.create_task(marker.execute("select public.mark_dead_workers(60)"))
        await waits_for_a_lock(conn, marker, "mark_dead_workers waits for the taker's lock")
        await taker.execute(lock, (b4,))  # deadlocked here when the marker held the 4th bot
        await taker.commit()
        await marking
    assert await deadlocks(conn) == before
    leases = await (
        await conn.execute(
            "select count(*) from bot_leases where worker_id = any(%s::uuid[])", ([w1, w2],)
        )
    ).fetchone()
    dead = await (
        await conn.execute(
            "select count(*) from workers where status = 'dead' and id = any(%s::uuid[])",
            ([w1, w2],),
        )
    ).fetchone()
    assert (leases, dead) == ((0,), (2,))
