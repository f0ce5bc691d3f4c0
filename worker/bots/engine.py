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
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from worker.candles import Candle, timeframe_seconds
from worker.credits import TransferRequest
from worker.errors import Fatal, Retryable
from worker.exchanges import Order, OrderStatus, make_client_order_id
from worker.retry import retry

from . import credit_gate, protection
from .model import HUNDRED, BotConfig, BotState, InFlight, Position, StepOut, derived_id
from .paper import BotPaperExchange

log = logging.getLogger("tradefleet.bots.engine")

ZERO = Decimal(0)
ONE = Decimal(1)
PCT = Decimal("0.0001")


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


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def order_row(
    bot: BotState, order: Order, cid: str, reason: str, decided_at: datetime
) -> dict[str, Any]:
    """An ``orders`` row; ``decided_at`` is the open time of the candle whose close decided it."""
    fee = order.fee
    status = order.status.value if isinstance(order.status, OrderStatus) else str(order.status)
    return {
        "id": str(derived_id(cid, "order")),
        "bot_id": bot.id,
        "user_id": bot.config.user_id,
        "client_order_id": cid,
        "exchange_order_id": order.id,
        "exchange": bot.config.exchange,
        "symbol": bot.config.symbol,
        "side": order.side,
        "order_type": order.type,
        "amount": str(order.amount),
        "price": None if order.price is None else str(order.price),
        "stop_price": None if order.stop_price is None else str(order.stop_price),
        "filled": str(order.filled),
        "average_price": None if order.average is None else str(order.average),
        "fee": str(fee.cost) if fee else "0",
        "fee_currency": fee.currency if fee else None,
        "status": status,
        "reason": reason,
        "is_paper_trade": bot.config.is_paper,
        "lease_epoch": bot.epoch,
        "decided_at": _iso(decided_at),
    }


def _rollover(bot: BotState, when: datetime) -> None:
    if bot.day != when.date():
        bot.day, bot.day_pnl = when.date(), ZERO


def _open_trade(
    bot: BotState, order: Order, when: datetime, decided_at: datetime, out: StepOut
) -> None:
    cfg = bot.config
    price = order.average or order.price or ZERO
    fee = order.fee.cost if order.fee else ZERO
    entry_order = derived_id(order.client_order_id, "order")
    long = order.side == "buy"
    away = ONE if long else -ONE  # stop below a long's entry, above a short's; target opposite
    pos = Position(
        trade_id=derived_id(order.client_order_id, "trade"),
        amount=order.filled,
        entry_price=price,
        entry_cost=order.cost,
        entry_fee=fee,
        entry_time=when,
        entry_order_id=entry_order,
        stop_price=None if cfg.stop_loss is None else price * (ONE - away * cfg.stop_loss),
        take_price=None if cfg.take_profit is None else price * (ONE + away * cfg.take_profit),
        direction="long" if long else "short",
        decided_at=decided_at,
    )
    bot.position = pos
    out.trades.append(_trade_row(bot, pos, status="open"))
    verb = "bought" if long else "sold short"
    out.log(
        cfg,
        "info",
        f"{verb} {pos.amount} {cfg.symbol} at {price}",
        action="entry_filled",
        client_order_id=order.client_order_id,
    )


def _trade_row(bot: BotState, pos: Position, **extra: Any) -> dict[str, Any]:
    cfg = bot.config
    row: dict[str, Any] = {
        "id": str(pos.trade_id),
        "bot_id": cfg.id,
        "user_id": cfg.user_id,
        "exchange": cfg.exchange,
        "trading_pair": cfg.symbol,
        "side": "buy" if pos.long else "sell",
        "direction": pos.direction,
        "order_type": "market",
        "amount": str(pos.amount),
        "price": str(pos.entry_price),
        "exit_price": None,
        "fee": str(pos.entry_fee),
        "profit": "0",
        "profit_percentage": "0",
        "exit_reason": None,
        "entry_time": _iso(pos.entry_time),
        "exit_time": None,
        "entry_order_id": str(pos.entry_order_id),
        "exit_order_id": None,
        "is_paper_trade": cfg.is_paper,
        "stop_loss_price": None if pos.stop_price is None else str(pos.stop_price),
        "take_profit_price": None if pos.take_price is None else str(pos.take_price),
        "lease_epoch": bot.epoch,
        "metadata": {},
        "decided_at": _iso(pos.decided_at),
    }
    row.update(extra)
    return row


