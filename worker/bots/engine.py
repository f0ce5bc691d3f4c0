"""One bot, one closed candle: fills, stop-loss/take-profit, then the strategy's decision.

The order of a step follows the backtester's fill rules, so a backtest predicts the bot:

1. Orders placed at the previous close fill at this candle's open (paper: ``on_candle``;
   live: the exchange reports the fill) and open or close trades.
2. A stop-loss or take-profit touched inside this candle closes the position at its price
   (at the open if the candle gapped through it), the stop first when both were touched.
   A level a live bot rests on the exchange (``protection``) is the exchange's: its fill,
   when the exchange reports one, is the exit.
3. The decision taken on this candle's close (``Signals.at(-1)``) places a market order
   that fills at the next candle's open: an exit when a position is open, else an entry
   (after risk checks and a credit hold).

Shorts (bots with ``allow_short`` that can hold one: a paper margin account, or a live
futures/swap market) follow the backtester too: a short sells and buys back, its stop is
above the entry and its target below, and an entry of the opposite side while a position
is open is a reversal: the exit and the new entry are placed on the same close and fill on
the same open, the exit first. A live bot on a spot market does not short: its short
entries are skipped and logged.

Every order has a client order id derived from the bot, the candle and the leg, so
repeating a step (a retry, or another worker after a takeover) finds the order already
placed instead of placing a second one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from worker.candles import Candle, timeframe_seconds
from worker.errors import Fatal, Retryable
from worker.exchanges import Order, OrderStatus, make_client_order_id
from worker.retry import retry
from worker.strategies.slots import TRADABLE

from . import balances, credit_gate, orders, protection, trades
from .model import HUNDRED, BotConfig, BotState, InFlight, Position, StepOut, derived_id
from .paper import BotPaperExchange

log = logging.getLogger("tradefleet.bots.engine")

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Decision:
    enter_long: bool
    exit_long: bool
    enter_short: bool = False
    exit_short: bool = False
    short_blocked: bool = False  # a short entry the bot may not take (long-only decisions)

    @classmethod
    def from_signal(cls, sig: dict[str, Any], shorts: bool = False) -> Decision:
        el, xl = bool(sig["enter_long"]), bool(sig["exit_long"])
        es, xs = bool(sig.get("enter_short")), bool(sig.get("exit_short"))
        # Conflicting decisions on one candle cancel (as in the backtester's ``_clean``).
        if not shorts:
            return cls(
                enter_long=el and not xl,
                exit_long=xl and not el,
                short_blocked=es and not xs and not el,
            )
        return cls(
            enter_long=el and not xl and not es,
            exit_long=xl and not el,
            enter_short=es and not xs and not el,
            exit_short=xs and not es,
        )

    def exits(self, pos: Position) -> bool:
        """Does this decision close ``pos`` (an exit of its side, or a reversal)?"""
        return (
            (self.exit_long or self.enter_short)
            if pos.long
            else (self.exit_short or self.enter_long)
        )


@dataclass(frozen=True, slots=True)
class EntryIntent:
    bot: BotState
    candle: Candle
    amount: Decimal
    client_order_id: str
    side: Literal["buy", "sell"] = "buy"  # sell: a short


async def apply_fills(bot: BotState, candle: Candle, out: StepOut) -> None:
    """Step 1: orders in flight that filled (or died) by this candle."""
    cfg = bot.config
    ex = bot.exchange
    changed: list[Order]
    if isinstance(ex, BotPaperExchange):
        changed = ex.on_candle(cfg.symbol, cfg.timeframe, candle)
        for part in ex.partly_filled:  # recorded with the step: a takeover resumes the rest
            flight = bot.in_flight.get(part.client_order_id or "")
            if flight is not None and part.filled > 0:
                row = trades.order_row(
                    bot, part, flight.client_order_id, flight.reason, flight.placed_at
                )
                out.orders.append(row)
    else:
        changed = []
        for flight in list(bot.in_flight.values()):
            o = await retry(
                lambda f=flight: ex.fetch_order_by_client_id(f.client_order_id, cfg.symbol),  # type: ignore[misc]
                attempts=3,
                describe="fetch order",
            )
            if o is not None and not o.is_open:
                changed.append(o)

    # A reversal fills its exit and its new entry on the same open: the exit first.
    def exit_first(o: Order) -> bool:
        flight = bot.in_flight.get(o.client_order_id or "")
        return flight is None or flight.purpose != "exit"

    changed.sort(key=exit_first)
    for order in changed:
        cid = order.client_order_id
        if cid is None or cid not in bot.in_flight:
            continue
        flight = bot.in_flight.pop(cid)
        out.orders.append(trades.order_row(bot, order, cid, flight.reason, flight.placed_at))
        if order.filled > 0:  # all of it, or part of it before it was cancelled
            orders.record_fill(bot, flight, order, candle.time, out)
            continue
        if (op := trades.settle_hold("void", flight)) is not None:
            out.credits.append(op)
        out.log(
            cfg,
            "warning",
            f"{flight.purpose} order {order.status}: nothing traded",
            action="order_not_filled",
            client_order_id=cid,
        )
    await orders.expire(bot, candle, out)  # limit orders whose timeout ended


def _protective_exit(bot: BotState, hit: protection.Hit, candle: Candle, out: StepOut) -> None:
    """A protective order filled on the exchange: its fill is the trade's exit, at the
    fill's own price, commission and time."""
    order, reason = hit
    cid = order.client_order_id or ""
    out.orders.append(trades.order_row(bot, order, cid, reason, candle.time))
    trades.close_trade(bot, order, reason, order.updated_at or candle.time, out)


