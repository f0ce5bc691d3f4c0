"""The copies' charges, set-based, must charge exactly as the ledger's batch call did: on
the same executions (a subscriber without enough credits in the middle of the set, a
charge already in the ledger, a payer with several charges) public.signal_charge_copies
and the former path (private.signal_charge_copies_by_batch) leave the same transfers,
balances, executions and notifications; a failure in the middle of the charges leaves
nothing, and the charges run again end like a clean run; the ledger stays audited."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_signals import grant, one, publish, running_paper_bot, subscribe
from tests.integration.test_signals_fanout import cast, outcome, strategy
from tests.support.db import User, create_user
from worker import signals

BY_BATCH = "private.signal_charge_copies_by_batch(uuid,integer)"
STATE = {
    "transfers": "select id, debit_account_id, credit_account_id, amount, kind, phase, pending_id, timeout_at, "
    "reference_type, reference_id, metadata, created_at = now() from credit_transfers "
    "where reference_type = 'signal' and reference_id = %(s)s::text order by id",
    "accounts": "select id, debits_posted, credits_posted, debits_pending, credits_pending, balance "
    "from credit_accounts order by id",
    "executions": "select id, status, charge_status, credits_due from signal_executions "
    "where signal_id = %(s)s order by id",
    "notifications": "select user_id, kind, title, body, data from notifications "
    "where data ->> 'signal_id' = %(s)s::text order by user_id, kind, title",
    "audit": "select * from credit_audit()",
}


async def state(conn: psycopg.AsyncConnection[Any], signal: uuid.UUID) -> dict[str, Any]:
    out = {}
    for key, query in STATE.items():
        out[key] = await (await conn.execute(query, {"s": signal})).fetchall()
    return out


async def by_batch_calls(conn: psycopg.AsyncConnection[Any]) -> int:
    """How often this session called the former path (track_functions = 'pl'; counts not
    yet reported to the statistics are this session's, whichever transaction made them)."""
    return int(
        await one(
            conn, "select coalesce(pg_stat_get_xact_function_calls(%s::regprocedure), 0)", BY_BATCH
        )
    )


async def charge_both_ways(
    conn: psycopg.AsyncConnection[Any], signal: uuid.UUID, chunk: int
) -> tuple[tuple[list[Any], dict[str, Any], int], tuple[list[Any], dict[str, Any], int]]:
    """Charge every pending copy of the signal by chunks of ``chunk``, once set-based and once
    by the former path, each in a transaction rolled back: the results (charged, rejected
    per chunk), what the charges left, and how often the former path ran."""
    outcomes = []
    for call in ("public.signal_charge_copies", "private.signal_charge_copies_by_batch"):
        await conn.execute("begin")
        await conn.execute("set local track_functions = 'pl'")
        calls = await by_batch_calls(conn)
        results = []
        while True:
            row = await (
                await conn.execute(f"select charged, rejected from {call}(%s, %s)", (signal, chunk))
            ).fetchone()
            assert row is not None
            if row == (0, 0):
                break
            results.append(row)
        outcomes.append((results, await state(conn, signal), await by_batch_calls(conn) - calls))
        await conn.execute("rollback")
    return outcomes[0], outcomes[1]


async def copiers(
    conn: psycopg.AsyncConnection[Any], provider: User, n: int
) -> tuple[uuid.UUID, list[User]]:
    market = await strategy(conn, provider)
    subscribers = []
    for i in range(n):
        u = await create_user(conn, f"copier{i}@test.local")
        await grant(conn, u, 50)
        await subscribe(conn, u, market, await running_paper_bot(conn, u))
        subscribers.append(u)
    return market, subscribers


async def charge(conn: psycopg.AsyncConnection[Any], signal: uuid.UUID) -> tuple[int, int]:
    row = await (
        await conn.execute("select charged, rejected from signal_charge_copies(%s)", (signal,))
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def usage_account(conn: psycopg.AsyncConnection[Any]) -> uuid.UUID:
    return uuid.UUID(
        str(await one(conn, "select id from credit_accounts where code = 'system:usage'"))
    )


async def drain(conn: psycopg.AsyncConnection[Any], user_id: uuid.UUID, leave: str) -> None:
    """Spend a user's credits down to ``leave`` (another usage charge got there first)."""
    cur = await conn.execute(
        "select r.result from credit_accounts a, lateral credit_create_transfers(jsonb_build_array("
        "jsonb_build_object('id', gen_random_uuid(), 'debit_account_id', a.id, 'credit_account_id', %s::uuid,"
        " 'amount', a.credits_posted - a.debits_posted - a.debits_pending - %s::numeric, 'kind', 'usage'))) r"
        " where a.user_id = %s and a.kind = 'user'",
        (await usage_account(conn), leave, user_id),
    )
    assert await cur.fetchall() == [("ok",)]


async def test_set_based_charges_equal_the_batch_path(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    market, _ = await copiers(conn, users["provider"], 9)
    signal = await publish(conn, users["provider"], market)
    await conn.execute("select public.signal_fan_out(%s, 'open')", (signal,))
    pending = await (
        await conn.execute(
            "select subscriber_id, credits_due, md5('copy-trade-credits:' || signal_id || ':' || subscription_id)"
            " from signal_executions where signal_id = %s and charge_status = 'pending' order by 3",
            (signal,),
        )
    ).fetchall()
    assert len(pending) == 9
    due = pending[0][1]
    assert due > 0
    # In the middle of the set (the charges' order): one subscriber spent their credits
    # since the fan-out, one is a credit short, one's charge is in the ledger already.
    await drain(conn, pending[4][0], "0")
    await drain(conn, pending[5][0], str(due / 2))
    cur = await conn.execute(
        "select r.result from credit_accounts a join signal_executions e on e.subscriber_id = a.user_id,"
        " lateral credit_create_transfers(jsonb_build_array(jsonb_build_object("
        "'id', %s::uuid, 'debit_account_id', a.id, 'credit_account_id', %s::uuid, 'amount', %s::numeric,"
        " 'kind', 'usage', 'reference_type', 'signal', 'reference_id', %s::text,"
        " 'metadata', jsonb_build_object('usage', 'trade', 'quantity', 1, 'unit_price', %s::numeric,"
        " 'subscription_id', e.subscription_id)))) r"
        " where a.user_id = %s and a.kind = 'user' and e.signal_id = %s",
        (pending[2][2], await usage_account(conn), due, str(signal), due, pending[2][0], signal),
    )
    assert await cur.fetchall() == [("ok",)]

    for chunk in (1000, 4):
        (
            (set_results, set_state, set_fallbacks),
            (batch_results, batch_state, _),
        ) = await charge_both_ways(conn, signal, chunk)
        assert set_results == batch_results
        assert set_state == batch_state
        assert set_fallbacks == 0  # decided set-based
        assert set_state["audit"] == []
        assert sum(r[0] for r in set_results) == 7 and sum(r[1] for r in set_results) == 2

    assert await charge(conn, signal) == (7, 2)
    rejected = {
        r[0]
        for r in await (
            await conn.execute(
                "select subscriber_id from signal_executions where signal_id = %s and charge_status = 'rejected'",
                (signal,),
            )
        ).fetchall()
    }
    assert rejected == {pending[4][0], pending[5][0]}
    for user_id in rejected:
        assert (
            await one(
                conn,
                "select count(*) from notifications where user_id = %s and kind = 'low_credits'"
                " and data ->> 'signal_id' = %s",
                user_id,
                str(signal),
            )
            == 1
        )
    # the charge already in the ledger is not charged twice
    assert (
        await one(
            conn,
            "select count(*) from credit_transfers t join credit_accounts a on a.id = t.debit_account_id"
            " where a.user_id = %s and t.reference_id = %s",
            pending[2][0],
            str(signal),
        )
        == 1
    )
    assert await charge(conn, signal) == (0, 0)
    assert (
        await one(
            conn, "select count(*) from credit_accounts where balance < 0 and not allow_negative"
        )
        == 0
    )


async def test_a_payer_of_several_charges_short_of_credits_is_charged_one_by_one(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    market, subs = await copiers(conn, users["provider"], 4)
    signal = await publish(conn, users["provider"], market)
    await conn.execute("select public.signal_fan_out(%s, 'open')", (signal,))
    due = await one(
        conn, "select max(credits_due) from signal_executions where signal_id = %s", signal
    )
    # Three copies paid from one account, the middle one (in the charges' order) ten times
    # dearer: the account covers all three, then the first and the last only (the ledger
    # decides one by one: a refused charge leaves its credits to the later ones).
    payer = subs[0]
    await conn.execute(
        "update signal_executions set subscriber_id = %s where signal_id = %s and subscriber_id = any(%s)",
        (payer.id, signal, [subs[1].id, subs[2].id]),
    )
    await conn.execute(
        "update signal_executions set credits_due = credits_due * 10 where id = ("
        " select id from signal_executions where signal_id = %s and subscriber_id = %s"
        " order by md5('copy-trade-credits:' || signal_id || ':' || subscription_id) offset 1 limit 1)",
        (signal, payer.id),
    )
    for leave, fallbacks in ((12 * due, 0), (2 * due, 1)):
        await drain(conn, payer.id, str(leave))
        (
            (set_results, set_state, set_fallbacks),
            (batch_results, batch_state, _),
        ) = await charge_both_ways(conn, signal, 1000)
        assert set_results == batch_results
        assert set_state == batch_state
        assert set_fallbacks == fallbacks
        assert set_state["audit"] == []
    assert set_results == [(3, 1)]


async def test_charges_that_fail_midway_leave_nothing_and_run_again_like_a_clean_run(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], pool: AsyncConnectionPool
) -> None:
    market = await strategy(conn, users["provider"])
    names = await cast(conn, users, market)
    broken = await publish(conn, users["provider"], market)
    balances = "select id, debits_posted, credits_posted, debits_pending, credits_pending from credit_accounts order by id"
    before = await (await conn.execute(balances)).fetchall()

    # The last write of the charges (system:usage credited by the sum) fails: the orders are
    # persisted, and nothing of the charges is.
    await conn.execute(
        """create function public.fail_usage_credit() returns trigger language plpgsql as $$
           begin raise exception 'disk full'; end $$;
           create trigger fail_usage_credit before update on public.credit_accounts
             for each row when (old.code = 'system:usage') execute function public.fail_usage_credit()"""
    )
    with pytest.raises(psycopg.errors.RaiseException, match="disk full"):
        await signals.fan_out(pool, broken)
    assert await (await conn.execute(balances)).fetchall() == before
    assert await one(conn, "select count(*) from orders where signal_id = %s", broken) == 2
    assert (
        await one(
            conn,
            "select count(*) from signal_executions where signal_id = %s and charge_status = 'pending'",
            broken,
        )
        == 2
    )
    assert (await outcome(conn, broken, names))["charges"] == []
    await conn.execute("drop trigger fail_usage_credit on public.credit_accounts")

    # The job runs again: the copies are charged once.
    again = await signals.fan_out(pool, broken)
    assert again == {"executed": 0, "skipped": 0, "notified": 0, "charged": 2, "rejected": 0}

    clean = await publish(conn, users["provider"], market)
    result = await signals.fan_out(pool, clean)
    assert result == {"executed": 2, "skipped": 2, "notified": 5, "charged": 2, "rejected": 0}
    assert await outcome(conn, broken, names) == await outcome(conn, clean, names)
    assert await (await conn.execute("select * from credit_audit()")).fetchall() == []
