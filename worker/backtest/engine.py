"""Backtest engine: strategy decisions -> trades -> equity curve, for one or many parameter sets.

Fill rules (the paper exchange's, so a backtest predicts the bot):

- A decision is taken on a candle's close and fills at the **next candle's open**. A decision
  on the last candle never fills.
- **Stop-loss / take-profit** (fractions of the entry fill price) are checked inside every
  candle the position is open, the entry candle included. They fill at their price; when
  both could have been hit in the same candle the **stop is assumed first**. If a candle
  opens beyond the level (a gap), the fill is at that open. Slippage applies to the stop
  (a market order), not to the take-profit (a limit order).
- **Fees** are a fraction of notional, charged on entry and on exit. **Slippage** is a
  fraction of price, against us: buys fill at ``open * (1 + s)``, sells at ``open * (1 - s)``.
- **Sizing**: a stake of ``stake_fraction`` x current equity, a fixed ``stake_amount``, or
  with ``risk_percentage`` (risk sizing, trades with a stop-loss only) the stake whose
  stop-loss would lose that percentage of the equity: ``equity x risk / 100 / stop``, at
  most the equity. The stake pays for the position and its entry fee:
  ``notional = stake / (1 + fee)``.
- **Units**: with ``amount_step`` (the market's amount precision: 1 for whole-unit lots of
  stocks and many futures, 0.001 for a crypto market that trades thousandths) the amount
  ``notional / entry price`` is truncated down to a multiple of the step, exactly as the
  paper exchange rounds an order (ccxt's ``amount_to_precision``); the unspent part of the
  stake stays cash, and an entry that rounds to zero units is not taken. Without it any
  fraction trades. In units the amount is what a bot orders: sized at the close the
  decision was taken on (the next open is not known yet), and a reversal's new entry is
  sized on the equity before the trade it reverses (both orders go out on the same close).
  With ``price_tick`` a stop-loss or take-profit fills at its price rounded to the tick,
  as the exchange rounds the order that closes the position.
- **Long-only** by default; with ``shorts`` both sides trade and an opposite entry is a
  **reversal**: the open trade closes and the opposite one opens on the same fill.
- Conflicting decisions on one candle cancel: entering and exiting the same side, or
  entering both sides, is ignored for that side.
- A trade still open after the last candle is **closed at the last close** (fee and
  slippage included) and marked ``exit_reason = "end"``.
- **Limit orders** (``entry_order`` / ``exit_order`` = ``limit``) rest at the close moved by
  ``limit_offset`` and fill when a candle touches or goes through their price, at that
  price, with unfilled timeouts in candles; see ``worker.backtest.limits``.

Without stop-loss/take-profit the position over time is a pure function of the decisions,
so the engine is vectorised across candles and across parameter sets (no Python loop per
bar). With stops it walks trade by trade (never bar by bar), searching each trade's exit
with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.strategies.base import BoolArray, Candles, FloatArray, IntArray, SignalGrid

EXIT_SIGNAL, EXIT_STOP_LOSS, EXIT_TAKE_PROFIT, EXIT_END = 0, 1, 2, 3
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "end")


class Settings(BaseModel):
    """How a backtest trades: money, costs, sizing and sides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cash: float = Field(default=10_000.0, gt=0, description="initial balance (quote currency)")
    fee: float = Field(default=0.001, ge=0, lt=0.5, description="fraction of notional per fill")
    slippage: float = Field(default=0.0, ge=0, lt=0.5, description="fraction of price per fill")
    stake_fraction: float = Field(default=1.0, gt=0, le=1, description="fraction of equity")
    stake_amount: float | None = Field(default=None, gt=0, description="fixed stake, overrides")
    shorts: bool = False
    entry_order: Literal["market", "limit"] = "market"
    exit_order: Literal["market", "limit"] = "market"
    limit_offset: float = Field(
        default=0.0, ge=0, le=0.1, description="fraction of the close a limit rests away"
    )
    entry_timeout: int = Field(default=1, ge=1, le=1000, description="candles a limit entry rests")
    exit_timeout: int = Field(default=1, ge=1, le=1000, description="candles a limit exit rests")
    timeout_action: Literal["cancel", "requote"] = "cancel"
    exit_timeout_count: int = Field(
        default=0, ge=0, le=100, description="exit timeouts of a position before a market exit"
    )
    price_tick: float | None = Field(
        default=None, gt=0, description="the market's tick: limit prices round to it"
    )
    amount_step: float | None = Field(
        default=None, gt=0, description="amounts are truncated to a multiple of this (base units)"
    )
    risk_percentage: float | None = Field(
        default=None, gt=0, le=100, description="risk sizing: % of equity lost at the stop"
    )
    volume_share: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="limit entries fill at most this share of a candle's volume (partial fills)",
    )
    min_cost: float | None = Field(
        default=None,
        gt=0,
        description="the market's minimum order value: smaller rests are not placed",
    )

    @model_validator(mode="after")
    def _stake_fits(self) -> Settings:
        if self.stake_amount is not None and self.stake_amount > self.cash:
            raise ValueError("stake_amount must not exceed cash")
        if self.risk_percentage is not None and self.stake_amount is not None:
            raise ValueError("risk_percentage and stake_amount are two sizings: choose one")
        return self

    def stake(self, equity: float, stop: float = float("nan")) -> float:
        """The stake of an entry on ``equity``, given the trade's stop-loss fraction."""
        if self.risk_percentage is not None:
            if not stop > 0:
                raise ValueError("risk sizing needs a stop_loss: the risk is the loss at the stop")
            return min(max(equity, 0.0) * self.risk_percentage / 100.0 / stop, max(equity, 0.0))
        return self.stake_amount or self.stake_fraction * max(equity, 0.0)

    @property
    def limits(self) -> bool:
        return self.entry_order == "limit" or self.exit_order == "limit"


