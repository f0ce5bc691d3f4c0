"""The fan-out's invariants under failure: a fan-out that fails midway, or whose charges
stop midway, and is run again ends exactly where a clean run of the same input ends; a bot
whose lease moves on while the fan-out runs gets no copy; the lease-epoch fence on orders
and trades holds for every row of a statement."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_signals import grant, one, publish, running_paper_bot, subscribe
from tests.support.db import User, create_user
from tests.support.waiting import wait_for
from worker import signals


async def strategy(conn: psycopg.AsyncConnection[Any], provider: User) -> uuid.UUID:
    sid = uuid.uuid4()
    await conn.execute(
        "insert into strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price) "
        "values (%s, %s, 'Pat Momentum', 'marketplace', true, true, 10)",
        (sid, provider.id),
    )
    return sid


async def cast(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], market: uuid.UUID
) -> dict[uuid.UUID, str]:
    """Subscribers who copy (alice, erin), one whose bot is full (carol), one without credits
    for a copy (dave), one who only follows (bob). Returns user id → name."""
    alice, bob = users["alice"], users["bob"]
    carol = await create_user(conn, "carol@test.local")
    dave = await create_user(conn, "dave@test.local")
    erin = await create_user(conn, "erin@test.local")
    for u in (alice, bob, carol, erin):
        await grant(conn, u, 50)
    await grant(conn, dave, 10)  # the month takes all of it
    await subscribe(conn, alice, market, await running_paper_bot(conn, alice))
    await subscribe(
        conn, erin, market, await running_paper_bot(conn, erin), {"mode": "fixed_base", "amount": 3}
    )
    carol_bot = await running_paper_bot(conn, carol, max_open_trades=1)
    await subscribe(conn, carol, market, carol_bot)
    await conn.execute(
        "insert into trades (bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time, lease_epoch) "
        "values (%s, %s, 'binance', 'ETH/USDT', 'buy', 1, 10, now(), 7)",
        (carol_bot, carol.id),
    )
    await subscribe(conn, dave, market, await running_paper_bot(conn, dave))
    await subscribe(conn, bob, market)
    return {u.id: name for name, u in [("alice", alice), ("bob", bob), ("carol", carol),
                                       ("dave", dave), ("erin", erin)]}  # fmt: skip


async def outcome(
    conn: psycopg.AsyncConnection[Any], signal: uuid.UUID, names: dict[uuid.UUID, str]
) -> dict[str, list[tuple[Any, ...]]]:
    """What a signal left behind, per subscriber and without ids or times."""
    queries = {
        "executions": "select subscriber_id, status, reason, charge_status, credits_due, amount, price "
        "from signal_executions where signal_id = %(s)s",
        "orders": "select user_id, side, amount, filled, average_price, fee, status, lease_epoch "
        "from orders where signal_id = %(s)s",
        "trades": "select user_id, direction, amount, price, fee, status, stop_loss_price, take_profit_price, "
        "lease_epoch from trades where signal_id = %(s)s",
        "notifications": "select user_id, kind, title, body from notifications "
        "where data ->> 'signal_id' = %(s)s::text",
        "charges": "select a.user_id, t.amount, t.kind from credit_transfers t "
        "join credit_accounts a on a.id = t.debit_account_id "
        "where t.reference_type = 'signal' and t.reference_id = %(s)s::text",
    }
    result = {}
    for key, query in queries.items():
        rows = await (await conn.execute(query, {"s": signal})).fetchall()
        result[key] = sorted((names[r[0]], *r[1:]) for r in rows)
    return result


async def test_a_fan_out_run_again_after_failures_ends_like_a_clean_run(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], pool: AsyncConnectionPool
) -> None:
    market = await strategy(conn, users["provider"])
    names = await cast(conn, users, market)
    broken = await publish(conn, users["provider"], market)

    # A failure after the orders and trades are written (the notifications' insert fails):
    # the fan-out's transaction leaves nothing behind.
    await conn.execute(
        f"""create function public.fail_fan_out() returns trigger language plpgsql as $$
            begin
              if exists (select 1 from new_rows where data ->> 'signal_id' = '{broken}') then
                raise exception 'disk full';
              end if;
              return null;
            end $$;
            create trigger fail_fan_out after insert on public.notifications
              referencing new table as new_rows for each statement execute function public.fail_fan_out()"""
    )
    with pytest.raises(psycopg.errors.RaiseException, match="disk full"):
        await signals.fan_out(pool, broken)
    assert await outcome(conn, broken, names) == {
        "executions": [],
        "orders": [],
        "trades": [],
        "notifications": [],
        "charges": [],
    }
    await conn.execute("drop trigger fail_fan_out on public.notifications")

    # Run again, and the worker dies after the first charge of one copy.
    async with pool.connection() as c:
        await c.execute("select public.signal_fan_out(%s, 'open')", (broken,))
        charged = await one(c, "select charged from public.signal_charge_copies(%s, 1)", broken)
    assert charged == 1
    # The job runs again, twice: the second run finds nothing left to do.
    again = await signals.fan_out(pool, broken)
    assert (again["executed"], again["skipped"], again["charged"]) == (0, 0, 1)
    assert await signals.fan_out(pool, broken) == {
        "executed": 0,
        "skipped": 0,
        "notified": 0,
        "charged": 0,
        "rejected": 0,
    }

    # The same input, fanned out cleanly (the copies of the first signal leave room on every
    # bot that had room: three open trades at most).
    clean = await publish(conn, users["provider"], market)
    result = await signals.fan_out(pool, clean)
    assert result == {"executed": 2, "skipped": 2, "notified": 5, "charged": 2, "rejected": 0}
    after_failures, clean_run = (
        await outcome(conn, broken, names),
        await outcome(conn, clean, names),
    )
    assert after_failures == clean_run
    assert [r[:3] for r in clean_run["executions"]] == [
        ("alice", "executed", None),
        ("carol", "skipped", "max_open_trades"),
        ("dave", "skipped", "insufficient_credits"),
        ("erin", "executed", None),
    ]
    assert [(r[0], r[1]) for r in clean_run["orders"]] == [("alice", "buy"), ("erin", "buy")]
    assert [r[0] for r in clean_run["charges"]] == ["alice", "erin"]
    assert ("dave", "low_credits") in [r[:2] for r in clean_run["notifications"]]


async def test_a_bot_whose_lease_moves_on_during_the_fan_out_gets_no_copy(
    conn: psycopg.AsyncConnection[Any],
    db_url: str,
    users: dict[str, User],
    pool: AsyncConnectionPool,
) -> None:
    market = await strategy(conn, users["provider"])
    alice, bob = users["alice"], users["bob"]
    for u in (alice, bob):
        await grant(conn, u, 50)
    alice_bot = await running_paper_bot(conn, alice)
    bob_bot = await running_paper_bot(conn, bob)
    await subscribe(conn, alice, market, alice_bot)
    await subscribe(conn, bob, market, bob_bot)
    signal = await publish(conn, users["provider"], market)

    # Another worker takes bob's bot over (epoch 7 → 8) and has not committed yet: the fan-out
    # read epoch 7 and waits on the lease; the takeover commits.
    async with await psycopg.AsyncConnection.connect(db_url) as takeover:
        await takeover.execute("update bot_leases set epoch = 8 where bot_id = %s", (bob_bot,))
        fanning = asyncio.create_task(signals.fan_out(pool, signal))

        async def waits_on_the_lease() -> bool:
            row = await (
                await conn.execute(
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                    "and query like '%%signal_fan_out%%'"
                )
            ).fetchone()
            return row is not None and row[0] > 0

        await wait_for("the fan-out to wait on the lease", waits_on_the_lease)
        await takeover.commit()
    result = await fanning

    assert (result["executed"], result["skipped"], result["charged"]) == (1, 1, 1)
    rows = await (
        await conn.execute(
            "select bot_id, status, reason, charge_status, order_id from signal_executions "
            "where signal_id = %s order by status",
            (signal,),
        )
    ).fetchall()
    assert rows[0][:4] == (alice_bot, "executed", None, "charged")
    assert rows[1] == (bob_bot, "skipped", "bot_lease_changed", "none", None)
    assert await one(conn, "select count(*) from orders where bot_id = %s", bob_bot) == 0
    assert await one(conn, "select count(*) from trades where bot_id = %s", bob_bot) == 0
    assert await one(conn, "select count(*) from orders where bot_id = %s", alice_bot) == 1
    assert (
        await one(
            conn,
            "select kind from notifications where user_id = %s and data ->> 'signal_id' = %s",
            bob.id,
            str(signal),
        )
        == "error"
    )


async def test_the_lease_fence_rejects_a_statement_with_one_stale_row(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    alice, bob = users["alice"], users["bob"]
    alice_bot = await running_paper_bot(conn, alice)  # epoch 7
    bob_bot = await running_paper_bot(conn, bob)
    await conn.execute("update bot_leases set epoch = 8 where bot_id = %s", (bob_bot,))
    order = (
        "insert into orders (bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, "
        "lease_epoch) select b.id, b.user_id, 'o-' || b.id, 'binance', 'BTC/USDT', 'buy', 'market', 1, 7 "
        "from bots b where b.id = any(%s)"
    )
    with pytest.raises(psycopg.errors.SerializationFailure) as err:
        await conn.execute(order, ([alice_bot, bob_bot],))
    assert err.value.diag.constraint_name == "bot_leases_fencing"
    assert await one(conn, "select count(*) from orders") == 0
    await conn.execute(order, ([alice_bot],))

    # An update by a worker that lost the lease is rejected too, orders and trades alike.
    await conn.execute("update bot_leases set epoch = 9 where bot_id = %s", (alice_bot,))
    with pytest.raises(psycopg.errors.SerializationFailure) as err:
        await conn.execute("update orders set status = 'closed', lease_epoch = 7")
    assert err.value.diag.constraint_name == "bot_leases_fencing"
    await conn.execute(
        "insert into trades (bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time, "
        "lease_epoch) values (%s, %s, 'binance', 'BTC/USDT', 'buy', 1, 10, now(), 9)",
        (alice_bot, alice.id),
    )
    with pytest.raises(psycopg.errors.SerializationFailure) as err:
        await conn.execute("update trades set lease_epoch = 8")
    assert err.value.diag.constraint_name == "bot_leases_fencing"
    assert await one(conn, "select lease_epoch from trades") == 9
