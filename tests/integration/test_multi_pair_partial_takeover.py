"""A multi-pair paper bot taken over while limit orders of its pairs are partly filled
(``metadata.paper_volume_share``): the adopting worker rebuilds every pair's position and
order in flight on the one paper account, books what each order filled so far and rests
only the rest. A run taken over between partial fills (several times) ends with exactly
the orders, trades, balances and equity of the same bot run on the same candles without a
takeover."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from tests.integration.test_paper_partial_takeover import STEPS, taken_over
from tests.support.bots import bot_status, create_bot, grant_credits, harness, register_worker
from tests.support.db import User

PAIRS = ["ETH/BTC", "LTC/BTC", "XMR/BTC"]
START = datetime(2018, 1, 14, 0, 0, tzinfo=UTC)

SETTINGS: dict[str, Any] = {
    "trading_pair": PAIRS[0],
    "pairs": PAIRS,
    "parameters": {"fast": 10, "slow": 20},
    "initial_balance": "1",
    "stake_amount": "0.1",
    "max_open_trades": 2,
    "metadata": {"paper_fee": "0.002", "paper_volume_share": "0.0005"},
    "entry_order_type": "limit",
    "exit_order_type": "limit",
    "limit_offset": "0.02",
    "entry_timeout": 3,
    "exit_timeout": 3,
    "timeout_action": "requote",
}

ORDERS = """
select symbol, side, order_type, amount, price, filled, average_price, fee, status, reason, decided_at
  from public.orders where bot_id = %s order by decided_at, symbol, side, reason, amount, status
"""
TRADES = """
select trading_pair, side, direction, amount, price, exit_price, fee, profit, status, exit_reason,
       entry_time, exit_time, decided_at
  from public.trades where bot_id = %s
 order by entry_time, trading_pair, exit_time nulls last, amount
"""
BOT = """
select b.total_trades, b.winning_trades, b.profit, b.current_balance, e.position_amount,
       e.unrealized_pnl, e.realized_pnl, e.equity
  from public.bots b left join public.bot_equity e on e.bot_id = b.id where b.id = %s
"""
SKIPPED = """
select context ->> 'pair', context ->> 'candle' from public.bot_logs
 where bot_id = %s and context ->> 'action' = 'entry_skipped' order by 2, 1
"""


async def outcome(conn: psycopg.AsyncConnection[Any], bot: str) -> dict[str, list[Any]]:
    return {
        name: await (await conn.execute(query, (bot,))).fetchall()  # type: ignore[arg-type]
        for name, query in (
            ("orders", ORDERS),
            ("trades", TRADES),
            ("bot", BOT),
            ("skipped", SKIPPED),
        )
    }


async def test_a_multi_pair_bot_taken_over_between_partial_fills_changes_nothing(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "1000")

    # the same bot without a fault
    reference = await create_bot(conn, alice, name="reference", **SETTINGS)
    w0 = await register_worker(conn, "multi-partial-reference")
    async with harness(db_url, w0, START) as h:
        await h.sync()
        await h.candles(STEPS)
    ref_status = await bot_status(conn, reference)
    assert ref_status == ("running", None), ref_status
    await conn.execute("update public.bots set status = 'stopped' where id = %s", (reference,))
    await conn.execute("select public.release_bot_leases(%s)", (w0,))

    bot = await create_bot(conn, alice, name="taken over", **SETTINGS)
    symbols: set[str] = set()  # the pairs of the orders taken over partly filled

    async def seen(h: Any, parts: dict[str, Any]) -> None:
        orders = await h.runner.bots[bot].exchange.fetch_open_orders()
        symbols.update(o.symbol for o in orders if o.client_order_id in parts)

    await taken_over(conn, db_url, bot, START, "multi-partial", seen)
    assert len(symbols) >= 2, f"orders of several pairs were taken over partly filled: {symbols}"

    expected, got = await outcome(conn, reference), await outcome(conn, bot)
    assert len({t[0] for t in expected["trades"]}) >= 2, "trades on several pairs"
    assert len(expected["trades"]) >= 5
    for name in expected:
        assert got[name] == expected[name], name