@dataclass(slots=True)
class Trades:
    """Closed trades of one or many parameter sets, as parallel arrays (set-major order).

    ``entry_idx`` is the candle whose open filled the entry; ``exit_idx`` the candle in which
    the exit filled (at its open for signal exits, inside it for stops, at its close for
    ``end``). ``amount`` is in base units (positive), ``pnl`` in quote currency net of both
    fees, ``return_pct`` is pnl over the stake.
    """

    set_id: IntArray
    side: npt.NDArray[np.int8]
    entry_idx: IntArray
    exit_idx: IntArray
    entry_price: FloatArray
    exit_price: FloatArray
    amount: FloatArray
    stake: FloatArray
    equity_before: FloatArray
    entry_fee: FloatArray
    exit_fee: FloatArray
    pnl: FloatArray
    return_pct: FloatArray
    exit_reason: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.set_id)

    def select(self, mask_or_idx: Any) -> Trades:
        return Trades(**{k: getattr(self, k)[mask_or_idx] for k in self.__slots__})

    @classmethod
    def concat(cls, parts: list[Trades]) -> Trades:
        if not parts:
            return _empty_trades()
        return cls(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in cls.__slots__})


def _empty_trades() -> Trades:
    i, f, b = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int8)
    return Trades(i, b, i, i, f, f, f, f, f, f, f, f, f, b)


@dataclass(slots=True)
class GridRun:
    """Result of simulating ``sets`` parameter sets over the same candles."""

    trades: Trades
    equity: FloatArray  # (sets, candles): equity at each candle's close, marked to market
    exposure: FloatArray  # (sets,): fraction of candles closed with a position open


def _clean(sig: SignalGrid, shorts: bool) -> tuple[BoolArray, BoolArray, BoolArray, BoolArray]:
    """Cancel conflicting decisions (see module docstring); drop shorts if not allowed."""
    el, xl, es, xs = sig.enter_long, sig.exit_long, sig.enter_short, sig.exit_short
    if not shorts:
        none = np.zeros_like(el)
        return el & ~xl, xl & ~el, none, none
    return el & ~xl & ~es, xl & ~el, es & ~xs & ~el, xs & ~es


