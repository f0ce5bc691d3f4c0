"""Multi-pair backtests: one strategy on several pairs of one timeframe, with one balance.

The rules are the bot's (``worker.strategies.slots``): one quote balance for all pairs,
``max_open_trades`` positions at most across them, entries decided on the same close take
the free slots in the order of the pairs list (the others are skipped and counted), and
the stake is fixed (``stake_amount``) or unlimited (the available balance divided by the
free slots). The fill rules are the single-pair engine's and the paper exchange's, walked
candle by candle in ``Decimal`` as a running bot steps:

1. at a candle's open, orders decided at the previous close fill (buys at
   ``open * (1 + slippage)``, sells at ``open * (1 - slippage)``, a fee on each fill);
2. inside the candle a stop-loss or take-profit (fractions of the entry fill) closes the
   position at its level (at the open through a gap), the stop first; slippage applies to
   the stop only;
3. on the close, every pair's decision: exits first, then the entries, in the pairs' order.

Phases 1 and 2 run for every pair before any decision of that close, so a slot a stop
frees inside a candle is free for the entries decided on its close. An entry's amount is
``stake / (1 + fee) / close`` at its decision (the bot rounds it to the market's amount
precision as well). An entry the balance cannot pay at its fill price is rejected, as
the paper exchange rejects it (``skipped`` with reason ``rejected``). Long only:
multi-pair bots do not short. A trade still open after
the last candle is closed at the last close (``exit_reason = "end"``), as in ``run_backtest``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worker.candles import CandleSeries
from worker.strategies.registry import compute_signals
from worker.strategies.slots import allocate

ZERO = Decimal(0)
ONE = Decimal(1)


class MultiPairSettings(BaseModel):
    """How a multi-pair backtest trades."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cash: Decimal = Field(default=Decimal(10_000), gt=0, description="the bot's one balance")
    fee: Decimal = Field(default=Decimal("0.001"), ge=0, lt=Decimal("0.5"))
    slippage: Decimal = Field(default=ZERO, ge=0, lt=Decimal("0.5"))
    stake_amount: Decimal | None = Field(default=None, gt=0, description="None: unlimited")
    max_open_trades: int = Field(default=1, ge=1, le=100)
    stop_loss: Decimal | None = Field(default=None, gt=0, lt=1, description="fraction")
    take_profit: Decimal | None = Field(default=None, gt=0, description="fraction")


@dataclass(slots=True)
class _Open:
    entry_time: datetime
    entry_price: Decimal
    amount: Decimal
    cost: Decimal
    fee: Decimal


