"""Backtests with limit entries or exits: the bot engine's candle step, candle by candle.

A limit order cannot be vectorised over decisions (whether it fills depends on the candles
after it), so a run with ``entry_order`` or ``exit_order`` set to ``limit`` walks the
candles of each parameter set in the order of a bot's step (``worker.bots.orders``):

1. **Fills.** An order placed on the close of candle ``k`` may fill from candle ``k+1``: a
   market order at the open (with slippage); a limit buy when the candle's low touches or
   goes through its price, at that price (at the open when the candle opens through it), a
   limit sell when the high does. This is the paper exchange's rule. A reversal's exit
   fills before its entry. A limit order still open after the fills of candle
   ``k + timeout`` is cancelled; with ``requote`` an exit is placed again at once, and an
   entry on that candle's close, at that close moved by the offset. The
   ``exit_timeout_count``-th exit timeout of one position places a market exit instead
   (it fills at the next open; stops wait for it, as the bot's do).
   With ``volume_share`` (a paper account's ``paper_volume_share``) a limit entry fills at
   most that share of each candle's volume (truncated to ``amount_step``; it needs one),
   and what is left rests on. One that times out partly filled opens what filled; with
   ``requote`` its rest is placed again at once at the new limit (the rest's value at its
   old limit, truncated; not below ``min_cost``), and the rest's fills add to the position
   (its entry price the average of its fills). A rest that times out unfilled is given
   up; an exit (a decision, a stop or target) cancels it first, what of it filled exiting
   too. Limit exits fill whole.
2. **Stops.** The position's stop-loss and take-profit (fractions of the entry fill: below
   and above a long's entry, above and below a short's) are checked inside every candle it
   is open, the fill candle included, at their level (at the open when the candle opens
   through it), the stop first; a resting limit exit that did not fill in that candle is
   cancelled. Slippage applies to the stop.
3. **Decisions** on the close, when nothing is in flight: an exit when a position is open
   (an exit of its side, or an entry of the other side), else an entry. A limit buy rests
   at ``close * (1 - offset)``, a limit sell at ``close * (1 + offset)``, rounded to
   ``price_tick`` when it is given (the market's tick, as the exchange rounds the bot's
   limit prices).

With ``shorts``, a short entry sells (at the limit above the close) and its exit buys back
(at the limit below it). An entry of the other side while a position is open is a
reversal when the exit is a market order: the exit and the new entry are placed on the
same close and the exit fills first; a limit exit may not fill, so it reverses nothing
(the bot's rule: ``worker.bots.engine.plan_decision``).
"""

from __future__ import annotations

from decimal import Decimal

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
    round_amount,
)

Position = tuple[
    int, int, float, float, float
]  # side (1 long, -1 short), entry idx, price, stop, target


