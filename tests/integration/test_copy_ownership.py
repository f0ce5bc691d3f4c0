"""Copy trades belong to copy execution, never to the bot's runner.

A subscriber's running paper bot trades by its own strategy while copy execution opens a
copy of a provider's signal on it. After a takeover the runner rebuilds its paper account
from the database: it must not adopt the copy as its position, nor close it by its own
stop-loss, take-profit or strategy exit; the signal's close closes it, once; the bot's
statistics count both.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from tests.support.bots import create_bot, grant_credits, harness, register_worker
from tests.support.db import User, request_as
from worker import signals


async def rows(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> list[tuple[Any, ...]]:
    return await (await conn.execute(query, args)).fetchall()


async def test_a_copy_on_a_running_bot_is_owned_by_copy_execution_across_a_takeover(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    pool: AsyncConnectionPool,
) -> None:
    alice, pat = users["alice"], users["provider"]
    await grant_credits(conn, alice, "100")
    strategy = uuid.uuid4()
    await conn.execute(
        "insert into strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price) "
        "values (%s, %s, 'Pat Momentum', 'marketplace', true, true, 10)",
        (strategy, pat.id),
    )
    bot = await create_bot(conn, alice, stop_loss=2, take_profit=3, max_open_trades=5)
    async with request_as(conn, alice) as cur:
        await cur.execute(
            "select public.subscribe_to_strategy(%s, true, %s, '{}')", (strategy, bot)
        )

    first = await register_worker(conn, "copy-first")
    async with harness(db_url, first) as h:
        await h.sync()
        await h.candles(40)
        # The provider publishes a long on the bot's market, with a stop and target so
        # tight that a runner treating the copy as its own would close it within candles.
        (price,) = (
            await rows(
                conn,
                "select close from candles where symbol = 'ETH/BTC' "
                "order by open_time desc limit 1",
            )
        )[0]
        async with request_as(conn, pat) as cur:
            await cur.execute(
                "insert into signals (strategy_id, pair, side, entry_price, stop_loss, take_profit) "
                "values (%s, 'ETH/BTC', 'long', %s, %s, %s) returning id",
                (strategy, price, price * Decimal("0.999"), price * Decimal("1.001")),
            )
            got = await cur.fetchone()
        assert got is not None
        signal = uuid.UUID(str(got["id"]))
        opened = await signals.fan_out(pool, signal)
        assert opened["executed"] == 1, opened
        await h.candles(5)
    [(copy_id,)] = await rows(
        conn,
        "select id from trades where bot_id = %s and signal_id = %s and status = 'open'",
        bot,
        signal,
    )
    own_before = await rows(
        conn, "select id from trades where bot_id = %s and signal_id is null", bot
    )
    assert own_before, "the bot traded by its own strategy before the copy"

    # Takeover: the first worker lets go, another one leases the bot and rebuilds it.
    await conn.execute("select public.release_bot_leases(%s)", (first,))
    second = await register_worker(conn, "copy-second")
    async with harness(db_url, second, h.now) as h2:
        await h2.sync()
        state = h2.runner.bots[bot]
        assert state.position is None or state.position.trade_id != copy_id
        own_open = await rows(
            conn,
            "select amount from trades where bot_id = %s and status = 'open' and signal_id is null",
            bot,
        )
        balance = await state.exchange.fetch_balance()
        held = balance["ETH"].total if "ETH" in balance else Decimal(0)
        assert held == sum(
            (a for (a,) in own_open), Decimal(0)
        )  # the copy's ETH is not the runner's
        await h2.candles(120)
        assert state.position is None or state.position.trade_id != copy_id

    # The runner never touched the copy: still open, its only order the copy's entry.
    assert await rows(conn, "select status, exit_time from trades where id = %s", copy_id) == [
        ("open", None)
    ]
    assert await rows(
        conn, "select count(*) from orders where bot_id = %s and signal_id is not null", bot
    ) == [(1,)]
    assert (
        await rows(conn, "select count(*) from orders where bot_id = %s and signal_id is null", bot)
    )[0][0] > 0

    # The signal's close (at the market's last close: the replayed candles predate the
    # signal, so no other exit lies within the range since it was published) closes the
    # copy, exactly once however often it runs.
    async with request_as(conn, pat) as cur:
        await cur.execute("update signals set action = 'close' where id = %s", (signal,))
    closed = await signals.fan_out(pool, signal, "close")
    assert closed["executed"] == 1, closed
    again = await signals.fan_out(pool, signal, "close")
    assert again["executed"] == 0, again
    assert await rows(conn, "select status, exit_reason from trades where id = %s", copy_id) == [
        ("closed", "signal_closed")
    ]
    assert await rows(
        conn,
        "select side from orders where bot_id = %s and signal_id = %s order by created_at",
        bot,
        signal,
    ) == [("buy",), ("sell",)]

    # Bot statistics (the trades trigger) count the bot's own trades and the copy.
    closed_trades = await rows(
        conn, "select profit, signal_id from trades where bot_id = %s and status = 'closed'", bot
    )
    assert any(s is not None for _, s in closed_trades) and any(s is None for _, s in closed_trades)
    (total, profit) = (
        await rows(conn, "select total_trades, profit from bots where id = %s", bot)
    )[0]
    assert total == len(closed_trades)
    assert profit == sum(p for p, _ in closed_trades).quantize(Decimal("1e-8"))
