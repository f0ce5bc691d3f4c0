"""A paper limit order partly filled (``metadata.paper_volume_share``) when its bot is taken
over: the fills so far are on the order's row, written with the step that made them, and
the adopting worker books them on the rebuilt paper account and rests only the rest. A run
taken over between partial fills (several times) ends with exactly the orders, trades and
balances of the same bot run on the same candles without a takeover."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from tests.integration.test_backtest_parity import FEE, PARAMS
from tests.support.bots import (
    bot_status,
    create_bot,
    grant_credits,
    harness,
    register_worker,
)
from tests.support.db import User
from worker.bots.paper import BotPaperExchange

START = datetime(2018, 1, 12, 6, tzinfo=UTC)
STEPS = 420
TAKEOVERS = 4

SETTINGS: dict[str, Any] = {
    "parameters": PARAMS,
    "initial_balance": "10",
    "stake_amount": "0.5",
    "metadata": {"paper_fee": str(FEE), "paper_volume_share": "0.0005"},
    "entry_order_type": "limit",
    "exit_order_type": "limit",
    "limit_offset": "0.02",
    "entry_timeout": 3,
    "exit_timeout": 3,
    "timeout_action": "requote",
}

ORDERS = """
select side, order_type, amount, price, filled, average_price, fee, status, reason, decided_at
  from public.orders where bot_id = %s order by decided_at, side, reason, amount, status
"""
TRADES = """
select side, direction, amount, price, exit_price, fee, profit, status, exit_reason, entry_time,
       exit_time, decided_at
  from public.trades where bot_id = %s order by entry_time, exit_time nulls last, amount
"""
BOT = """
select b.total_trades, b.winning_trades, b.profit, b.current_balance, e.position_amount,
       e.realized_pnl, e.equity
  from public.bots b left join public.bot_equity e on e.bot_id = b.id where b.id = %s
"""


async def outcome(conn: psycopg.AsyncConnection[Any], bot: str) -> dict[str, list[Any]]:
    return {
        name: await (await conn.execute(query, (bot,))).fetchall()  # type: ignore[arg-type]
        for name, query in (("orders", ORDERS), ("trades", TRADES), ("bot", BOT))
    }


async def partly_filled(h: Any, bot: str) -> dict[str, Any]:
    """The bot's open paper orders filled in part, by client id: their filled amount."""
    state = h.runner.bots.get(bot)
    if state is None or not isinstance(state.exchange, BotPaperExchange):
        return {}
    return {
        o.client_order_id: o.filled
        for o in await state.exchange.fetch_open_orders()
        if o.filled > 0
    }


async def taken_over(
    conn: psycopg.AsyncConnection[Any],
    db_url: str,
    bot: str,
    start: datetime,
    name: str,
    seen: Callable[[Any, dict[str, Any]], Awaitable[None]] | None = None,
) -> None:
    """``bot`` over :data:`STEPS` candles from ``start``, its lease passed to a new worker
    right after a candle that left an order partly filled (:data:`TAKEOVERS` times, 10
    candles or more apart). Each adopting worker must hold exactly those fills, and an
    order taken over must fill further under it. ``seen(h, parts)`` looks at a worker's
    runner just before it hands over."""
    done, now, takeovers = 0, start, 0
    resumed: dict[str, Any] = {}  # client id -> filled at a takeover
    parts: dict[str, Any] = {}
    while done < STEPS:
        worker = await register_worker(conn, f"{name}-{takeovers}")
        async with harness(db_url, worker, now) as h:
            await h.sync()
            if takeovers:  # the adopter holds what was filled, and rests the rest
                again = await partly_filled(h, bot)
                assert again == parts, (again, parts)
            since = 0
            while done < STEPS:
                await h.candles(1)
                done, since = done + 1, since + 1
                parts = await partly_filled(h, bot)
                if parts and since >= 10 and takeovers < TAKEOVERS:
                    if seen is not None:
                        await seen(h, parts)
                    break
            now = h.now
        if done < STEPS:  # a takeover between two partial fills (the lease passes on)
            await conn.execute("select public.release_bot_leases(%s)", (worker,))
            takeovers += 1
            resumed.update(parts)
    assert takeovers == TAKEOVERS, "orders were taken over partly filled"
    assert await bot_status(conn, bot) == ("running", None)

    # the orders taken over partly filled filled further under the adopting worker
    grew = await (
        await conn.execute(
            "select client_order_id, filled from public.orders where client_order_id = any(%s)",
            (list(resumed),),
        )
    ).fetchall()
    assert any(filled > resumed[cid] for cid, filled in grew), (grew, resumed)


async def test_a_takeover_between_partial_fills_changes_nothing(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "1000")

    # the same bot without a fault
    reference = await create_bot(conn, alice, name="reference", **SETTINGS)
    w0 = await register_worker(conn, "partial-reference")
    async with harness(db_url, w0, START) as h:
        await h.sync()
        await h.candles(STEPS)
    assert await bot_status(conn, reference) == ("running", None)
    await conn.execute("update public.bots set status = 'stopped' where id = %s", (reference,))
    await conn.execute("select public.release_bot_leases(%s)", (w0,))

    bot = await create_bot(conn, alice, name="taken over", **SETTINGS)
    await taken_over(conn, db_url, bot, START, "partial")

    expected, got = await outcome(conn, reference), await outcome(conn, bot)
    assert len(expected["trades"]) >= 5
    assert got == expected