def _state_at_events(
    row: IntArray, el: BoolArray, xl: BoolArray, es: BoolArray, xs: BoolArray, shorts: bool
) -> npt.NDArray[np.int8]:
    """Position after each decision event (+1 long, -1 short, 0 flat).

    The state is the side of the latest entry, unless an exit of that side came later.
    Events are in (row, candle) order; history never crosses into another row.
    """
    k = np.arange(len(row))

    def last(flag: BoolArray) -> IntArray:
        idx = np.where(flag, k, -1)
        np.maximum.accumulate(idx, out=idx)
        return np.where((idx >= 0) & (row[idx] == row), idx, -1)

    lp, xlp = last(el), last(xl)
    if not shorts:
        return ((lp >= 0) & (xlp < lp)).astype(np.int8)
    ls, xsp = last(es), last(xs)
    return np.where(
        lp > ls,
        np.where(xlp > lp, 0, 1),
        np.where(ls > lp, np.where(xsp > ls, 0, -1), 0),
    ).astype(np.int8)


def _size(
    set_id: IntArray, ret: FloatArray, sets: int, settings: Settings
) -> tuple[FloatArray, FloatArray]:
    """Stake of each trade and the equity before it, per set in trade order.

    ``ret`` is each trade's return on its stake. With fractional sizing, equity after a
    trade is ``equity * (1 + fraction * ret)``, so each set's equity follows from a
    cumulative product over its trades (one row per set, padded with neutral trades); with
    a fixed stake it is a cumulative sum of P&L.
    """
    counts = np.bincount(set_id, minlength=sets)
    rank = np.arange(len(ret)) - (np.cumsum(counts) - counts)[set_id]
    width = int(counts.max(initial=0)) + 1
    if settings.stake_amount is not None:
        pnl = np.zeros((sets, width))
        pnl[set_id, rank + 1] = settings.stake_amount * ret
        before = settings.cash + np.cumsum(pnl, axis=1)
        eq: FloatArray = np.asarray(before[set_id, rank], np.float64)
        return np.full(len(ret), settings.stake_amount), eq
    growth = np.ones((sets, width))
    growth[set_id, rank + 1] = np.maximum(1.0 + settings.stake_fraction * ret, 0.0)
    compounded = settings.cash * np.cumprod(growth, axis=1)
    eq = np.asarray(compounded[set_id, rank], np.float64)
    return settings.stake_fraction * eq, eq


def _book(
    set_id: IntArray,
    side: npt.NDArray[np.int8],
    entry_idx: IntArray,
    exit_idx: IntArray,
    pe: FloatArray,
    px: FloatArray,
    reason: npt.NDArray[np.int8],
    sized: tuple[FloatArray, FloatArray] | None,
    sets: int,
    settings: Settings,
    orders: tuple[FloatArray, FloatArray] | None = None,
) -> Trades:
    """Amounts, fees and P&L of trades whose fills are known (stakes computed if None).

    ``orders``: each entry's order price (what a bot sizes the amount on) and stop-loss
    fraction (NaN: none); by default the entry fill price and no stop.
    """
    if settings.amount_step is not None:
        size_px, stops = orders if orders is not None else (pe, np.full(len(pe), np.nan))
        return _book_in_units(
            set_id, side, entry_idx, exit_idx, pe, px, reason, settings, size_px, stops
        )
    f = settings.fee
    sd = side.astype(np.float64)
    # return on the stake, fees included: notional = stake / (1 + f)
    ret = (sd * (px - pe) / pe - f - f * px / pe) / (1.0 + f)
    stake, before = sized if sized is not None else _size(set_id, ret, sets, settings)
    notional = stake / (1.0 + f)
    amount = notional / pe
    return Trades(
        set_id=set_id,
        side=side,
        entry_idx=entry_idx,
        exit_idx=exit_idx,
        entry_price=pe,
        exit_price=px,
        amount=amount,
        stake=stake,
        equity_before=before,
        entry_fee=f * notional,
        exit_fee=f * amount * px,
        pnl=stake * ret,
        return_pct=ret * 100.0,
        exit_reason=reason,
    )


def round_amount(amount: float, step: float) -> float:
    """``amount`` truncated down to a multiple of ``step``, in decimal as ccxt rounds orders."""
    a, s = Decimal(repr(float(amount))), Decimal(repr(float(step)))
    return float(a - a % s) if a > 0 else 0.0


