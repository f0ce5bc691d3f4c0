"""The copies' charges under faults, each run compared with a fault-free run of the same
input (a second signal to the same subscribers):

- the worker's connection dies in the middle of the charge chunks (its backend terminated
  after earlier chunks committed, as a kill -9 or a PostgreSQL restart leaves it); the job
  runs again and every copy is charged exactly once;
- a stale worker (stopped past its job's visibility timeout) stopped in a chunk's
  transaction: PostgreSQL ends it, and the retry elsewhere does not wait on it for good;
- a stale worker's chunk still in flight when the job runs again elsewhere: the job does
  not end while those copies are pending, and once the stale worker dies its chunk is
  charged by the next attempt."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_signals import grant, one, publish, running_paper_bot, subscribe
from tests.integration.test_signals_fanout import outcome, strategy
from tests.support.db import User, create_user
from tests.support.waiting import wait_for
from worker import signals
from worker.db import open_pool
from worker.errors import Retryable
from worker.fleet.settings import FleetSettings

COPIERS = 6
CHUNK = 2

LEDGER = "select * from credit_audit()"
BALANCES = (
    "select a.user_id, a.debits_posted, a.credits_posted from credit_accounts a "
    "where a.user_id = any(%s) order by a.user_id"
)


async def copiers(
    conn: psycopg.AsyncConnection[Any], provider: User
) -> tuple[uuid.UUID, dict[uuid.UUID, str]]:
    market = await strategy(conn, provider)
    names = {}
    for i in range(COPIERS):
        u = await create_user(conn, f"copier{i}@test.local")
        await grant(conn, u, 50)
        await subscribe(conn, u, market, await running_paper_bot(conn, u))
        names[u.id] = f"copier{i}"
    return market, names


async def charged(conn: psycopg.AsyncConnection[Any], signal: uuid.UUID, status: str) -> int:
    return int(
        await one(
            conn,
            "select count(*) from signal_executions where signal_id = %s and charge_status = %s",
            signal,
            status,
        )
    )


async def spent(conn: psycopg.AsyncConnection[Any], names: dict[uuid.UUID, str]) -> list[Any]:
    return list(await (await conn.execute(BALANCES, (list(names),))).fetchall())


async def clean_run(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    provider: User,
    market: uuid.UUID,
    names: dict[uuid.UUID, str],
) -> dict[str, Any]:
    """A fault-free fan-out of the same signal to the same subscribers: what it left and
    what it cost each of them."""
    before = await spent(conn, names)
    clean = await publish(conn, provider, market)
    result = await signals.fan_out(pool, clean)
    assert result["charged"] == COPIERS
    after = await spent(conn, names)
    return {
        "outcome": await outcome(conn, clean, names),
        "cost": [(a[0], a[1] - b[1]) for a, b in zip(after, before, strict=True)],
    }


async def test_a_worker_killed_between_charge_chunks_charges_each_copy_once_on_retry(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(signals.jobs, "CHARGE_CHUNK", CHUNK)
    market, names = await copiers(conn, users["provider"])
    before = await spent(conn, names)
    killed = await publish(conn, users["provider"], market)

    # The third chunk's transaction loses its backend once the first two committed: the
    # connection dies mid-chunk, as under kill -9 of the worker or a restart of PostgreSQL.
    await conn.execute(
        f"""create function public.kill_third_chunk() returns trigger language plpgsql as $$
            begin
              if (select count(*) from public.signal_executions
                   where signal_id = '{killed}' and charge_status = 'charged') > {2 * CHUNK} then
                perform pg_terminate_backend(pg_backend_pid());
                perform pg_sleep(5);
              end if;
              return null;
            end $$;
            create trigger kill_third_chunk after update on public.signal_executions
              for each statement execute function public.kill_third_chunk()"""
    )
    with pytest.raises(Retryable, match="database unavailable"):
        await signals.fan_out(pool, killed)
    assert await charged(conn, killed, "charged") == 2 * CHUNK
    assert await charged(conn, killed, "pending") == COPIERS - 2 * CHUNK
    await conn.execute("drop trigger kill_third_chunk on public.signal_executions")

    # The job's next attempt, on another connection: the copies left are charged, the
    # others not again.
    again = await signals.fan_out(pool, killed)
    assert again == {
        "executed": 0,
        "skipped": 0,
        "notified": 0,
        "charged": COPIERS - 2 * CHUNK,
        "rejected": 0,
    }
    after = await spent(conn, names)
    faulted = {
        "outcome": await outcome(conn, killed, names),
        "cost": [(a[0], a[1] - b[1]) for a, b in zip(after, before, strict=True)],
    }
    assert faulted == await clean_run(conn, pool, users["provider"], market, names)
    assert len(faulted["outcome"]["charges"]) == COPIERS
    assert await (await conn.execute(LEDGER)).fetchall() == []


async def test_a_worker_stopped_mid_charge_loses_its_locks_and_the_retry_charges_all(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(signals.jobs, "CHARGE_CHUNK", CHUNK)
    market, names = await copiers(conn, users["provider"])
    before = await spent(conn, names)
    signal = await publish(conn, users["provider"], market)
    await conn.execute("select public.signal_fan_out(%s, 'open')", (signal,))

    # The stale worker, its pool opened as the fleet opens it: it charged a chunk and was
    # stopped (SIGSTOP past its job's visibility timeout) before committing, holding the
    # chunk's copies, their payers and system:usage, which every charge credits.
    settings = FleetSettings(database_url=db_url, db_idle_in_transaction_s=1)
    stale_pool = await open_pool(
        db_url, min_size=1, max_size=1, idle_in_transaction_s=settings.db_idle_in_transaction_s
    )
    try:
        async with stale_pool.connection() as stale:
            await stale.execute("begin")
            cur = await stale.execute(signals.jobs.CHARGE, {"signal_id": signal, "chunk": CHUNK})
            assert await cur.fetchone() == (CHUNK, 0)

            # The job runs again elsewhere: PostgreSQL ends the stopped transaction, and the
            # retry charges every copy, the stale chunk's too.
            async with asyncio.timeout(20):
                again = await signals.fan_out(pool, signal)
            assert (again["charged"], again["rejected"]) == (COPIERS, 0)
            with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
                await stale.execute("commit")
    finally:
        await stale_pool.close()

    after = await spent(conn, names)
    faulted = {
        "outcome": await outcome(conn, signal, names),
        "cost": [(a[0], a[1] - b[1]) for a, b in zip(after, before, strict=True)],
    }
    assert faulted == await clean_run(conn, pool, users["provider"], market, names)
    assert await (await conn.execute(LEDGER)).fetchall() == []


async def test_copies_in_a_chunk_in_flight_elsewhere_keep_the_job_until_charged(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(signals.jobs, "CHARGE_CHUNK", CHUNK)
    market, names = await copiers(conn, users["provider"])
    before = await spent(conn, names)
    signal = await publish(conn, users["provider"], market)
    await conn.execute("select public.signal_fan_out(%s, 'open')", (signal,))
    first_payer = await one(
        conn,
        "select a.id from signal_executions e join credit_accounts a on a.user_id = e.subscriber_id"
        " and a.kind = 'user' where e.signal_id = %s order by e.id limit 1",
        signal,
    )

    # The stale worker's chunk is in flight: it locked its copies and waits on a payer's
    # account (another charge of that payer holds it).
    async with (
        await psycopg.AsyncConnection.connect(db_url) as payer,
        await psycopg.AsyncConnection.connect(db_url) as stale,
    ):
        await payer.execute(
            "select 1 from credit_accounts where id = %s for update", (first_payer,)
        )
        await stale.execute("set role service_role")
        stale_pid = await one(stale, "select pg_backend_pid()")
        chunk = asyncio.create_task(
            stale.execute(signals.jobs.CHARGE, {"signal_id": signal, "chunk": CHUNK})
        )

        async def waits_on_the_payer() -> bool:
            return bool(
                await one(
                    conn,
                    "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s",
                    stale_pid,
                )
            )

        await wait_for("the stale chunk to wait on its payer", waits_on_the_payer)

        # The job runs again elsewhere: it charges what it can and does not end while the
        # stale chunk's copies are pending.
        retry: Exception | None = None
        try:
            await signals.fan_out(pool, signal)
        except Retryable as e:
            retry = e
        charged_meanwhile = await charged(conn, signal, "charged")

        # The stale worker dies: its chunk rolls back.
        await conn.execute("select pg_terminate_backend(%s)", (stale_pid,))
        with pytest.raises(psycopg.OperationalError):
            await chunk
        await payer.execute("rollback")
    assert retry is not None and "still pending" in str(retry)
    assert charged_meanwhile == COPIERS - CHUNK
    assert await charged(conn, signal, "pending") == CHUNK

    # The next attempt charges the copies the stale worker left.
    again = await signals.fan_out(pool, signal)
    assert (again["charged"], again["rejected"]) == (CHUNK, 0)
    after = await spent(conn, names)
    faulted = {
        "outcome": await outcome(conn, signal, names),
        "cost": [(a[0], a[1] - b[1]) for a, b in zip(after, before, strict=True)],
    }
    assert faulted == await clean_run(conn, pool, users["provider"], market, names)
    assert await (await conn.execute(LEDGER)).fetchall() == []