def _close_trade(bot: BotState, order: Order, reason: str, when: datetime, out: StepOut) -> None:
    pos = bot.position
    if pos is None:
        return
    cfg = bot.config
    exit_price = order.average or order.price or ZERO
    exit_fee = order.fee.cost if order.fee else ZERO
    invested = pos.entry_cost + pos.entry_fee  # the stake, either side
    if pos.long:
        profit = order.cost - exit_fee - invested
    else:  # sold at entry, bought back now
        profit = pos.entry_cost - pos.entry_fee - order.cost - exit_fee
    pct = (profit / invested * HUNDRED).quantize(PCT, ROUND_HALF_EVEN) if invested else ZERO
    out.trades.append(
        _trade_row(
            bot,
            pos,
            status="closed",
            exit_price=str(exit_price),
            fee=str(pos.entry_fee + exit_fee),
            profit=str(profit),
            profit_percentage=str(pct),
            exit_reason=reason,
            exit_time=_iso(when),
            exit_order_id=str(derived_id(order.client_order_id, "order")),
        )
    )
    bot.position = None
    bot.realized += profit
    _rollover(bot, when)
    bot.day_pnl += profit
    verb = "sold" if pos.long else "bought back"
    out.log(
        cfg,
        "info",
        f"{verb} {pos.amount} {cfg.symbol} at {exit_price} ({reason}), profit {profit}",
        action="exit_filled",
        exit_reason=reason,
        profit=str(profit),
    )
    limit = cfg.daily_loss_limit
    if limit is not None and bot.day_pnl <= -limit and not bot.halted:
        bot.halted = True
        out.status = "paused"
        out.status_reason = (
            f"daily loss limit reached: lost {-bot.day_pnl} {cfg.symbol.split('/')[1]} on "
            f"{when.date().isoformat()} (limit {limit})"
        )
        out.log(cfg, "warning", out.status_reason, action="daily_loss_limit")
        out.notify(cfg, "error", f"{cfg.name} paused", out.status_reason)


def _credit(op: Literal["post", "void"], flight: InFlight) -> TransferRequest | None:
    if flight.hold_id is None:
        return None
    settle = credit_gate.post if op == "post" else credit_gate.void
    return settle(flight.client_order_id, flight.hold_id)


async def apply_fills(bot: BotState, candle: Candle, out: StepOut) -> None:
    """Step 1: orders in flight that filled (or died) by this candle."""
    cfg = bot.config
    ex = bot.exchange
    changed: list[Order]
    if isinstance(ex, BotPaperExchange):
        changed = ex.on_candle(cfg.symbol, cfg.timeframe, candle)
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
        out.orders.append(order_row(bot, order, cid, flight.reason, flight.placed_at))
        if order.status is OrderStatus.CLOSED and order.filled > 0:
            op = _credit("post", flight)
            if flight.purpose == "entry":
                _open_trade(bot, order, candle.time, flight.placed_at, out)
            else:
                _close_trade(bot, order, flight.reason, candle.time, out)
        else:
            op = _credit("void", flight)
            out.log(
                cfg,
                "warning",
                f"{flight.purpose} order {order.status}: nothing traded",
                action="order_not_filled",
                client_order_id=cid,
            )
        if op:
            out.credits.append(op)


def _protective_exit(bot: BotState, hit: protection.Hit, candle: Candle, out: StepOut) -> None:
    """A protective order filled on the exchange: its fill is the trade's exit, at the
    fill's own price, commission and time."""
    order, reason = hit
    cid = order.client_order_id or ""
    out.orders.append(order_row(bot, order, cid, reason, candle.time))
    _close_trade(bot, order, reason, order.updated_at or candle.time, out)


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
        return
    pos = bot.position
    held = {p.kind for p in bot.protective.values()}
    stop = None if pos is None or "stop_loss" in held else pos.stop_price
    take = None if pos is None or "take_profit" in held else pos.take_price
    if pos is None or (stop is None and take is None):
        return
    if any(f.purpose == "exit" for f in bot.in_flight.values()):
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
    if level is None:
        return
    if (hit := await protection.cancel_all(bot, out, "exit")) is not None:
        _protective_exit(bot, hit, candle, out)
        return
    cfg = bot.config
    side: Literal["buy", "sell"] = "sell" if pos.long else "buy"
    cid = make_client_order_id(cfg.id, candle.time.isoformat(), reason)
    ex = bot.exchange
    if isinstance(ex, BotPaperExchange):
        if reason == "stop_loss":  # a market order: slippage against the trader
            level = level * (ONE - ex.slippage if pos.long else ONE + ex.slippage)
        order = await ex.fill_protective(
            cfg.symbol, side, pos.amount, level, cid, taker=reason == "stop_loss"
        )
    else:
        order = await _place(bot, side, pos.amount, cid, opening=False)
    out.orders.append(order_row(bot, order, cid, reason, candle.time))
    if order.status is OrderStatus.CLOSED:
        _close_trade(bot, order, reason, candle.time, out)
    else:
        bot.in_flight[cid] = InFlight(
            cid, derived_id(cid, "order"), "exit", side, pos.amount, reason, None, candle.time
        )


