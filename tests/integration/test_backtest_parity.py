"""Parity: a backtest predicts what the bot does.

The same recorded candles (ETH/BTC 5m) go through

- the bot engine's decision path (a paper bot run by the real ``BotRunner`` over a stepped
  replay clock, trades read back from the database) — long only, and long and short (an
  ``allow_short`` bot on a paper margin account);
- the paper exchange driven candle by candle by the strategy's decision on the window of
  candles closed so far (``Signals.at(-1)``, as a live bot reads it) — long only, and long
  and short (a short sells inventory and buys it back: the same fills as a margin short);

and the trade lists (entry and exit times, sides, fill prices to the market's tick) must
equal the backtest's. Engine semantics that matter here: decisions on a close fill at the
next open; a tie of the averages is not a cross; a reversal closes and re-opens on the
same fill; a trade still open at the end is closed at the last close by the backtest
(``exit_reason = "end"``) and still open for the bot.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import psycopg
import pytest

from tests.support.bots import (
    CANDLES,
    bot_status,
    create_bot,
    grant_credits,
    harness,
    register_worker,
)
from tests.support.db import User
from worker.backtest import load_csv, run_backtest
from worker.bots.markets import paper_rules
from worker.candles import Candle
from worker.exchanges import PaperExchange
from worker.exchanges.models import OrderStatus
from worker.strategies.registry import compute_signals

PAIR, TIMEFRAME = "ETH/BTC", "5m"
PARAMS = {"fast": 10, "slow": 20}
FEE = Decimal("0.002")
WINDOW = 400  # what the bot engine's market data keeps per market
FIVE_MIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Fill:
    side: str
    entry_time: str
    entry_price: Decimal
    exit_time: str | None
    exit_price: Decimal | None


def tick() -> Decimal:
    step = paper_rules("binance").market(PAIR).price_precision
    assert step is not None
    return step


def same_price(a: Decimal | float | None, b: Decimal | float | None) -> bool:
    """Equal once rounded to the market's price precision (half a tick apart at most)."""
    if a is None or b is None:
        return a is b
    return abs(Decimal(str(a)) - Decimal(str(b))) <= tick() / 2


def assert_same_trades(ours: list[Fill], backtest: list[dict[str, Any]]) -> None:
    assert len(ours) == len(backtest), (len(ours), len(backtest))
    for i, (got, want) in enumerate(zip(ours, backtest, strict=True)):
        where = f"trade {i}: {got} vs {want}"
        assert got.side == want["side"], where
        assert got.entry_time == want["entry_time"], where
        assert same_price(got.entry_price, want["entry_price"]), where
        if want["exit_reason"] == "end":
            assert got.exit_time is None, where  # the bot's trade is still open
        else:
            assert got.exit_time == want["exit_time"], where
            assert same_price(got.exit_price, want["exit_price"]), where


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- through the paper exchange, decision by decision ----------------------------------------


