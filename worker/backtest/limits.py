"""Backtests with limit entries or exits: the bot engine's candle step, candle by candle.

A limit order cannot be vectorised over decisions (whether it fills depends on the candles
after it), so a run with ``entry_order`` or ``exit_order`` set to ``limit`` walks the
candles of each parameter set in the order of a bot's step (``worker.bots.orders``):

1. **Fills.** An order placed on the close of candle ``k`` may fill from candle ``k+1``: a
   market order at the open (with slippage); a limit buy when the candle's low touches or
   goes through its price, at that price (at the open when the candle opens through it), a
   limit sell when the high does. This is the paper exchange's rule. A limit order still
   open after the fills of candle ``k + timeout`` is cancelled; with ``requote`` an exit is
   placed again at once, and an entry on that candle's close, at that close moved by the
   offset.
2. **Stops.** The position's stop-loss and take-profit (fractions of the entry fill) are
   checked inside every candle it is open, the fill candle included, at their level (at the
   open when the candle opens through it), the stop first; a resting limit exit that did
   not fill in that candle is cancelled. Slippage applies to the stop.
3. **Decisions** on the close: an exit when a position is open and nothing is in flight,
   else an entry when nothing is in flight. A limit buy rests at ``close * (1 - offset)``,
   a limit sell at ``close * (1 + offset)``, rounded to ``price_tick`` when it is given
   (the market's tick, as the exchange rounds the bot's limit prices).

Limit orders are backtested long-only (a bot's limit exit never reverses on its close).
"""

from __future__ import annotations

from worker.strategies.base import Candles, SignalGrid

from .engine import (
    EXIT_END,
    EXIT_SIGNAL,
    EXIT_STOP_LOSS,
    EXIT_TAKE_PROFIT,
    Settings,
    TradeRow,
    Trades,
    _book_rows,
    _clean_row,
)


def trades_with_limits(
    candles: Candles, sig: SignalGrid, row: int, settings: Settings, set_id: int = 0
) -> Trades:
    """Trades of one parameter set with limit entries and/or exits (long-only)."""
    n = len(candles)
    el, xl = _clean_row(sig, row, False)[:2]
    stop_l, take_p = sig.stop_loss[row], sig.take_profit[row]
    o, h, lo, c = (a.tolist() for a in (candles.open, candles.high, candles.low, candles.close))
    f, slip, off = settings.fee, settings.slippage, settings.limit_offset
    limit_entry, limit_exit = settings.entry_order == "limit", settings.exit_order == "limit"
    t_in, t_out = settings.entry_timeout, settings.exit_timeout
    requote = settings.timeout_action == "requote"
    tick = settings.price_tick

    def at(price: float) -> float:  # a limit price, on the market's tick as the exchange does
        return round(price / tick) * tick if tick else price

    rows: list[TradeRow] = []
    equity = settings.cash
    pos: tuple[int, float, float, float] | None = None  # entry idx, price, stop, target
    pending: tuple[str, float | None, int] | None = None  # purpose, limit (None: market), placed
    decided = 0  # the candle whose decision the open trade's levels come from

    def close(x: int, px: float, reason: int) -> None:
        nonlocal pos, equity
        assert pos is not None
        e, pe = pos[0], pos[1]
        ret = (px - pe) / pe - f - f * px / pe
        ret /= 1.0 + f
        stake = settings.stake_amount or settings.stake_fraction * max(equity, 0.0)
        rows.append((1, e, x, pe, px, reason, stake, equity))
        equity += stake * ret
        pos = None

    for x in range(n):
        requote_entry = False
        # 1. fills of orders placed on earlier closes, then timeouts
        if pending is not None:
            purpose, limit, placed = pending
            if purpose == "entry":
                pe: float | None = None
                if limit is None:
                    pe = o[x] * (1.0 + slip)
                elif lo[x] <= limit:
                    pe = min(o[x], limit)
                if pe is not None:
                    sl, tp = float(stop_l[decided]), float(take_p[decided])
                    sl_px = pe * (1.0 - sl) if sl == sl else float("nan")
                    tp_px = pe * (1.0 + tp) if tp == tp else float("nan")
                    pos, pending = (x, pe, sl_px, tp_px), None
                elif x >= placed + t_in:
                    pending, requote_entry = None, requote
            else:
                px: float | None = None
                if limit is None:
                    px = o[x] * (1.0 - slip)
                elif h[x] >= limit:
                    px = max(o[x], limit)
                if px is not None:
                    close(x, px, EXIT_SIGNAL)
                    pending = None
                elif x >= placed + t_out:
                    pending = ("exit", at(c[x] * (1.0 + off)), x) if requote else None
        # 2. stops (not while a market exit waits for the next open)
        if pos is not None and (pending is None or pending[1] is not None):
            _, _, sl_px, tp_px = pos
            if sl_px == sl_px and lo[x] <= sl_px:
                close(x, min(o[x], sl_px) * (1.0 - slip), EXIT_STOP_LOSS)
                pending = None
            elif tp_px == tp_px and h[x] >= tp_px:
                close(x, max(o[x], tp_px), EXIT_TAKE_PROFIT)
                pending = None
        if x == n - 1:
            break
        # 3. the decision on this close
        if pending is not None:
            continue
        if pos is not None:
            if xl[x]:
                pending = ("exit", at(c[x] * (1.0 + off)) if limit_exit else None, x)
        elif el[x] or requote_entry:
            pending = ("entry", at(c[x] * (1.0 - off)) if limit_entry else None, x)
            decided = x
    if pos is not None:
        close(n - 1, c[n - 1] * (1.0 - slip), EXIT_END)
    return _book_rows(rows, set_id, settings)