def trades_with_limits(
    candles: Candles, sig: SignalGrid, row: int, settings: Settings, set_id: int = 0
) -> Trades:
    """Trades of one parameter set with limit entries and/or exits (long, and short with
    ``settings.shorts``)."""
    n = len(candles)
    el, xl, es, xs = _clean_row(sig, row, settings.shorts)
    stop_l, take_p = sig.stop_loss[row], sig.take_profit[row]
    o, h, lo, c = (a.tolist() for a in (candles.open, candles.high, candles.low, candles.close))
    f, slip, off = settings.fee, settings.slippage, settings.limit_offset
    limit_entry, limit_exit = settings.entry_order == "limit", settings.exit_order == "limit"
    t_in, t_out = settings.entry_timeout, settings.exit_timeout
    requote = settings.timeout_action == "requote"
    give_up = settings.exit_timeout_count
    tick = settings.price_tick
    share, step = settings.volume_share, settings.amount_step or 0.0
    if share is not None and not step:
        raise ValueError("volume_share needs the market's amount_step")
    vol = candles.volume.tolist()

    def at(price: float) -> float:  # a limit price, on the market's tick as the exchange does
        # in decimal: the float nearest the tick's multiple, as a candle's price is parsed
        return float(round(price / tick) * Decimal(repr(tick))) if tick else price

    def rest(buy: bool, x: int) -> float:  # a limit buy below the close, a sell above it
        return at(c[x] * (1.0 - off if buy else 1.0 + off))

    def fill(buy: bool, limit: float | None, x: int) -> float | None:
        if limit is None:  # a market order, at the open with slippage against the trader
            return float(o[x] * (1.0 + slip if buy else 1.0 - slip))
        if buy:
            return float(min(o[x], limit)) if lo[x] <= limit else None
        return float(max(o[x], limit)) if h[x] >= limit else None

    rows: list[TradeRow] = []
    equity = settings.cash
    pos: Position | None = None
    exiting: tuple[float | None, int] | None = None  # limit (None: market), placed
    entering: tuple[int, float | None, int] | None = None  # side, limit, placed
    decided = 0  # the candle whose decision the open trade's levels come from
    exit_timeouts = 0  # limit exits of the open position that timed out
    # With volume_share (the paper exchange's partial fills): the resting limit entry's
    # amount, what of it filled and its cost; ``adds``: it is the re-quoted rest of the
    # open position's entry. The open position's amount and cost.
    want = got = paid = 0.0
    adds = False
    held = cost = 0.0

    def levels(side: int, pe: float) -> tuple[float, float]:
        sl, tp = float(stop_l[decided]), float(take_p[decided])
        return (
            pe * (1.0 - side * sl) if sl == sl else float("nan"),
            pe * (1.0 + side * tp) if tp == tp else float("nan"),
        )

    def take(side: int, x: int) -> None:
        """What the resting entry filled opens the position, or adds to it (its rest)."""
        nonlocal pos, exit_timeouts, held, cost
        if adds and pos is not None:
            held, cost = held + got, cost + paid
            pe = cost / held
            pos = (pos[0], pos[1], pe, *levels(pos[0], pe))
            return
        held, cost = got, paid
        pos, exit_timeouts = (side, x, paid / got, *levels(side, paid / got)), 0

    def drop_rest() -> None:
        """The position exits: its entry's rest is cancelled, what of it filled added."""
        nonlocal entering
        if entering is not None and adds:
            if got > 0:
                take(entering[0], 0)
            entering = None

    def size(x: int) -> None:
        """An entry placed on this close: its amount, at its limit (a market one at the
        close), as the bot sizes it (with volume_share only: amounts matter there)."""
        nonlocal want, got, paid, adds
        if share is None or entering is None:
            return
        stake = settings.stake_amount or settings.stake_fraction * max(equity, 0.0)
        price = entering[1] if entering[1] is not None else c[x]
        want, got, paid, adds = round_amount(stake / (1.0 + f) / price, step), 0.0, 0.0, False

    def close(x: int, px: float, reason: int) -> None:
        nonlocal pos, equity
        assert pos is not None
        side, e, pe = pos[0], pos[1], pos[2]
        ret = side * (px - pe) / pe - f - f * px / pe
        ret /= 1.0 + f
        stake = settings.stake_amount or settings.stake_fraction * max(equity, 0.0)
        if share is not None:  # what the position holds, partial fills included
            stake = held * pe * (1.0 + f)
        rows.append((side, e, x, pe, px, reason, stake, equity))
        equity += stake * ret
        pos = None

    for x in range(n):
        requote_side = 0
        # 1. fills of orders placed on earlier closes (a reversal's exit first), then timeouts
        if exiting is not None and pos is not None:
            limit, placed = exiting
            px = fill(pos[0] < 0, limit, x)
            if px is not None:
                close(x, px, EXIT_SIGNAL)
                exiting = None
            elif x >= placed + t_out:
                exit_timeouts += 1
                if 0 < give_up <= exit_timeouts:  # exit_timeout_count: at market now
                    exiting = (None, x)
                else:
                    exiting = (rest(pos[0] < 0, x), x) if requote else None
        if entering is not None and share is not None and entering[1] is not None:
            side, limit, placed = entering
            assert limit is not None
            px = fill(side > 0, limit, x)
            if px is not None:  # at most its share of the candle's volume
                cap = round_amount(vol[x] * share, step)
                if cap >= want - got and got == 0:
                    got, paid = want, want * px
                elif cap > 0:
                    part = min(cap, want - got)
                    got, paid = got + part, paid + part * px
            if got >= want:
                take(side, x)
                entering = None
            elif x >= placed + t_in:
                entering = None
                if got > 0:
                    take(side, x)
                    again = rest(side > 0, x)  # the rest, its stake at the old price
                    amount = round_amount((want - got) * limit / again, step)
                    small = settings.min_cost is not None and amount * again < settings.min_cost
                    if requote and amount > 0 and not small:
                        entering, want, got, paid, adds = (side, again, x), amount, 0.0, 0.0, True
                elif requote and not adds:
                    requote_side = side
        elif entering is not None:
            side, limit, placed = entering
            pe = fill(side > 0, limit, x)
            if pe is not None:
                pos, entering, exit_timeouts = (side, x, pe, *levels(side, pe)), None, 0
                held, cost = want, want * pe  # (with volume_share: fills whole)
            elif x >= placed + t_in:
                entering, requote_side = None, side if requote else 0
        # 2. stops (not while a market exit waits for the next open)
        if pos is not None and (exiting is None or exiting[0] is not None):
            side, _, _, sl_px, tp_px = pos
            hit: tuple[float, int] | None = None
            if side > 0 and sl_px == sl_px and lo[x] <= sl_px:
                hit = min(o[x], sl_px) * (1.0 - slip), EXIT_STOP_LOSS
            elif side > 0 and tp_px == tp_px and h[x] >= tp_px:
                hit = max(o[x], tp_px), EXIT_TAKE_PROFIT
            elif side < 0 and sl_px == sl_px and h[x] >= sl_px:
                hit = max(o[x], sl_px) * (1.0 + slip), EXIT_STOP_LOSS
            elif side < 0 and tp_px == tp_px and lo[x] <= tp_px:
                hit = min(o[x], tp_px), EXIT_TAKE_PROFIT
            if hit is not None:
                drop_rest()  # what of the entry's rest filled exits too
                close(x, *hit)
                exiting = None  # a resting limit exit is cancelled first
        if x == n - 1:
            break
        # 3. the decision on this close (an entry's rest resting does not hold up an exit)
        if exiting is not None or (entering is not None and not (adds and pos is not None)):
            continue
        if pos is not None:
            long = pos[0] > 0
            if (xl[x] or es[x]) if long else (xs[x] or el[x]):
                drop_rest()
                exiting = (rest(not long, x) if limit_exit else None, x)
                if not limit_exit and (es[x] if long else el[x]):  # a reversal
                    side = -1 if long else 1
                    entering = (side, rest(side > 0, x) if limit_entry else None, x)
                    decided = x
                    size(x)
        else:
            side = 1 if el[x] else -1 if es[x] else requote_side
            if side:
                entering = (side, rest(side > 0, x) if limit_entry else None, x)
                decided = x
                size(x)
    if pos is not None:
        close(n - 1, c[n - 1] * (1.0 - pos[0] * slip), EXIT_END)
    return _book_rows(rows, set_id, settings)
