"""Limit orders end to end: a paper bot with limit entries (and exits) makes the trades its
backtest predicts (the paper exchange and the backtester fill a limit order by the same
rule), records its equity on every candle it holds a position, and notifies fills to an
owner who opted in; a worker that takes the bot over with a limit order resting goes on
making the same trades; an owner who closes the position now cancels the bot's resting
limit exit first.

The backtest is the engine's over the candles the bot saw, with the decisions before the
bot's first candle removed (both start flat with nothing resting; a limit order resting
from before would otherwise make them differ), and the market's tick (the exchange rounds
the bot's limit prices)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import pytest

from tests.integration.test_backtest_parity import FEE, PARAMS, Fill, assert_same_trades, iso
from tests.support.bots import (
    CANDLES,
    bot_status,
    create_bot,
    grant_credits,
    harness,
    register_worker,
    subscribe,
)
from tests.support.db import User, request_as
from worker.backtest import load_csv
from worker.backtest.api import trade_rows
from worker.backtest.engine import Settings, simulate
from worker.bots.markets import paper_rules
from worker.strategies.registry import get_strategy

FIVE_MIN = timedelta(minutes=5)
START = datetime(2018, 1, 12, 6, tzinfo=UTC)
STEPS = 900

CASES = {
    "limit-entries": {"entry_order_type": "limit", "entry_timeout": 2},
    "limit-both-requote": {
        "entry_order_type": "limit",
        "exit_order_type": "limit",
        "entry_timeout": 3,
        "exit_timeout": 2,
        "timeout_action": "requote",
    },
    # exit_timeout_count: the second timeout of a position's limit exit exits at market
    "limit-exits-give-up": {
        "entry_order_type": "limit",
        "exit_order_type": "limit",
        "entry_timeout": 2,
        "exit_timeout": 1,
        "timeout_action": "requote",
        "exit_timeout_count": 2,
    },
    # long and short: limit short entries sell above the close; market exits reverse
    "limit-entries-shorts": {
        "entry_order_type": "limit",
        "entry_timeout": 2,
        "timeout_action": "requote",
        "allow_short": True,
    },
    # long and short: a short's limit exit buys back below the close
    "limit-both-shorts": {
        "entry_order_type": "limit",
        "exit_order_type": "limit",
        "entry_timeout": 3,
        "exit_timeout": 2,
        "allow_short": True,
    },
}


def backtest(case: dict[str, Any], offset: Decimal) -> list[dict[str, Any]]:
    series = load_csv(CANDLES / "ETH_BTC-5m.csv")
    t = series.candles.time
    last_open = START + FIVE_MIN * (STEPS - 1)
    c = series.candles.slice(0, int((t <= int(last_open.timestamp() * 1000)).sum()))
    first = int(np.searchsorted(c.time, int(START.timestamp() * 1000)))
    strategy = get_strategy("sma_cross")
    sig = strategy.signal_grid(c, [strategy.validate(PARAMS)])
    for flags in (sig.enter_long, sig.exit_long, sig.enter_short, sig.exit_short):
        flags[:, :first] = False  # the bot's first decision is on the candle opening at START
    tick = paper_rules("binance").market("ETH/BTC").price_precision
    settings = Settings(
        fee=float(FEE),
        entry_order=case.get("entry_order_type", "market"),
        exit_order=case.get("exit_order_type", "market"),
        limit_offset=float(offset) / 100,
        entry_timeout=case.get("entry_timeout", 1),
        exit_timeout=case.get("exit_timeout", 1),
        timeout_action=case.get("timeout_action", "cancel"),
        price_tick=None if tick is None else float(tick),
        shorts=bool(case.get("allow_short")),
        exit_timeout_count=case.get("exit_timeout_count", 0),
    )
    return trade_rows(simulate(c, sig, settings).trades, c)


@pytest.mark.parametrize("name", list(CASES))
async def test_a_paper_bot_with_limit_orders_makes_the_backtests_trades(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, name: str
) -> None:
    case = CASES[name]
    alice = users["alice"]
    await grant_credits(conn, alice, "1000")
    await conn.execute(
        "update public.profiles set preferences = '{\"notify_fills\": true}' where id = %s",
        (alice.id,),
    )
    offset = Decimal("0.05")  # percent of the deciding close
    bot = await create_bot(
        conn,
        alice,
        parameters=PARAMS,
        initial_balance="10",
        stake_amount="0.1",
        metadata={"paper_fee": str(FEE)},
        limit_offset=str(offset),
        **case,
    )
    # Halfway, with a limit order resting, another worker takes the bot over: it rebuilds
    # the paper account, places the order again and times it out by the same candles.
    first = await register_worker(conn, f"limits-{name}-1")
    done = 0
    async with harness(db_url, first, START) as h:
        await h.sync()
        await h.candles(STEPS // 2)
        done = STEPS // 2
        while not any(f.price is not None for f in h.runner.bots[bot].in_flight.values()):
            await h.candles(1)
            done += 1
        now = h.now
    assert done < STEPS - 50
    await conn.execute("select public.release_bot_leases(%s)", (first,))
    second = await register_worker(conn, f"limits-{name}-2")
    async with harness(db_url, second, now) as h:
        await h.sync()
        # the limit order again, with its timeout
        assert any(f.price is not None for f in h.runner.bots[bot].in_flight.values())
        await h.candles(STEPS - done)

    status, error = await bot_status(conn, bot)
    assert status == "running", error
    rows = await (
        await conn.execute(
            "select direction, entry_time, price, exit_time, exit_price, order_type from trades "
            "where bot_id = %s order by entry_time",
            (bot,),
        )
    ).fetchall()
    fills = [
        Fill(d, iso(et), p, None if xt is None else iso(xt), xp) for d, et, p, xt, xp, _ in rows
    ]
    expected = backtest(case, offset)
    assert len(expected) >= 10
    if case.get("allow_short"):
        assert {t["side"] for t in expected} == {"long", "short"}
    assert_same_trades(fills, expected)
    assert {r[5] for r in rows} == {"limit"}

    # limit orders rested, some timed out and were cancelled
    counts = {
        (kind, st): n
        for kind, st, n in await (
            await conn.execute(
                "select order_type, status, count(*) from orders where bot_id = %s "
                "group by order_type, status",
                (bot,),
            )
        ).fetchall()
    }
    closed_trades = sum(1 for f in fills if f.exit_time is not None)
    market_exits = counts.get(("market", "closed"), 0)  # exit_timeout_count gave up
    limit_fills = len(fills) + (closed_trades - market_exits if "exit_order_type" in case else 0)
    assert counts[("limit", "closed")] == limit_fills
    if case.get("exit_timeout_count"):
        assert market_exits > 0
        (gave_up,) = await (
            await conn.execute(
                "select count(*) from bot_logs where bot_id = %s"
                " and context ->> 'action' = 'exit_timeout_market'",
                (bot,),
            )
        ).fetchone() or (0,)
        assert gave_up == market_exits
    assert counts.get(("limit", "canceled"), 0) > 0

    # one fill notification per filled order, to the owner who opted in
    (notes,) = await (
        await conn.execute(
            "select count(*) from notifications where user_id = %s and kind = 'fill'",
            (alice.id,),
        )
    ).fetchone() or (0,)
    assert notes == len(fills) + closed_trades

    # the equity row: the bot's last candle, realized P&L of its closed trades
    equity = await (
        await conn.execute(
            "select e.candle_at, e.realized_pnl, e.unrealized_pnl, e.equity, e.position_amount,"
            " (select coalesce(sum(profit), 0) from trades t where t.bot_id = e.bot_id"
            "   and t.status = 'closed')"
            " from bot_equity e where e.bot_id = %s",
            (bot,),
        )
    ).fetchone()
    assert equity is not None
    candle_at, realized, unrealized, total, amount, profit = equity
    cent = Decimal("1e-10")  # each value is stored to 12 places
    assert abs(realized - profit) < cent
    assert abs(total - (Decimal(10) + realized + unrealized)) < cent
    open_trade = fills[-1].exit_time is None
    assert (amount != 0) is open_trade
    if open_trade:
        assert candle_at == START + FIVE_MIN * (STEPS - 1)


async def test_closing_a_position_now_cancels_the_bots_resting_limit_exit(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await subscribe(conn, alice, credits_per_trade="0.5")
    await grant_credits(conn, alice, "10")
    bot = await create_bot(
        conn,
        alice,
        exit_order_type="limit",
        limit_offset="10",  # far above the price: it rests
        exit_timeout=1000,
        timeout_action="requote",
    )
    worker = await register_worker(conn, "limits-close")
    async with harness(db_url, worker) as h:
        await h.sync()
        state = h.runner.bots[bot]
        for _ in range(300):
            await h.candles(1)
            if any(f.purpose == "exit" and f.price is not None for f in state.in_flight.values()):
                break
        else:
            raise AssertionError("the bot never placed its limit exit")
        assert state.position is not None
        trade = str(state.position.trade_id)
        async with request_as(conn, alice) as cur:
            await cur.execute("select * from public.close_position(%s, true)", (trade,))
        await h.runner.requests.run()
    rows = await (
        await conn.execute(
            "select reason, order_type, status from public.orders where bot_id = %s "
            "and reason in ('signal', 'manual_close') and side = 'sell' order by created_at",
            (bot,),
        )
    ).fetchall()
    assert rows[-2:] == [("signal", "limit", "canceled"), ("manual_close", "market", "closed")]
    status, reason = await (
        await conn.execute("select status, exit_reason from public.trades where id = %s", (trade,))
    ).fetchone() or (None, None)
    assert (status, reason) == ("closed", "manual_close")


async def test_paper_partial_fills_open_and_close_positions_in_part(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    """With metadata.paper_volume_share a paper limit order fills at most that share of each
    candle's volume: an entry that timed out partly filled opens what filled, an exit that
    timed out partly filled closes that part and leaves the rest open."""
    alice = users["alice"]
    await grant_credits(conn, alice, "1000")
    bot = await create_bot(
        conn,
        alice,
        parameters=PARAMS,
        initial_balance="10",
        stake_amount="0.5",
        metadata={"paper_fee": str(FEE), "paper_volume_share": "0.0005"},
        entry_order_type="limit",
        exit_order_type="limit",
        limit_offset="0.02",
        entry_timeout=2,
        exit_timeout=2,
        timeout_action="requote",
    )
    worker = await register_worker(conn, "partial-fills")
    async with harness(db_url, worker, START) as h:
        await h.sync()
        await h.candles(500)
    status, error = await bot_status(conn, bot)
    assert status == "running", error
    entries = await (
        await conn.execute(
            # an exit in part splits the trade: its parts add up to the entry's fill
            "select o.amount, o.filled, sum(t.amount) from orders o join trades t"
            " on t.entry_order_id = o.id where o.bot_id = %s and o.status = 'canceled'"
            " group by o.id",
            (bot,),
        )
    ).fetchall()
    assert entries, "an entry timed out partly filled"
    # the trade holds what filled, and what its re-quoted rest added (requote)
    assert all(0 < filled < ordered and traded >= filled for ordered, filled, traded in entries), (
        entries
    )
    (parts,) = await (
        await conn.execute(
            "select count(*) from bot_logs where bot_id = %s"
            " and context ->> 'action' = 'exit_partial'",
            (bot,),
        )
    ).fetchone() or (0,)
    assert parts > 0, "an exit timed out partly filled"


SHARE = Decimal("0.0002")  # of a candle's volume a resting paper limit order fills at most


def backtest_partial(offset: Decimal, stake: Decimal) -> list[dict[str, Any]]:
    """The backtest of ``test_a_partly_filled_entry_requotes_its_rest_as_its_backtest``:
    limit entries filling at most ``SHARE`` of each candle's volume, rests re-quoted."""
    series = load_csv(CANDLES / "ETH_BTC-5m.csv")
    t = series.candles.time
    last_open = START + FIVE_MIN * (STEPS - 1)
    c = series.candles.slice(0, int((t <= int(last_open.timestamp() * 1000)).sum()))
    first = int(np.searchsorted(c.time, int(START.timestamp() * 1000)))
    strategy = get_strategy("sma_cross")
    sig = strategy.signal_grid(c, [strategy.validate(PARAMS)])
    for flags in (sig.enter_long, sig.exit_long, sig.enter_short, sig.exit_short):
        flags[:, :first] = False
    market = paper_rules("binance").market("ETH/BTC")
    assert market.price_precision and market.amount_precision and market.min_cost
    settings = Settings(
        fee=float(FEE),
        stake_amount=float(stake),
        entry_order="limit",
        limit_offset=float(offset) / 100,
        entry_timeout=2,
        timeout_action="requote",
        price_tick=float(market.price_precision),
        amount_step=float(market.amount_precision),
        min_cost=float(market.min_cost),
        volume_share=float(SHARE),
    )
    return trade_rows(simulate(c, sig, settings).trades, c)