@dataclass(slots=True)
class MultiPairResult:
    trades: list[dict[str, Any]]  # in exit order, then entry order for those still open
    skipped: list[dict[str, Any]]  # entries not taken: time, pair, reason
    final_balance: Decimal
    pairs: list[str] = field(default_factory=list)


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_multi_pair(
    series: Mapping[str, CandleSeries],
    pairs: Sequence[str],
    strategy_name: str,
    params: Mapping[str, Any] | None,
    settings: MultiPairSettings | Mapping[str, Any] | None = None,
    *,
    start: datetime | None = None,
) -> MultiPairResult:
    """Backtest ``strategy_name`` on ``pairs`` (each in ``series``) with one balance; with
    ``start``, the first decision is taken on the candle opened then (the candles before it
    only warm the strategy up, as a bot started then). Raises ``ValueError`` naming a pair
    without candles or a timeframe that differs."""
    s = (
        settings
        if isinstance(settings, MultiPairSettings)
        else MultiPairSettings(**dict(settings or {}))
    )
    if not pairs:
        raise ValueError("a multi-pair backtest needs at least one pair")
    missing = [p for p in pairs if p not in series]
    if missing:
        raise ValueError(f"no candles for {', '.join(missing)}")
    if len({series[p].timeframe_ms for p in pairs}) > 1:
        raise ValueError("every pair of a multi-pair backtest needs the same timeframe")
    signals = {p: compute_signals(strategy_name, series[p].candles, params) for p in pairs}
    rows: dict[str, dict[int, int]] = {}  # pair -> open time (ms) -> candle index
    for p in pairs:
        rows[p] = {int(t): i for i, t in enumerate(series[p].candles.time)}
    times = sorted({t for p in pairs for t in rows[p]})

    cash = s.cash
    positions: dict[str, _Open] = {}
    pending: dict[str, tuple[str, Decimal, Decimal]] = {}  # pair -> (entry|exit, amount, reserved)
    trades: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    last_close: dict[str, tuple[datetime, Decimal]] = {}

    def close(pair: str, when: datetime, price: Decimal, reason: str) -> None:
        nonlocal cash
        pos = positions.pop(pair)
        value = pos.amount * price
        fee = value * s.fee
        cash += value - fee
        profit = value - fee - pos.cost - pos.fee
        trades.append(
            {
                "pair": pair,
                "side": "long",
                "entry_time": _iso(pos.entry_time),
                "entry_price": pos.entry_price,
                "exit_time": _iso(when),
                "exit_price": price,
                "amount": pos.amount,
                "profit": profit,
                "exit_reason": reason,
            }
        )

    for t in times:
        when = datetime.fromtimestamp(t / 1000, tz=UTC)
        # 1 and 2: fills at the open, then stops inside the candle, for every pair.
        for p in pairs:
            i = rows[p].get(t)
            if i is None:
                continue
            c = series[p].candles
            o, h, lo = _dec(c.open[i]), _dec(c.high[i]), _dec(c.low[i])
            last_close[p] = (when, _dec(c.close[i]))
            order = pending.pop(p, None)
            if order is not None and order[0] == "exit":
                close(p, when, o * (ONE - s.slippage), "signal")
            elif order is not None:
                _, amount, reserved = order
                price = o * (ONE + s.slippage)
                cost = amount * price
                fee = cost * s.fee
                cash += reserved
                if cash < cost + fee:  # the balance cannot pay the fill: rejected
                    skipped.append({"time": _iso(when), "pair": p, "reason": "rejected"})
                else:
                    cash -= cost + fee
                    positions[p] = _Open(when, price, amount, cost, fee)
            pos = positions.get(p)
            if pos is None:
                continue
            stop = None if s.stop_loss is None else pos.entry_price * (ONE - s.stop_loss)
            take = None if s.take_profit is None else pos.entry_price * (ONE + s.take_profit)
            if stop is not None and lo <= stop:
                close(p, when, min(o, stop) * (ONE - s.slippage), "stop_loss")
            elif take is not None and h >= take:
                close(p, when, max(o, take), "take_profit")
        # 3: the decisions of this close, exits first, then entries in the pairs' order.
        if start is not None and when < start:
            continue
        wanted: list[str] = []
        for p in pairs:
            i = rows[p].get(t)
            if i is None or i == len(series[p].candles) - 1 or p in pending:
                continue
            sig = signals[p]
            el, xl = bool(sig.enter_long[i]), bool(sig.exit_long[i])
            if p in positions:
                if xl and not el:
                    pending[p] = ("exit", positions[p].amount, ZERO)
            elif el and not xl:
                wanted.append(p)
        if not wanted:
            continue
        taken, skips = allocate(
            wanted,
            pairs,
            open_trades=len(positions) + sum(1 for k, _, _ in pending.values() if k == "entry"),
            max_open_trades=s.max_open_trades,
            available=cash,
            stake_amount=s.stake_amount,
        )
        for e in taken:
            price = last_close[e.pair][1]
            amount = e.stake / (ONE + s.fee) / price
            reserved = amount * price * (ONE + s.slippage) * (ONE + s.fee)
            cash -= reserved
            pending[e.pair] = ("entry", amount, reserved)
        for k in skips:
            skipped.append({"time": _iso(when), "pair": k.pair, "reason": k.reason})
    for p in pairs:
        if p in positions:
            when, price = last_close[p]
            close(p, when, price * (ONE - s.slippage), "end")
    return MultiPairResult(trades, skipped, cash, list(pairs))