def _book_in_units(
    set_id: IntArray,
    side: npt.NDArray[np.int8],
    entry_idx: IntArray,
    exit_idx: IntArray,
    pe: FloatArray,
    px: FloatArray,
    reason: npt.NDArray[np.int8],
    settings: Settings,
    size_px: FloatArray,
    stops: FloatArray,
) -> Trades:
    """Trades whose amounts are whole multiples of the market's step, sized in trade order.

    Rounding breaks the proportionality the vectorised sizing relies on, so each set's
    equity is carried from trade to trade (a loop over trades, never over candles).
    Trades that round to zero units are dropped.
    """
    f, step = settings.fee, float(settings.amount_step or 0.0)
    t = len(set_id)
    amount, stake, before = np.zeros(t), np.zeros(t), np.zeros(t)
    equity = realized = settings.cash
    current = -1
    for i in range(t):
        if set_id[i] != current:
            equity = realized = settings.cash
            current = int(set_id[i])
        # a reversal: ordered on the close that ordered the previous trade's exit
        reversal = i > 0 and set_id[i - 1] == current and exit_idx[i - 1] == entry_idx[i]
        reversal = reversal and reason[i - 1] == EXIT_SIGNAL
        st = settings.stake(realized if reversal else equity, float(stops[i]))
        units = round_amount(st / (1.0 + f) / float(size_px[i]), step)
        amount[i], stake[i], before[i] = units, st, equity
        realized = equity
        equity += units * (side[i] * (px[i] - pe[i]) - f * (pe[i] + px[i]))
    sd = side.astype(np.float64)
    pnl = amount * (sd * (px - pe) - f * (pe + px))
    keep = amount > 0
    trades = Trades(
        set_id=set_id,
        side=side,
        entry_idx=entry_idx,
        exit_idx=exit_idx,
        entry_price=pe,
        exit_price=px,
        amount=amount,
        stake=stake,
        equity_before=before,
        entry_fee=f * amount * pe,
        exit_fee=f * amount * px,
        pnl=pnl,
        return_pct=_div0(pnl, stake) * 100.0,
        exit_reason=reason,
    )
    return trades if keep.all() else trades.select(keep)


def _div0(a: FloatArray, b: FloatArray) -> FloatArray:
    out = np.zeros_like(a)
    np.divide(a, b, out=out, where=b != 0)
    return out


def trades_from_signals(sig: SignalGrid, candles: Candles, settings: Settings) -> Trades:
    """Every trade implied by the decisions of every set (no stops): vectorised.

    Works on decision events only (candles where some decision is taken), which are few
    compared with candles: the position can change only on the open after an event.
    """
    el, xl, es, xs = _clean(sig, settings.shorts)
    sets, n = el.shape
    any_ = el | xl | es | xs
    any_[:, n - 1] = False  # a decision on the last candle never fills
    flat = np.flatnonzero(any_)
    row, bar = np.divmod(flat, n)
    state = _state_at_events(
        row, el.ravel()[flat], xl.ravel()[flat], es.ravel()[flat], xs.ravel()[flat],
        settings.shorts,
    )  # fmt: skip
    prev = np.zeros_like(state)
    prev[1:] = state[:-1]
    prev[np.r_[True, row[1:] != row[:-1]] if len(row) else []] = 0
    ch = np.flatnonzero(state != prev)
    s_idx, b_idx, new = row[ch], bar[ch] + 1, state[ch]
    k = np.flatnonzero(new != 0)
    set_id = s_idx[k].astype(np.int64)
    entry = b_idx[k].astype(np.int64)
    side = new[k].astype(np.int8)
    nxt = k + 1
    has_next = nxt < len(s_idx)
    has_next[has_next] = s_idx[nxt[has_next]] == s_idx[k[has_next]]
    exit_idx = np.where(has_next, b_idx[np.minimum(nxt, max(len(b_idx) - 1, 0))], n - 1)
    exit_idx = exit_idx.astype(np.int64)
    reason = np.where(has_next, EXIT_SIGNAL, EXIT_END).astype(np.int8)
    slip = settings.slippage
    sd = side.astype(np.float64)
    pe = candles.open[entry] * (1.0 + sd * slip)
    raw_exit = np.where(has_next, candles.open[exit_idx], candles.close[n - 1])
    px = raw_exit * (1.0 - sd * slip)
    orders = (candles.close[entry - 1], np.full(len(entry), np.nan))
    return _book(set_id, side, entry, exit_idx, pe, px, reason, None, sets, settings, orders)