async def test_a_partly_filled_entry_requotes_its_rest_as_its_backtest(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    """With ``timeout_action = 'requote'`` an entry that timed out partly filled opens what
    filled and re-quotes the rest at the new price; the rest's fills add to the trade (its
    entry price the average of its fills). The paper bot (partial fills by volume share,
    taken over halfway with a rest resting) makes the trades of its backtest."""
    alice = users["alice"]
    await grant_credits(conn, alice, "1000")
    offset, stake = Decimal("0.05"), Decimal("0.1")
    bot = await create_bot(
        conn,
        alice,
        parameters=PARAMS,
        initial_balance="10",
        stake_amount=str(stake),
        metadata={"paper_fee": str(FEE), "paper_volume_share": str(SHARE)},
        limit_offset=str(offset),
        entry_order_type="limit",
        entry_timeout=2,
        timeout_action="requote",
    )
    first = await register_worker(conn, "partial-requote-1")
    async with harness(db_url, first, START) as h:
        await h.sync()
        await h.candles(STEPS // 2)
        done = STEPS // 2
        # a takeover while a rest of an entry rests (re-quoted on the last close: what of
        # it a paper account filled before the takeover is not in the database)
        while done < STEPS - 50 and not any(
            f.adds and f.placed_at == h.runner.bots[bot].last_candle_at
            for f in h.runner.bots[bot].in_flight.values()
        ):
            await h.candles(1)
            done += 1
        now = h.now
    assert done < STEPS - 50
    await conn.execute("select public.release_bot_leases(%s)", (first,))
    second = await register_worker(conn, "partial-requote-2")
    async with harness(db_url, second, now) as h:
        await h.sync()
        assert any(f.adds for f in h.runner.bots[bot].in_flight.values())
        await h.candles(STEPS - done)

    status, error = await bot_status(conn, bot)
    assert status == "running", error
    rows = await (
        await conn.execute(
            "select direction, entry_time, price, exit_time, exit_price from trades"
            " where bot_id = %s order by entry_time",
            (bot,),
        )
    ).fetchall()
    fills = [Fill(d, iso(et), p, None if xt is None else iso(xt), xp) for d, et, p, xt, xp in rows]
    expected = backtest_partial(offset, stake)
    assert len(expected) >= 10
    assert_same_trades(fills, expected)
    (added,) = await (
        await conn.execute(
            "select count(*) from bot_logs where bot_id = %s"
            " and context ->> 'action' = 'entry_added'",
            (bot,),
        )
    ).fetchone() or (0,)
    assert added > 0, "a rest filled and added to its trade"