async def replay_on_paper(shorts: bool, slippage: Decimal) -> tuple[list[Fill], int]:
    """Every candle of the file through ``PaperExchange``; returns the trades and the count
    of candles replayed."""
    series = load_csv(CANDLES / "ETH_BTC-5m.csv")
    c = series.candles
    ex = PaperExchange(
        "binance",
        {"BTC": Decimal(100), "ETH": Decimal(100_000)},
        taker_fee=FEE,
        maker_fee=FEE,
        slippage=slippage,
        history=0,
        rules=paper_rules("binance"),
    )
    stake = Decimal("0.1")
    side = 0  # +1 long, -1 short, 0 flat
    amount = Decimal(0)
    pending: list[
        tuple[str, int]
    ] = []  # client order ids placed at the last close, +1 open / 0 close
    fills: list[Fill] = []
    open_trade: dict[str, Any] | None = None

    for i in range(len(c)):
        t = datetime.fromtimestamp(int(c.time[i]) / 1000, tz=UTC)
        candle = Candle(
            t,
            *(
                Decimal(repr(float(x)))
                for x in (c.open[i], c.high[i], c.low[i], c.close[i], c.volume[i])
            ),
        )
        for order in ex.on_candle(PAIR, TIMEFRAME, candle):
            assert order.status is OrderStatus.CLOSED, order
            what = dict(pending)[order.client_order_id or ""]
            price = order.average
            assert price is not None
            if what == 0:  # a close
                assert open_trade is not None
                fills.append(
                    Fill(open_trade["side"], open_trade["time"], open_trade["price"], iso(t), price)
                )
                open_trade = None
            else:
                open_trade = {
                    "side": "long" if order.side == "buy" else "short",
                    "time": iso(t),
                    "price": price,
                }
        pending = []
        if i == len(c) - 1:
            break
        lo = max(0, i + 1 - WINDOW)
        d = compute_signals("sma_cross", c.slice(lo, i + 1), PARAMS).at(-1)
        # conflicting decisions cancel, as in the backtester and the bot engine
        el, xl = d["enter_long"] and not d["exit_long"], d["exit_long"] and not d["enter_long"]
        es, xs = d["enter_short"] and not d["exit_short"], d["exit_short"] and not d["enter_short"]
        if shorts:
            el, es = el and not es, es and not el
        else:
            es = xs = False
        orders: list[tuple[str, Decimal, int]] = []
        if side > 0 and (xl or es):
            orders.append(("sell", amount, 0))
            side = 0
        elif side < 0 and (xs or el):
            orders.append(("buy", amount, 0))
            side = 0
        if side == 0 and (el or es):
            side = 1 if el else -1
            price = candle.close
            amount = ex.amount_to_precision(PAIR, stake / (1 + FEE) / price)
            orders.append(("buy" if el else "sell", amount, 1))
        for n, (order_side, qty, what) in enumerate(orders):
            cid = f"parity-{i}-{n}"
            await ex.create_order(PAIR, order_side, "market", qty, client_order_id=cid)  # type: ignore[arg-type]
            pending.append((cid, what))
    if open_trade is not None:
        fills.append(Fill(open_trade["side"], open_trade["time"], open_trade["price"], None, None))
    return fills, len(c)


@pytest.mark.parametrize("shorts", [False, True], ids=["long-only", "long-and-short"])
async def test_the_paper_exchange_fed_decision_by_decision_makes_the_backtests_trades(
    shorts: bool,
) -> None:
    slippage = Decimal("0.0005")
    fills, n = await replay_on_paper(shorts, slippage)
    series = load_csv(CANDLES / "ETH_BTC-5m.csv")
    assert n == len(series.candles)
    result = run_backtest(
        series,
        "sma_cross",
        PARAMS,
        {"fee": float(FEE), "slippage": float(slippage), "shorts": shorts},
    )
    assert len(result.trades) > 100
    if shorts:
        assert {t["side"] for t in result.trades} == {"long", "short"}
    assert_same_trades(fills, result.trades)


# --- through the bot engine ------------------------------------------------------------------


