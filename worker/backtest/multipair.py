"""Multi-pair backtests: one strategy on several pairs of one timeframe, with one balance.

The rules are the bot's (``worker.strategies.slots``): one quote balance for all pairs,
``max_open_trades`` positions at most across them, entries decided on the same close take
the free slots in the order of the pairs list (the others are skipped and counted), and
the stake is fixed (``stake_amount``) or unlimited (the available balance divided by the
free slots). The fill rules are the single-pair engine's and the paper exchange's, walked
candle by candle in ``Decimal`` as a running bot steps:

1. at a candle's open, orders decided at the previous close fill (buys at
   ``open * (1 + slippage)``, sells at ``open * (1 - slippage)``, a fee on each fill),
   a reversal's exit before its entry;
2. inside the candle a stop-loss or take-profit (fractions of the entry fill) closes the
   position at its level (at the open through a gap), the stop first; slippage applies to
   the stop only;
3. on the close, every pair's decision: exits first, then the entries, in the pairs' order.

Phases 1 and 2 run for every pair before any decision of that close, so a slot a stop
frees inside a candle is free for the entries decided on its close. An entry's amount is
``stake / (1 + fee) / close`` at its decision, truncated to the market's ``amount_step``
when one is given (per pair, or one for all), as the bot rounds it to the market's amount
precision; an entry that rounds to zero is skipped (``amount_zero``). An entry the
balance cannot pay at its fill price is rejected, as the paper exchange rejects it
(``skipped`` with reason ``rejected``).

**Shorts** (``shorts``, a bot with ``allow_short`` on a paper margin account): a pair holds
a long or a short. A short sells at the open (the collateral of a 1x margin short, as much
as a buy of that size, is reserved until it fills), its proceeds are credited, and it is
bought back to close; its stop is above the entry and its target below. An entry of the
opposite side while a position is open is a reversal: its exit is placed on that close
(freeing the slot for that close's entries) and its entry competes for the free slots in
the pairs' order like any other entry. The balance entries stake from leaves out what
the open shorts hold (``slots.stakeable``). A trade still open after the last candle is
closed at the last close (``exit_reason = "end"``), as in ``run_backtest``.
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
from worker.strategies.slots import allocate, stakeable

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
    shorts: bool = Field(default=False, description="a pair may hold a short (margin, 1x)")
    amount_step: Decimal | dict[str, Decimal] | None = Field(
        default=None, description="the market's amount step (one for all pairs, or per pair)"
    )

    def step_of(self, pair: str) -> Decimal | None:
        step = self.amount_step
        return step.get(pair) if isinstance(step, dict) else step


@dataclass(slots=True)
class _Open:
    entry_time: datetime
    entry_price: Decimal
    amount: Decimal
    cost: Decimal
    fee: Decimal
    long: bool = True


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


def _truncate(amount: Decimal, step: Decimal | None) -> Decimal:
    """``amount`` down to a multiple of ``step``, as ccxt's ``amount_to_precision``."""
    return amount if step is None else amount - amount % step


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
    exiting: dict[str, Decimal] = {}  # pair -> quote reserved by an exit filling next open
    entering: dict[str, tuple[bool, Decimal, Decimal]] = {}  # pair -> (long, amount, reserved)
    trades: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    last_close: dict[str, tuple[datetime, Decimal]] = {}

    def close(pair: str, when: datetime, price: Decimal, reason: str) -> None:
        nonlocal cash
        pos = positions.pop(pair)
        value = pos.amount * price
        fee = value * s.fee
        if pos.long:
            cash += value - fee
            profit = value - fee - pos.cost - pos.fee
        else:  # bought back with the proceeds credited at the entry
            cash -= value + fee
            profit = pos.cost - pos.fee - value - fee
        trades.append(
            {
                "pair": pair,
                "side": "long" if pos.long else "short",
                "entry_time": _iso(pos.entry_time),
                "entry_price": pos.entry_price,
                "exit_time": _iso(when),
                "exit_price": price,
                "amount": pos.amount,
                "profit": profit,
                "exit_reason": reason,
            }
        )

    def against(long_exit: bool) -> Decimal:  # a market exit's slippage, against the trader
        return ONE - s.slippage if long_exit else ONE + s.slippage

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
            if p in exiting:  # a reversal's exit fills before its entry
                cash += exiting.pop(p)
                close(p, when, o * against(positions[p].long), "signal")
            order = entering.pop(p, None)
            if order is not None:
                long, amount, reserved = order
                price = o * (ONE + s.slippage if long else ONE - s.slippage)
                cost = amount * price
                fee = cost * s.fee
                cash += reserved
                if not long:  # a margin short: the proceeds are credited
                    cash += cost - fee
                    positions[p] = _Open(when, price, amount, cost, fee, False)
                elif cash < cost + fee:  # the balance cannot pay the fill: rejected
                    skipped.append({"time": _iso(when), "pair": p, "reason": "rejected"})
                else:
                    cash -= cost + fee
                    positions[p] = _Open(when, price, amount, cost, fee)
            pos = positions.get(p)
            if pos is None:
                continue
            sign = ONE if pos.long else -ONE
            stop = None if s.stop_loss is None else pos.entry_price * (ONE - sign * s.stop_loss)
            take = None if s.take_profit is None else pos.entry_price * (ONE + sign * s.take_profit)
            if pos.long and stop is not None and lo <= stop:
                close(p, when, min(o, stop) * against(True), "stop_loss")
            elif pos.long and take is not None and h >= take:
                close(p, when, max(o, take), "take_profit")
            elif not pos.long and stop is not None and h >= stop:
                close(p, when, max(o, stop) * against(False), "stop_loss")
            elif not pos.long and take is not None and lo <= take:
                close(p, when, min(o, take), "take_profit")
        # 3: the decisions of this close, exits first, then entries in the pairs' order.
        if start is not None and when < start:
            continue
        wanted: dict[str, bool] = {}  # pair -> long
        for p in pairs:
            i = rows[p].get(t)
            if i is None or i == len(series[p].candles) - 1 or p in exiting or p in entering:
                continue
            sig = signals[p]
            el, xl = bool(sig.enter_long[i]), bool(sig.exit_long[i])
            es = xs = False
            if s.shorts:
                es, xs = bool(sig.enter_short[i]), bool(sig.exit_short[i])
                el, es = el and not xl and not es, es and not xs and not el
                xl, xs = xl and not bool(sig.enter_long[i]), xs and not bool(sig.enter_short[i])
            else:
                el, xl = el and not xl, xl and not el
            pos = positions.get(p)
            if pos is not None:
                if (xl or es) if pos.long else (xs or el):
                    # a buy-back reserves its cost at the close, as the paper account does
                    held = ZERO if pos.long else pos.amount * last_close[p][1] * against(False)
                    exiting[p] = held * (ONE + s.fee)
                    cash -= exiting[p]
                    if es if pos.long else el:  # a reversal
                        wanted[p] = not pos.long
            elif el or es:
                wanted[p] = el
        if not wanted:
            continue
        busy = sum(1 for p in positions if p not in exiting or p not in wanted)
        taken, skips = allocate(
            list(wanted),
            pairs,
            open_trades=busy + len(entering),
            max_open_trades=s.max_open_trades,
            available=stakeable(cash, [q.cost for q in positions.values() if not q.long]),
            stake_amount=s.stake_amount,
        )
        for e in taken:
            price = last_close[e.pair][1]
            amount = _truncate(e.stake / (ONE + s.fee) / price, s.step_of(e.pair))
            if amount <= ZERO:
                skipped.append({"time": _iso(when), "pair": e.pair, "reason": "amount_zero"})
                continue
            reserved = amount * price * (ONE + s.slippage) * (ONE + s.fee)
            cash -= reserved
            entering[e.pair] = (wanted[e.pair], amount, reserved)
        for k in skips:
            skipped.append({"time": _iso(when), "pair": k.pair, "reason": k.reason})
    for p in pairs:
        if p in positions:
            when, price = last_close[p]
            close(p, when, price * against(positions[p].long), "end")
    return MultiPairResult(trades, skipped, cash, list(pairs))