def _next_index(ev: BoolArray) -> IntArray:
    """For each candle ``i`` (and ``n``), the first index ``>= i`` where ``ev`` is True, else n."""
    n = len(ev)
    out = np.full(n + 1, n, dtype=np.int64)
    out[:n] = np.where(ev, np.arange(n), n)
    return np.minimum.accumulate(out[::-1])[::-1].copy()


def _clean_row(
    sig: SignalGrid, row: int, shorts: bool
) -> tuple[BoolArray, BoolArray, BoolArray, BoolArray]:
    """``_clean`` of one parameter set's decisions, as 1-D arrays."""
    one = SignalGrid(
        sig.enter_long[row : row + 1],
        sig.exit_long[row : row + 1],
        sig.enter_short[row : row + 1],
        sig.exit_short[row : row + 1],
        sig.stop_loss[row : row + 1],
        sig.take_profit[row : row + 1],
    )
    el, xl, es, xs = _clean(one, shorts)
    return el[0], xl[0], es[0], xs[0]


TradeRow = tuple[int, int, int, float, float, int, float, float]


def _book_rows(
    rows: list[TradeRow],
    set_id: int,
    settings: Settings,
    orders: tuple[FloatArray, FloatArray] | None = None,
) -> Trades:
    """Book the trades a candle walk found: (side, entry index, exit index, entry price,
    exit price, reason, stake, equity before) each; ``orders`` as for ``_book``."""
    if not rows:
        return _empty_trades()
    cols = list(zip(*rows, strict=True))
    return _book(
        np.full(len(rows), set_id, dtype=np.int64),
        np.array(cols[0], dtype=np.int8),
        np.array(cols[1], dtype=np.int64),
        np.array(cols[2], dtype=np.int64),
        np.array(cols[3], dtype=np.float64),
        np.array(cols[4], dtype=np.float64),
        np.array(cols[5], dtype=np.int8),
        (np.array(cols[6], dtype=np.float64), np.array(cols[7], dtype=np.float64)),
        set_id + 1,
        settings,
        orders,
    )


def trades_with_stops(
    candles: Candles, sig: SignalGrid, row: int, settings: Settings, set_id: int = 0
) -> Trades:
    """Trades of one parameter set whose decisions carry stop-loss / take-profit levels.

    Walks trade by trade: each trade's exit is the earliest of its exit decision (found in
    O(1) from precomputed next-event indexes) and a stop/target touched inside a candle
    (found with one vectorised search over the candles the trade spans).
    """
    n = len(candles)
    el, xl, es, xs = _clean_row(sig, row, settings.shorts)
    next_el, next_es = _next_index(el), _next_index(es)
    exit_of = {1: _next_index(xl | es), -1: _next_index(xs | el)}
    stop_l, take_p = sig.stop_loss[row], sig.take_profit[row]
    o, h, lo, c = candles.open, candles.high, candles.low, candles.close
    f, slip, tick = settings.fee, settings.slippage, settings.price_tick
    rows: list[TradeRow] = []
    size_px: list[float] = []
    stops: list[float] = []
    equity, i = settings.cash, 0
    while True:
        k = int(min(next_el[i], next_es[i]))
        if k >= n - 1:
            break
        side = 1 if next_el[i] == k else -1
        e = k + 1
        pe = o[e] * (1.0 + side * slip)
        j = int(exit_of[side][e])
        end = j >= n - 1
        w = n if end else j + 1  # candles [e, w) may touch a stop before the exit fill
        reason, x, px = (EXIT_END, n - 1, c[n - 1]) if end else (EXIT_SIGNAL, j + 1, o[j + 1])
        px *= 1.0 - side * slip
        sl, tp = float(stop_l[k]), float(take_p[k])
        if sl == sl or tp == tp:  # not NaN: look for a touch inside the trade's candles
            adverse, favour = (lo[e:w], h[e:w]) if side > 0 else (h[e:w], lo[e:w])
            sl_px = pe * (1.0 - side * sl) if sl == sl else np.nan
            tp_px = pe * (1.0 + side * tp) if tp == tp else np.nan
            with np.errstate(invalid="ignore"):
                hit_sl = side * (adverse - sl_px) <= 0
                hit_tp = side * (favour - tp_px) >= 0
            hit = hit_sl | hit_tp
            m = int(np.argmax(hit))
            if hit[m]:
                x, gap = e + m, m > 0
                if hit_sl[m]:
                    lvl = min(o[x], sl_px) if side > 0 else max(o[x], sl_px)
                    reason, px = EXIT_STOP_LOSS, (lvl if gap else sl_px) * (1 - side * slip)
                else:
                    lvl = max(o[x], tp_px) if side > 0 else min(o[x], tp_px)
                    reason, px = EXIT_TAKE_PROFIT, lvl if gap else tp_px
                if tick:  # the order that closes the position has a price on the tick
                    px = round(px / tick) * tick
                j = x
        ret = (side * (px - pe) / pe - f - f * px / pe) / (1.0 + f)
        stake = settings.stake(equity, sl)
        rows.append((side, e, x, pe, px, reason, stake, equity))
        size_px.append(float(c[k]))
        stops.append(sl)
        equity += stake * ret
        if reason == EXIT_END:
            break
        i = j
    return _book_rows(rows, set_id, settings, (np.array(size_px), np.array(stops)))