async def protect(bot: BotState, candle: Candle, out: StepOut) -> None:
    """After a step: the exchange holds the open position's stop (and target)."""
    hit = await protection.sync(bot, candle, out)
    if hit is not None:
        _protective_exit(bot, hit, candle, out)
        await protection.sync(bot, candle, out)


async def apply_stops(bot: BotState, candle: Candle, out: StepOut) -> None:
    """Step 2: stop-loss / take-profit touched inside this candle (the levels the exchange
    holds for a live bot are the exchange's: their fill is the exit)."""
    if (hit := await protection.poll(bot, out)) is not None:
        _protective_exit(bot, hit, candle, out)
        await protection.cancel_all(bot, out, "exit")
        await orders.cancel_entry_rest(bot, candle.time, out)
        return
    pos = bot.position
    held = {p.kind for p in bot.protective.values()}
    stop = None if pos is None or "stop_loss" in held else pos.stop_price
    take = None if pos is None or "take_profit" in held else pos.take_price
    if pos is None or (stop is None and take is None):
        return
    if any(f.purpose == "exit" and f.price is None for f in bot.in_flight.values()):
        return  # the exit order fills at the next open; stops covered until this candle
    level: Decimal | None = None
    if pos.long:
        if stop is not None and candle.low <= stop:
            level, reason = min(candle.open, stop), "stop_loss"
        elif take is not None and candle.high >= take:
            level, reason = max(candle.open, take), "take_profit"
    elif stop is not None and candle.high >= stop:
        level, reason = max(candle.open, stop), "stop_loss"
    elif take is not None and candle.low <= take:
        level, reason = min(candle.open, take), "take_profit"
    if level is None or not await orders.cancel_resting_exits(bot, candle.time, out):
        return
    await orders.cancel_entry_rest(bot, candle.time, out)  # what of it filled exits too
    if (pos := bot.position) is None:
        return
    if (hit := await protection.cancel_all(bot, out, "exit")) is not None:
        _protective_exit(bot, hit, candle, out)
        return
    cfg = bot.config
    side: Literal["buy", "sell"] = "sell" if pos.long else "buy"
    cid = make_client_order_id(cfg.order_key, candle.time.isoformat(), reason)
    ex = bot.exchange
    if isinstance(ex, BotPaperExchange):
        if reason == "stop_loss":  # a market order: slippage against the trader
            level = level * (ONE - ex.slippage if pos.long else ONE + ex.slippage)
        order = await ex.fill_protective(
            cfg.symbol, side, pos.amount, level, cid, taker=reason == "stop_loss"
        )
    else:
        fresh = trades.never_sent(bot, candle.time)
        order = await trades.place_market(bot, side, pos.amount, cid, opening=False, fresh=fresh)
    out.orders.append(trades.order_row(bot, order, cid, reason, candle.time))
    if order.status is OrderStatus.CLOSED:
        trades.close_trade(bot, order, reason, candle.time, out)
    else:
        bot.in_flight[cid] = InFlight(
            cid, derived_id(cid, "order"), "exit", side, pos.amount, reason, None, candle.time
        )


