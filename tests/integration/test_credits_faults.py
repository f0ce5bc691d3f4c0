"""Hold expiry under faults, compared with what a fault-free expiry leaves: two workers
running the periodic job at once (no deadlock, no hold voided twice), and the job's
connection killed in the middle of a batch (the batch leaves nothing; the job's next run
voids every expired hold once)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_credits import account_id, audit, job_context
from tests.support.db import User, create_user
from tests.support.waiting import wait_for
from worker import credits
from worker.credits import jobs
from worker.errors import Retryable

USERS = 4
EXPIRED_EACH = 3
BATCH = 5

EXPECTED_HOLDS = [
    (i, Decimal(n), "void_pending" if n <= EXPIRED_EACH else "")
    for i in range(USERS)
    for n in range(1, EXPIRED_EACH + 2)
]
"""What a fault-free expiry leaves: each expired hold voided once, the live one open."""
HOLDS = (
    "select a.user_id, t.amount, v.phase from credit_transfers t"
    " join credit_accounts a on a.id = t.debit_account_id"
    " left join credit_transfers v on v.pending_id = t.id"
    " where t.phase = 'pending' order by a.user_id, t.amount, v.phase"
)
AVAILABLE = (
    "select user_id, credits_posted - debits_posted - debits_pending from credit_accounts"
    " where kind = 'user' and user_id = any(%s) order by user_id"
)


async def holders(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool
) -> tuple[list[User], list[uuid.UUID]]:
    """Users with expired holds (amounts 1, 2, 3) and one live hold (4) each."""
    usage = await account_id(conn, "system:usage")
    users, accounts = [], []
    for i in range(USERS):
        u = await create_user(conn, f"holder{i}@test.local")
        mine = await account_id(conn, u)
        await credits.grant(pool, id=uuid.uuid4(), user_id=u.id, amount=Decimal(20))
        for n in range(1, EXPIRED_EACH + 2):
            await credits.hold(
                pool,
                id=uuid.uuid4(),
                debit_account_id=mine,
                credit_account_id=usage,
                amount=Decimal(n),
                expires_after=timedelta(seconds=-1 if n <= EXPIRED_EACH else 3600),
            )
        users.append(u)
        accounts.append(mine)
    return users, accounts


async def left(conn: psycopg.AsyncConnection[Any], users: list[User]) -> dict[str, Any]:
    names = {u.id: i for i, u in enumerate(users)}
    holds = await (await conn.execute(HOLDS)).fetchall()
    avail = await (await conn.execute(AVAILABLE, ([u.id for u in users],))).fetchall()
    return {
        "holds": sorted((names[r[0]], r[1], r[2] or "") for r in holds),
        "available": sorted((names[r[0]], r[1]) for r in avail),
        "audit": await audit(conn),
    }


async def waiting_on_locks(conn: psycopg.AsyncConnection[Any], n: int) -> bool:
    cur = await conn.execute(
        "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
        " and datname = current_database() and query like '%%credit_expire_holds%%'"
    )
    row = await cur.fetchone()
    return row is not None and row[0] >= n


async def test_two_workers_expiring_holds_at_once_void_each_once(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs, "EXPIRE_BATCH", BATCH)
    users, accounts = await holders(conn, pool)

    # A charge holds the last holder's account: both workers' batches pile up behind it,
    # then run against each other.
    async with await psycopg.AsyncConnection.connect(db_url) as charge:
        await charge.execute(
            "select 1 from credit_accounts where id = %s for update", (accounts[-1],)
        )
        runs = [
            asyncio.create_task(jobs.expire_holds(job_context(pool, jobs.EXPIRE_HOLDS, {})))
            for _ in range(2)
        ]
        await wait_for("a worker to wait on the account", lambda: waiting_on_locks(conn, 1))

        async def second_waits_or_ended() -> bool:
            return any(r.done() for r in runs) or await waiting_on_locks(conn, 2)

        # The other waits too, or ends its run without voiding what the first holds.
        await wait_for("the other worker to wait or end", second_waits_or_ended)
        await charge.execute("rollback")
    results = await asyncio.wait_for(asyncio.gather(*runs), 30)
    assert sum(r["voided"] for r in results) == USERS * EXPIRED_EACH

    after = await left(conn, users)
    assert after["audit"] == []
    assert after["available"] == [(i, Decimal(20 - 4)) for i in range(USERS)]
    assert after["holds"] == EXPECTED_HOLDS


async def test_a_hold_expiry_killed_mid_batch_leaves_nothing_and_the_next_run_voids_all(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs, "EXPIRE_BATCH", BATCH)
    users, accounts = await holders(conn, pool)

    # Rounds of BATCH holds, each its own transaction: a round waits on the last holder's
    # account, and its connection dies there (kill -9 of the worker, a restart of
    # PostgreSQL).
    async with await psycopg.AsyncConnection.connect(db_url) as charge:
        await charge.execute(
            "select 1 from credit_accounts where id = %s for update", (accounts[-1],)
        )
        run = asyncio.create_task(jobs.expire_holds(job_context(pool, jobs.EXPIRE_HOLDS, {})))
        await wait_for("a round to wait on the account", lambda: waiting_on_locks(conn, 1))
        await conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where wait_event_type = 'Lock'"
            " and datname = current_database() and query like '%%credit_expire_holds%%'"
        )
        with pytest.raises(Retryable):
            await run
        await charge.execute("rollback")
    # The rounds before it committed; the killed round left nothing.
    killed = await left(conn, users)
    assert killed["audit"] == []
    voided = sum(1 for h in killed["holds"] if h[2])
    assert voided % BATCH == 0 and voided < USERS * EXPIRED_EACH
    assert killed["holds"] != EXPECTED_HOLDS

    # The job's next run voids every expired hold, once; a run after it finds none.
    ctx = job_context(pool, jobs.EXPIRE_HOLDS, {})
    assert await jobs.expire_holds(ctx) == {"voided": USERS * EXPIRED_EACH - voided}
    assert await jobs.expire_holds(ctx) == {"voided": 0}
    after = await left(conn, users)
    assert after["audit"] == []
    assert after["available"] == [(i, Decimal(20 - 4)) for i in range(USERS)]
    assert after["holds"] == EXPECTED_HOLDS
