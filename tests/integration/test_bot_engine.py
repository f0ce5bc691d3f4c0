"""The decision path on real Postgres: candles close, bots decide, and what a user sees
(orders, trades with P&L, logs, statistics, credits) is persisted with the lease epoch."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from tests.support.bots import create_bot, grant_credits, harness, register_worker
from tests.support.db import User


async def rows(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> list[tuple[Any, ...]]:
    return await (await conn.execute(query, args)).fetchall()


async def test_paper_bot_trades_and_persists_with_its_epoch(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "100")
    bot = await create_bot(conn, alice, stop_loss=2, take_profit=3)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        epoch = h.leases.owned[bot]
        await h.candles(200)

    orders = await rows(
        conn,
        "select client_order_id, status, lease_epoch, side from public.orders where bot_id = %s",
        bot,
    )
    trades = await rows(
        conn,
        "select status, profit, fee, exit_reason, lease_epoch, amount, price, exit_price "
        "from public.trades where bot_id = %s",
        bot,
    )
    closed = [t for t in trades if t[0] == "closed"]
    assert len(closed) >= 3, trades
    assert all(o[2] == epoch for o in orders)
    assert len({o[0] for o in orders}) == len(orders)
    assert {t[3] for t in closed} <= {"signal", "stop_loss", "take_profit"}
    for t in closed:
        assert isinstance(t[1], Decimal) and t[2] > 0
    (total, profit, balance, last) = (
        await rows(
            conn,
            "select total_trades, profit, current_balance, last_candle_at from public.bots where id = %s",
            bot,
        )
    )[0]
    assert total == len(closed)
    # bots.profit is numeric(20, 8): the sum of the exact trade profits, rounded
    assert profit == sum(t[1] for t in closed).quantize(Decimal("1e-8"))
    assert balance == Decimal("1.0") + profit
    assert last is not None
    # one credit per trade (Free plan), posted for every entry that filled
    (posted,) = (
        await rows(
            conn, "select count(*) from public.credit_transfers where phase = 'post_pending'"
        )
    )[0]
    assert posted == len(trades)
    logs = await rows(
        conn, "select message from public.bot_logs where bot_id = %s and source = 'bot'", bot
    )
    assert any("bought" in m[0] for m in logs)


async def test_without_credits_entries_are_skipped_logged_and_notified(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    bob = users["bob"]
    bot = await create_bot(conn, bob)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(120)
    assert await rows(conn, "select 1 from public.orders where bot_id = %s", bot) == []
    logs = await rows(
        conn, "select message from public.bot_logs where bot_id = %s and log_level = 'warning'", bot
    )
    assert any("not enough credits" in m[0] for m in logs)
    notes = await rows(conn, "select kind from public.notifications where user_id = %s", bob.id)
    assert ("low_credits",) in notes


async def test_invalid_parameters_put_the_bot_in_error_and_others_keep_trading(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "100")
    bad = await create_bot(conn, alice, name="bad", parameters={"fast": 50, "slow": 10})
    good = await create_bot(conn, alice, name="good")
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(150)
    ((status, message),) = await rows(
        conn, "select status, error_message from public.bots where id = %s", bad
    )
    assert status == "error" and "fast" in message
    assert await rows(conn, "select 1 from public.trades where bot_id = %s", good)


async def test_daily_loss_limit_pauses_the_bot_with_a_reason(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "100")
    bot = await create_bot(
        conn, alice, stake_amount="0.9", stop_loss=0.3, daily_loss_limit="0.000001"
    )
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(300)
        assert bot not in h.runner.bots or h.runner.bots[bot].halted
    ((status, reason),) = await rows(
        conn, "select status, status_reason from public.bots where id = %s", bot
    )
    assert status == "paused"
    assert "daily loss limit" in reason


async def test_a_stale_epoch_writes_nothing(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "100")
    bot = await create_bot(conn, alice)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        # another worker took the bot over (its epoch grew)
        await conn.execute(
            "update public.bot_leases set epoch = epoch + 1 where bot_id = %s", (bot,)
        )
        await h.candles(150)
        assert bot not in h.runner.bots
    assert await rows(conn, "select 1 from public.orders where bot_id = %s", bot) == []