async def plan_decision(
    bot: BotState, decision: Decision, candle: Candle, out: StepOut
) -> EntryIntent | None:
    """Step 3: act on the decision of this close. Exits are placed at once; an entry comes
    back as an intent, to be placed after the credit hold (batched across bots)."""
    cfg = bot.config
    requote, bot.requote = bot.requote, None
    if bot.halted:
        return None
    pos = bot.position
    side: Literal["buy", "sell"]
    if pos is not None:
        if not decision.exits(pos) or any(not f.adds for f in bot.in_flight.values()):
            return None
        await orders.cancel_entry_rest(bot, candle.time, out)  # what of it filled exits too
        if (pos := bot.position) is None:
            return None
        if (hit := await protection.cancel_all(bot, out, "exit")) is not None:
            _protective_exit(bot, hit, candle, out)  # the exchange closed it first
            return None
        exit_side: Literal["buy", "sell"] = "sell" if pos.long else "buy"
        cid = make_client_order_id(cfg.order_key, candle.time.isoformat(), "exit")
        order, price = await orders.place(
            bot, "exit", exit_side, pos.amount, cid, candle.close, opening=False,
            fresh=trades.never_sent(bot, candle.time),
        )  # fmt: skip
        bot.in_flight[cid] = flight = InFlight(
            cid,
            derived_id(cid, "order"),
            "exit",
            exit_side,
            pos.amount,
            "signal",
            None,
            candle.time,
            price,
        )
        out.orders.append(trades.order_row(bot, order, cid, "signal", candle.time))
        if not order.is_open:  # live market orders fill at once
            bot.in_flight.pop(cid)
            if order.filled > 0:
                orders.record_fill(bot, flight, order, candle.time, out)
        if not (decision.enter_short if pos.long else decision.enter_long) or price is not None:
            return None  # a limit exit may not fill: no reversal on its close
        side = "buy" if not pos.long else "sell"  # a reversal: the opposite entry, same fill
    else:
        if bot.in_flight:
            return None
        if decision.enter_long:
            side = "buy"
        elif decision.enter_short:
            side = "sell"
        elif requote is not None:  # a limit entry timed out on this close: placed again
            side = requote
        else:
            if decision.short_blocked and cfg.allow_short:
                short_skipped(bot, out)
            return None
    if cfg.max_open_trades < 1:
        return None
    balance = await balances.balance(bot, candle.time)  # one read per account and close
    quote = cfg.symbol.split("/")[1].split(":")[0]
    free = balance[quote].free if quote in balance else ZERO
    stake = cfg.stake_amount
    if cfg.sizing == "risk" and cfg.stop_loss:
        equity = cfg.initial_balance + bot.realized
        stake = equity * cfg.risk_percentage / HUNDRED / cfg.stop_loss
    elif cfg.sizing == "unlimited":
        stake = free * TRADABLE  # one position: the tradable part of what is available
    stake = min(stake, free)
    if stake <= 0:
        out.log(cfg, "warning", f"no {quote} left to stake: entry skipped", action="entry_skipped")
        return None
    price = candle.close
    if cfg.orders.entry_type == "limit":
        price = cfg.orders.limit_price(side, price)
    amount = stake / (ONE + trades.fee_rate(bot)) / price
    amount = bot.exchange.amount_to_precision(cfg.symbol, amount)
    bot.exchange.check_order(cfg.symbol, side, "market", amount, candle.close)
    cid = make_client_order_id(cfg.order_key, candle.time.isoformat(), "entry")
    return EntryIntent(bot, candle, amount, cid, side)


async def place_entry(intent: EntryIntent, hold_id: Any, out: StepOut) -> None:
    """Place an entry whose credits are held (``hold_id``; None when the plan charges none)."""
    bot, cid = intent.bot, intent.client_order_id
    order, price = await orders.place(
        bot, "entry", intent.side, intent.amount, cid, intent.candle.close, opening=True,
        fresh=trades.never_sent(bot, intent.candle.time),
    )  # fmt: skip
    flight = InFlight(
        cid,
        derived_id(cid, "order"),
        "entry",
        intent.side,
        intent.amount,
        "signal",
        hold_id,
        intent.candle.time,
        price,
    )
    out.orders.append(trades.order_row(bot, order, cid, "signal", intent.candle.time))
    if not order.is_open and order.filled > 0:
        orders.record_fill(bot, flight, order, intent.candle.time, out)
    elif order.is_open:
        bot.in_flight[cid] = flight
    elif (op := trades.settle_hold("void", flight)) is not None:
        out.credits.append(op)


