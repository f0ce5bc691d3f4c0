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
- **Sizing**: a stake of ``stake_fraction`` x current equity, or a fixed ``stake_amount``.
  The stake pays for the position and its entry fee: ``notional = stake / (1 + fee)``.
- **Long-only** by default; with ``shorts`` both sides trade and an opposite entry is a
  **reversal**: the open trade closes and the opposite one opens on the same fill.
- Conflicting decisions on one candle cancel: entering and exiting the same side, or
  entering both sides, is ignored for that side.
- A trade still open after the last candle is **closed at the last close** (fee and
  slippage included) and marked ``exit_reason = "end"``.

Without stop-loss/take-profit the position over time is a pure function of the decisions,
so the engine is vectorised across candles and across parameter sets (no Python loop per
bar). With stops it walks trade by trade (never bar by bar), searching each trade's exit
with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

    @model_validator(mode="after")
    def _stake_fits(self) -> Settings:
        if self.stake_amount is not None and self.stake_amount > self.cash:
            raise ValueError("stake_amount must not exceed cash")
        return self


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
    return Trades(i, b, i, i, f, f, f, f, f, f, f, f, b)


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


def _last(ev: BoolArray) -> npt.NDArray[np.int32]:
    """Index of the most recent True at or before each candle, -1 if none."""
    n = ev.shape[-1]
    out = np.where(ev, np.arange(n, dtype=np.int32), np.int32(-1))
    np.maximum.accumulate(out, axis=-1, out=out)
    return out


def positions(sig: SignalGrid, shorts: bool) -> npt.NDArray[np.int8]:
    """Position held during each candle (+1 long, -1 short, 0 flat), shape (sets, candles).

    The state after candle ``i``'s decisions is the side of the latest entry, unless an exit
    of that side came later; it is held from the open of candle ``i + 1``.
    """
    el, xl, es, xs = _clean(sig, shorts)
    lp, xlp = _last(el), _last(xl)
    if shorts:
        ls, xsp = _last(es), _last(xs)
        state = np.where(
            lp > ls,
            np.where(xlp > lp, 0, 1),
            np.where(ls > lp, np.where(xsp > ls, 0, -1), 0),
        ).astype(np.int8)
    else:
        state = ((lp >= 0) & (xlp < lp)).astype(np.int8)
    pos = np.zeros_like(state)
    pos[..., 1:] = state[..., :-1]
    return pos


def _size(set_id: IntArray, ret: FloatArray, sets: int, settings: Settings) -> FloatArray:
    """Stake of each trade: fixed, or a fraction of the equity compounded over earlier trades.

    ``ret`` is each trade's return on its stake; with fractional sizing, equity after a trade
    is ``equity * (1 + fraction * ret)``, so each set's stakes follow from a cumulative
    product over its trades (one row per set, padded with neutral trades).
    """
    if settings.stake_amount is not None:
        return np.full(len(ret), settings.stake_amount)
    counts = np.bincount(set_id, minlength=sets)
    rank = np.arange(len(ret)) - (np.cumsum(counts) - counts)[set_id]
    growth = np.ones((sets, int(counts.max(initial=0)) + 1))
    growth[set_id, rank + 1] = np.maximum(1.0 + settings.stake_fraction * ret, 0.0)
    before = settings.cash * np.cumprod(growth, axis=1)
    stake: FloatArray = np.asarray(settings.stake_fraction * before[set_id, rank], np.float64)
    return stake


def _book(
    set_id: IntArray,
    side: npt.NDArray[np.int8],
    entry_idx: IntArray,
    exit_idx: IntArray,
    pe: FloatArray,
    px: FloatArray,
    reason: npt.NDArray[np.int8],
    stake: FloatArray | None,
    sets: int,
    settings: Settings,
) -> Trades:
    """Amounts, fees and P&L of trades whose fills are known (stakes computed if None)."""
    f = settings.fee
    sd = side.astype(np.float64)
    # return on the stake, fees included: notional = stake / (1 + f)
    ret = (sd * (px - pe) / pe - f - f * px / pe) / (1.0 + f)
    if stake is None:
        stake = _size(set_id, ret, sets, settings)
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
        entry_fee=f * notional,
        exit_fee=f * amount * px,
        pnl=stake * ret,
        return_pct=ret * 100.0,
        exit_reason=reason,
    )