@pytest.mark.parametrize("shorts", [False, True], ids=["long-only", "long-and-short"])
async def test_a_paper_bot_makes_the_backtests_trades(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, shorts: bool
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "1000")
    series = load_csv(CANDLES / "ETH_BTC-5m.csv")
    settings = {"fee": float(FEE), "shorts": shorts}
    full = run_backtest(series, "sma_cross", PARAMS, settings)
    # Start the bot at the open where one of the backtest's trades exited. Long only, the
    # backtest is flat there; with shorts it reverses there, on a decision the bot never
    # saw, so the bot's first trade is the backtest's next one.
    start_iso = next(
        t["exit_time"] for t in full.trades if t["exit_time"] >= "2018-01-12T00:00:00Z"
    )
    start = datetime.fromisoformat(start_iso.replace("Z", "+00:00"))
    steps = 1200

    bot = await create_bot(
        conn,
        alice,
        parameters=PARAMS,
        initial_balance="10",
        stake_amount="0.1",
        allow_short=shorts,
        metadata={"paper_fee": str(FEE)},
    )
    # With shorts, other workers take the bot over twice: once with a reversal's exit and
    # entry in flight (decided on the close just persisted, filling on the next open), once
    # in the middle of a trade. Each rebuilds the paper account, short or long, from the
    # database and must go on making the same trades.
    splits = [steps]
    if shorts:
        fill_at = next(
            datetime.fromisoformat(t["entry_time"].replace("Z", "+00:00"))
            for t in full.trades
            if t["entry_time"] >= iso(start + FIVE_MIN * 300)
        )
        in_flight = int((fill_at - start) / FIVE_MIN)
        splits = [in_flight, 137, steps - in_flight - 137]
    now, previous = start, None
    for i, n in enumerate(splits):
        if previous is not None:
            await conn.execute("select public.release_bot_leases(%s)", (previous,))
        worker = await register_worker(conn, f"parity-{uuid.uuid4().hex[:6]}")
        async with harness(db_url, worker, now) as h:
            await h.sync()
            assert bot in h.runner.bots
            if shorts and i == 1:
                # the reversal's exit and entry, placed again
                assert sorted(f.purpose for f in h.runner.bots[bot].in_flight.values()) == [
                    "entry",
                    "exit",
                ]
            await h.candles(n)
            now = h.now
        previous = worker
    status, error = await bot_status(conn, bot)
    assert status == "running", error

    cur = await conn.execute(
        "select direction, entry_time, price, exit_time, exit_price, status from trades "
        "where bot_id = %s order by entry_time",
        (bot,),
    )
    fills = [
        Fill(d, iso(et), p, None if xt is None else iso(xt), xp)
        for d, et, p, xt, xp, _ in await cur.fetchall()
    ]

    # The backtest over the same candles: up to the last one the bot saw closed.
    last_open = start + FIVE_MIN * (steps - 1)
    t = series.candles.time
    end = int((t <= int(last_open.timestamp() * 1000)).sum())
    result = run_backtest(series.candles.slice(0, end), "sma_cross", PARAMS, settings)
    expected = [
        tr
        for tr in result.trades
        if tr["entry_time"] > start_iso or (not shorts and tr["entry_time"] == start_iso)
    ]
    assert len(expected) >= 10
    if shorts:
        assert {f.side for f in fills} == {"long", "short"}
    assert_same_trades(fills, expected)
    if shorts:
        # Reversals: every closed trade but the last is followed by one entered on its exit.
        for a, b in pairwise(fills):
            assert a.exit_time == b.entry_time and a.side != b.side
        closed = await (
            await conn.execute(
                "select direction, amount, price, exit_price, fee, profit from trades "
                "where bot_id = %s and status = 'closed' and direction = 'short'",
                (bot,),
            )
        ).fetchall()
        assert closed
        for _, amount, price, exit_price, fee, profit in closed:
            # short P&L: sold at entry, bought back at exit, both fills' fees paid
            assert profit == amount * (price - exit_price) - fee


# --- every built-in strategy, with stops and sizing, through the bot engine ------------------

RULES = {
    "entry_long": {"left": {"indicator": "rsi", "period": 14}, "op": "crosses_above", "right": 35},
    "exit_long": {
        "left": {"indicator": "close"},
        "op": "crosses_above",
        "right": {"indicator": "bb_upper", "period": 20},
    },
    "entry_short": {"left": {"indicator": "rsi", "period": 14}, "op": "crosses_below", "right": 65},
    "exit_short": {
        "left": {"indicator": "close"},
        "op": "crosses_below",
        "right": {"indicator": "bb_lower", "period": 20},
    },
}
# parameters with a 1 % stop-loss and a take-profit that, over the first STEPS candles of
# ETH/BTC 5m, make trades leave on their signal, their stop and their target
STRATEGIES: dict[str, dict[str, Any]] = {
    "sma_cross": {"fast": 10, "slow": 20, "take_profit": 0.03},
    "ema_cross": {"fast": 10, "slow": 20, "take_profit": 0.04},
    "rsi": {"period": 14, "oversold": 35, "overbought": 65, "take_profit": 0.04},
    "macd": {"take_profit": 0.01},
    "rsi_macd": {"oversold": 40, "overbought": 60, "take_profit": 0.01},
    "bollinger": {"period": 20, "std": 2.0, "take_profit": 0.01},
    "rules": {**RULES, "take_profit": 0.03},
}
STEPS = 600
SLIPPAGE = Decimal("0.0005")
RISK = Decimal("0.25")  # % of equity lost at the stop: a 2.5 BTC stake on 10 BTC