def short_skipped(bot: BotState, out: StepOut) -> None:
    """A short entry on a live spot market: not taken, logged."""
    cfg = bot.config
    out.log(
        cfg,
        "warning",
        f"short entry skipped: {cfg.symbol} on {cfg.exchange} is a spot "
        "market and live bots short on futures/swap markets only",
        action="short_skipped",
    )


def no_credits(intent: EntryIntent, out: StepOut) -> None:
    """The owner's credits could not hold the entry: skipped, logged and notified."""
    cfg = intent.bot.config
    out.log(
        cfg,
        "warning",
        "not enough credits for a trade: entry skipped",
        action="no_credits",
        client_order_id=intent.client_order_id,
    )
    out.notify(
        cfg,
        "low_credits",
        "Out of credits",
        f"{cfg.name} skipped a trade because your credits ran out.",
    )


async def enter(intent: EntryIntent, hold_id: Any, out: StepOut) -> None:
    """Place an entry whose credits are held, then its protective orders; a failure voids
    the hold and is logged on the bot (an exchange unavailable) or stops it."""
    try:
        await place_entry(intent, hold_id, out)
        await protect(intent.bot, intent.candle, out)
    except Exception as e:
        if hold_id:
            out.credits.append(credit_gate.void(intent.client_order_id, hold_id))
        if isinstance(e, Retryable):
            out.log(
                intent.bot.config,
                "warning",
                f"entry not placed, exchange unavailable: {e}",
                action="entry_failed",
            )
        else:
            fail(intent.bot, e, out)


def fail(bot: BotState, error: Exception, out: StepOut) -> None:
    """A fatal error for this bot: it goes to ``error`` with a message its owner can act on."""
    cfg = bot.config
    message = str(error) or type(error).__name__
    if not isinstance(error, Fatal | Retryable):
        message = f"internal error: {message}"
    bot.halted = True
    out.status, out.error_message = "error", message[:1000]
    out.status_reason = "stopped by an error"
    out.log(cfg, "error", message, action="bot_error")
    out.notify(cfg, "error", f"{cfg.name} stopped", message)
    log.warning("bot error", extra={"bot_id": cfg.id, "action": "bot_error", "error": message})


def candle_close(candle: Candle, timeframe: str) -> datetime:
    return candle.time + timedelta(seconds=timeframe_seconds(timeframe))


def fee_for(cfg: BotConfig) -> Decimal | None:
    return cfg.fee


def missed_entry(intent: EntryIntent, out: StepOut) -> None:
    """A live bot replaying a missed candle cannot trade in the past: log the entry."""
    cfg = intent.bot.config
    when = intent.candle.time.isoformat()
    out.log(
        cfg,
        "warning",
        f"entry decided on the candle of {when} missed: the bot was not running at that "
        "close, and a live bot does not trade in the past",
        action="missed_entry",
        candle=when,
        reason="not running at that close (catch-up after a gap)",
        client_order_id=intent.client_order_id,
    )


def idle(bot: BotState, decision: Decision, candle: Candle | None = None) -> bool:
    """Without orders in flight: would this candle change nothing for the bot? A position
    with a stop-loss or take-profit is idle when ``candle`` touches neither level and
    nothing else can move them (a paper bot's levels, no trailing stop, none to record)."""
    pos = bot.position
    if pos is None:
        wants = (
            decision.enter_long
            or decision.enter_short
            or (decision.short_blocked and bot.config.allow_short)
        )
        return not wants or bot.halted
    if decision.exits(pos):
        return False
    stop, take = pos.stop_price, pos.take_price
    if stop is None and take is None:
        return True
    if (
        candle is None
        or bot.protective
        or bot.stops_moved
        or bot.config.trailing_stop
        or not isinstance(bot.exchange, BotPaperExchange)
    ):
        return False
    if pos.long:  # apply_stops' tests, none of them true
        return (stop is None or candle.low > stop) and (take is None or candle.high < take)
    return (stop is None or candle.high < stop) and (take is None or candle.low > take)