async def _place(bot: BotState, side: str, amount: Decimal, cid: str, *, opening: bool) -> Order:
    """A market order; on a live futures/swap market an entry carries the bot's leverage
    and an exit only reduces the position."""
    cfg = bot.config
    ex = bot.exchange
    leverage: int | None = None
    params: dict[str, Any] | None = None
    if not isinstance(ex, BotPaperExchange) and ex.market(cfg.symbol).contract:
        if opening:
            leverage = cfg.leverage
        else:
            params = {"reduceOnly": True}
    return await retry(
        lambda: ex.place_order_once(
            cfg.symbol,
            "buy" if side == "buy" else "sell",
            "market",
            amount,
            client_order_id=cid,
            leverage=leverage,
            params=params,
        ),
        attempts=4,
        describe=f"place order for bot {cfg.id}",
    )


def _fee_rate(bot: BotState) -> Decimal:
    ex = bot.exchange
    if isinstance(ex, BotPaperExchange) and ex.taker_fee is not None:
        return ex.taker_fee
    return ex.market(bot.config.symbol).taker


async def plan_decision(
    bot: BotState, decision: Decision, candle: Candle, out: StepOut
) -> EntryIntent | None:
    """Step 3: act on the decision of this close. Exits are placed at once; an entry comes
    back as an intent, to be placed after the credit hold (batched across bots)."""
    cfg = bot.config
    if bot.halted:
        return None
    pos = bot.position
    side: Literal["buy", "sell"]
    if pos is not None:
        if not decision.exits(pos) or bot.in_flight:
            return None
        if (hit := await protection.cancel_all(bot, out, "exit")) is not None:
            _protective_exit(bot, hit, candle, out)  # the exchange closed it first
            return None
        exit_side: Literal["buy", "sell"] = "sell" if pos.long else "buy"
        cid = make_client_order_id(cfg.id, candle.time.isoformat(), "exit")
        order = await _place(bot, exit_side, pos.amount, cid, opening=False)
        bot.in_flight[cid] = InFlight(
            cid,
            derived_id(cid, "order"),
            "exit",
            exit_side,
            pos.amount,
            "signal",
            None,
            candle.time,
        )
        out.orders.append(order_row(bot, order, cid, "signal", candle.time))
        if order.status is OrderStatus.CLOSED:  # live market orders fill at once
            bot.in_flight.pop(cid)
            _close_trade(bot, order, "signal", candle.time, out)
        if not (decision.enter_short if pos.long else decision.enter_long):
            return None
        side = "buy" if not pos.long else "sell"  # a reversal: the opposite entry, same fill
    else:
        if bot.in_flight:
            return None
        if decision.enter_long:
            side = "buy"
        elif decision.enter_short:
            side = "sell"
        else:
            if decision.short_blocked and cfg.allow_short:
                out.log(
                    cfg,
                    "warning",
                    f"short entry skipped: {cfg.symbol} on {cfg.exchange} is a spot "
                    "market and live bots short on futures/swap markets only",
                    action="short_skipped",
                )
            return None
    if cfg.max_open_trades < 1:
        return None
    balance = await bot.exchange.fetch_balance()
    quote = cfg.symbol.split("/")[1].split(":")[0]
    free = balance[quote].free if quote in balance else ZERO
    stake = cfg.stake_amount
    if cfg.sizing == "risk" and cfg.stop_loss:
        equity = cfg.initial_balance + bot.realized
        stake = equity * cfg.risk_percentage / HUNDRED / cfg.stop_loss
    stake = min(stake, free)
    if stake <= 0:
        out.log(cfg, "warning", f"no {quote} left to stake: entry skipped", action="entry_skipped")
        return None
    amount = stake / (ONE + _fee_rate(bot)) / candle.close
    amount = bot.exchange.amount_to_precision(cfg.symbol, amount)
    bot.exchange.check_order(cfg.symbol, side, "market", amount, candle.close)
    cid = make_client_order_id(cfg.id, candle.time.isoformat(), "entry")
    return EntryIntent(bot, candle, amount, cid, side)


async def place_entry(intent: EntryIntent, hold_id: Any, out: StepOut) -> None:
    """Place an entry whose credits are held (``hold_id``; None when the plan charges none)."""
    bot, cid = intent.bot, intent.client_order_id
    order = await _place(bot, intent.side, intent.amount, cid, opening=True)
    flight = InFlight(
        cid,
        derived_id(cid, "order"),
        "entry",
        intent.side,
        intent.amount,
        "signal",
        hold_id,
        intent.candle.time,
    )
    out.orders.append(order_row(bot, order, cid, "signal", intent.candle.time))
    if order.status is OrderStatus.CLOSED:
        _open_trade(bot, order, intent.candle.time, intent.candle.time, out)
        if (op := _credit("post", flight)) is not None:
            out.credits.append(op)
    elif order.is_open:
        bot.in_flight[cid] = flight
    elif (op := _credit("void", flight)) is not None:
        out.credits.append(op)


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


def idle(bot: BotState, decision: Decision) -> bool:
    """Without orders in flight: would this candle change nothing for the bot?"""
    pos = bot.position
    if pos is None:
        wants = (
            decision.enter_long
            or decision.enter_short
            or (decision.short_blocked and bot.config.allow_short)
        )
        return not wants or bot.halted
    return not decision.exits(pos) and pos.stop_price is None and pos.take_price is None