@dataclass(frozen=True)
class Booked:
    fill: Fill
    amount: Decimal
    profit: Decimal | None
    reason: str | None


def same_money(a: Decimal | None, b: float) -> bool:
    """Equal to a float's precision (the backtester computes in floats, the bot in decimals)."""
    return a is not None and abs(float(a) - b) <= 1e-12 * max(1.0, abs(b))


@pytest.mark.parametrize(
    "shorts", [False, True], ids=["long-only-stake-sizing", "long-and-short-risk-sizing"]
)
@pytest.mark.parametrize("strategy", list(STRATEGIES))
async def test_every_strategy_trades_on_a_paper_bot_as_in_its_backtest(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    strategy: str,
    shorts: bool,
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "1000")
    params = {**STRATEGIES[strategy], "stop_loss": 0.01}
    series = load_csv(CANDLES / "ETH_BTC-5m.csv")
    market = paper_rules("binance").market(PAIR)
    assert market.amount_precision is not None and market.price_precision is not None
    # The bot starts with the file: flat, with the same balance and history as the backtest.
    start = datetime.fromtimestamp(int(series.candles.time[0]) / 1000, tz=UTC)
    sizing = {"sizing": "risk"} if shorts else {}
    bot = await create_bot(
        conn,
        alice,
        strategy=strategy,
        parameters=params,
        initial_balance="10",
        stake_amount="0.1",
        risk_percentage=str(RISK),
        allow_short=shorts,
        metadata={"paper_fee": str(FEE), "paper_slippage": str(SLIPPAGE), **sizing},
    )
    worker = await register_worker(conn, f"parity-{uuid.uuid4().hex[:6]}")
    async with harness(db_url, worker, start) as h:
        await h.sync()
        assert bot in h.runner.bots
        await h.candles(STEPS)
    status, error = await bot_status(conn, bot)
    assert status == "running", error

    cur = await conn.execute(
        "select direction, entry_time, price, exit_time, exit_price, amount, profit, exit_reason "
        "from trades where bot_id = %s order by entry_time",
        (bot,),
    )
    booked = [
        Booked(Fill(d, iso(et), p, None if xt is None else iso(xt), xp), a, pnl, r)
        for d, et, p, xt, xp, a, pnl, r in await cur.fetchall()
    ]
    settings = {
        "cash": 10.0,
        "fee": float(FEE),
        "slippage": float(SLIPPAGE),
        "shorts": shorts,
        "amount_step": float(market.amount_precision),
        "price_tick": float(market.price_precision),
        **({"risk_percentage": float(RISK)} if shorts else {"stake_amount": 0.1}),
    }
    result = run_backtest(series.candles.slice(0, STEPS), strategy, params, settings)
    expected = result.trades
    reasons = {t["exit_reason"] for t in expected}
    assert {"signal", "stop_loss", "take_profit"} <= reasons, reasons
    if shorts:
        assert {t["side"] for t in expected} == {"long", "short"}
        assert max(t["amount"] for t in expected) > 10  # risk-sized: far above the 0.1 stake
    assert_same_trades([b.fill for b in booked], expected)
    for i, (got, want) in enumerate(zip(booked, expected, strict=True)):
        where = f"trade {i}: {got} vs {want}"
        assert float(got.amount) == want["amount"], where
        assert abs(float(got.fill.entry_price) - want["entry_price"]) <= 1e-15, where
        if want["exit_reason"] != "end":
            assert got.reason == want["exit_reason"], where
            assert got.fill.exit_price is not None, where
            assert abs(float(got.fill.exit_price) - want["exit_price"]) <= 1e-15, where
            assert same_money(got.profit, want["pnl"]), where