def trades_from_positions(
    pos: npt.NDArray[np.int8], candles: Candles, settings: Settings
) -> Trades:
    """Every trade implied by a position matrix (vectorised over sets and candles)."""
    sets, n = pos.shape
    prev = np.zeros_like(pos)
    prev[:, 1:] = pos[:, :-1]
    s_idx, b_idx = np.nonzero(pos != prev)
    new = pos[s_idx, b_idx]
    k = np.flatnonzero(new != 0)
    set_id = s_idx[k].astype(np.int64)
    entry = b_idx[k].astype(np.int64)
    side = new[k].astype(np.int8)
    nxt = k + 1
    has_next = nxt < len(s_idx)
    has_next[has_next] = s_idx[nxt[has_next]] == s_idx[k[has_next]]
    exit_idx = np.where(has_next, b_idx[np.minimum(nxt, len(b_idx) - 1)], n - 1).astype(np.int64)
    reason = np.where(has_next, EXIT_SIGNAL, EXIT_END).astype(np.int8)
    slip = settings.slippage
    sd = side.astype(np.float64)
    pe = candles.open[entry] * (1.0 + sd * slip)
    raw_exit = np.where(has_next, candles.open[exit_idx], candles.close[n - 1])
    px = raw_exit * (1.0 - sd * slip)
    return _book(set_id, side, entry, exit_idx, pe, px, reason, None, sets, settings)


def _next_index(ev: BoolArray) -> IntArray:
    """For each candle ``i`` (and ``n``), the first index ``>= i`` where ``ev`` is True, else n."""
    n = len(ev)
    out = np.full(n + 1, n, dtype=np.int64)
    out[:n] = np.where(ev, np.arange(n), n)
    return np.minimum.accumulate(out[::-1])[::-1].copy()


def trades_with_stops(
    candles: Candles, sig: SignalGrid, row: int, settings: Settings, set_id: int = 0
) -> Trades:
    """Trades of one parameter set whose decisions carry stop-loss / take-profit levels.

    Walks trade by trade: each trade's exit is the earliest of its exit decision (found in
    O(1) from precomputed next-event indexes) and a stop/target touched inside a candle
    (found with one vectorised search over the candles the trade spans).
    """
    n = len(candles)
    one = SignalGrid(
        sig.enter_long[row : row + 1],
        sig.exit_long[row : row + 1],
        sig.enter_short[row : row + 1],
        sig.exit_short[row : row + 1],
        sig.stop_loss[row : row + 1],
        sig.take_profit[row : row + 1],
    )
    el, xl, es, xs = (a[0] for a in _clean(one, settings.shorts))
    next_el, next_es = _next_index(el), _next_index(es)
    exit_of = {1: _next_index(xl | es), -1: _next_index(xs | el)}
    stop_l, take_p = sig.stop_loss[row], sig.take_profit[row]
    o, h, lo, c = candles.open, candles.high, candles.low, candles.close
    f, slip = settings.fee, settings.slippage
    rows: list[tuple[int, int, int, float, float, int, float]] = []
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
                j = x
        ret = (side * (px - pe) / pe - f - f * px / pe) / (1.0 + f)
        stake = settings.stake_amount or settings.stake_fraction * max(equity, 0.0)
        equity += stake * ret
        rows.append((side, e, x, pe, px, reason, stake))
        if reason == EXIT_END:
            break
        i = j
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
        np.array(cols[6], dtype=np.float64),
        set_id + 1,
        settings,
    )


def equity_curves(
    trades: Trades, candles: Candles, sets: int, settings: Settings
) -> tuple[FloatArray, FloatArray]:
    """Equity at every close (cash + position marked at the close) and exposure, per set.

    Cash and position change only at fills, so both are cumulative sums of per-fill deltas.
    """
    n = len(candles)
    sd = trades.side.astype(np.float64)
    units = sd * trades.amount
    at_entry = trades.set_id * n + trades.entry_idx
    at_exit = trades.set_id * n + trades.exit_idx
    idx = np.concatenate([at_entry, at_exit])
    size = sets * n
    cash = np.bincount(
        idx,
        weights=np.concatenate(
            [
                -units * trades.entry_price - trades.entry_fee,
                units * trades.exit_price - trades.exit_fee,
            ]
        ),
        minlength=size,
    ).reshape(sets, n)
    held = np.bincount(idx, weights=np.concatenate([units, -units]), minlength=size).reshape(
        sets, n
    )
    np.cumsum(cash, axis=1, out=cash)
    np.cumsum(held, axis=1, out=held)
    # the cumulative sum of +u/-u can leave ~1e-17 residue when flat
    flat = np.abs(held) <= 1e-9 * np.maximum(np.abs(units).max(initial=0.0), 1e-300)
    held[flat] = 0.0
    exposure: FloatArray = (~flat).mean(axis=1) if n else np.zeros(sets)
    equity: FloatArray = settings.cash + cash + held * candles.close
    return equity, exposure


def simulate(candles: Candles, sig: SignalGrid, settings: Settings) -> GridRun:
    """Trades and equity curves of every parameter set in ``sig`` over ``candles``."""
    sets = sig.enter_long.shape[0]
    if len(candles) == 0:
        return GridRun(_empty_trades(), np.zeros((sets, 0)), np.zeros(sets))
    if sig.has_stops:
        trades = Trades.concat(
            [trades_with_stops(candles, sig, r, settings, set_id=r) for r in range(sets)]
        )
    else:
        trades = trades_from_positions(positions(sig, settings.shorts), candles, settings)
    equity, exposure = equity_curves(trades, candles, sets, settings)
    return GridRun(trades, equity, exposure)