def equity_curves(
    trades: Trades, candles: Candles, sets: int, settings: Settings
) -> tuple[FloatArray, FloatArray]:
    """Equity at every close (cash + position marked at the close) and exposure, per set.

    Between fills the equity is ``base + units * close`` with ``base`` and ``units``
    constant: after an entry ``base = equity_before - units * entry_price - entry_fee``,
    after an exit ``base = equity_before + pnl`` and ``units = 0``. Each candle takes the
    values of the latest fill at or before its close, so no error accumulates over the run.
    Exposure (share of closes with a position open) follows from the trades' spans.
    """
    n = len(candles)
    t = len(trades)
    units = trades.side.astype(np.float64) * trades.amount
    at = np.concatenate(
        [
            np.arange(sets) * n,
            trades.set_id * n + trades.exit_idx,
            trades.set_id * n + trades.entry_idx,
        ]
    )
    # same candle: a trade's entry comes before its own exit, after the previous trade's exit
    seq = np.concatenate([np.full(sets, -1), 2 * np.arange(t) + 1, 2 * np.arange(t)])
    base = np.concatenate(
        [
            np.full(sets, settings.cash),
            trades.equity_before + trades.pnl,
            trades.equity_before - units * trades.entry_price - trades.entry_fee,
        ]
    )
    held = np.concatenate([np.zeros(sets + t), units])
    order = np.lexsort((seq, at))
    at = at[order]
    lengths = np.diff(at, append=sets * n)
    equity: FloatArray = np.repeat(held[order], lengths).reshape(sets, n)
    equity *= candles.close
    equity += np.repeat(base[order], lengths).reshape(sets, n)
    span = np.bincount(trades.set_id, weights=trades.exit_idx - trades.entry_idx, minlength=sets)
    exposure: FloatArray = span / n if n else np.zeros(sets)
    return equity, exposure


def simulate(candles: Candles, sig: SignalGrid, settings: Settings) -> GridRun:
    """Trades and equity curves of every parameter set in ``sig`` over ``candles``."""
    sets = sig.enter_long.shape[0]
    if len(candles) == 0:
        return GridRun(_empty_trades(), np.zeros((sets, 0)), np.zeros(sets))
    if settings.risk_percentage is not None and (settings.limits or not sig.has_stops):
        raise ValueError("risk sizing needs a stop_loss and market orders")
    if settings.limits:
        from .limits import trades_with_limits  # a candle walk: see worker.backtest.limits

        trades = Trades.concat(
            [trades_with_limits(candles, sig, r, settings, set_id=r) for r in range(sets)]
        )
    elif sig.has_stops:
        trades = Trades.concat(
            [trades_with_stops(candles, sig, r, settings, set_id=r) for r in range(sets)]
        )
    else:
        trades = trades_from_signals(sig, candles, settings)
    equity, exposure = equity_curves(trades, candles, sets, settings)
    return GridRun(trades, equity, exposure)
