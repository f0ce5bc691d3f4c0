"""A paper bot whose balance sits at the bound of its column (bots.current_balance is
numeric(20, 8)) takes its profits without failing the write its worker shares with other
users' bots: those trade exactly as they do without it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from tests.support.bots import create_bot, grant_credits, harness, register_worker
from tests.support.db import User

BOUND = Decimal("999999999999.99999999")
TRADES = (
    "select entry_time, exit_time, exit_reason, amount, price, exit_price, profit "
    "from public.trades where bot_id = %s order by entry_time"
)


async def rows(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> list[tuple[Any, ...]]:
    return await (await conn.execute(query, args)).fetchall()


async def test_a_bot_at_its_balance_bound_leaves_other_bots_trading_as_without_it(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice, bob = users["alice"], users["bob"]
    await grant_credits(conn, alice, "100")
    await grant_credits(conn, bob, "100")
    config: dict[str, Any] = {"stop_loss": 2, "take_profit": 3}

    # The reference: alice's bot trading on its own.
    alone = await create_bot(conn, alice, name="alone", **config)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(200)
    await conn.execute("update public.bots set status = 'stopped' where id = %s", (alone,))

    # The same bot again, now sharing its worker with bob's bot that holds all it can.
    alongside = await create_bot(conn, alice, name="alongside", **config)
    rich = await create_bot(conn, bob, name="rich", initial_balance=str(BOUND), **config)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(200)

    reference = await rows(conn, TRADES, alone)
    assert len([t for t in reference if t[1] is not None]) >= 3, reference
    assert await rows(conn, TRADES, alongside) == reference
    ((wins, balance, profit),) = await rows(
        conn, "select winning_trades, current_balance, profit from public.bots where id = %s", rich
    )
    assert wins >= 1
    assert balance == min(BOUND, BOUND + profit)
