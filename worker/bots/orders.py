"""Orders as traders place them: limit entries and exits, unfilled timeouts, partial fills,
fill notifications and each bot's equity.

- **Limit orders.** A bot whose ``entry_order_type`` (or ``exit_order_type``) is ``limit``
  places that side as a limit order at the deciding close moved by ``limit_offset`` in the
  trader's favour (a buy below the close, a sell above it), rounded to the market's tick.
  It fills by the paper exchange's rule, which the backtester shares: from the next candle
  on, a buy fills when the candle's low touches or goes through the limit, at the limit
  price (at the open when the candle opens through it); a sell when the high does.
- **Unfilled timeouts** (freqtrade's ``unfilledtimeout``): a limit order placed on the
  close of candle ``k`` with a timeout of ``n`` candles may fill in candles ``k+1 .. k+n``;
  still open after the fills of candle ``k+n`` it is cancelled (a timeout in minutes ends
  at the first candle close at or after it). Then ``timeout_action`` decides: ``cancel``
  gives up (an entry is skipped and its credit hold voided; an exit leaves the position
  open and managed: stops, targets and the next exit decision still apply), ``requote``
  places it again at the latest close with the same offset (an entry through the credit
  gate, as a new entry decided on that close). A cancel that races a fill keeps the fill:
  the exchange's final state of the order is what is recorded.
- **Giving up on limit exits** (freqtrade's ``exit_timeout_count``): after that many limit
  exits of one position timed out (whatever ``timeout_action``), the bot exits it at
  market on the close of the last timeout (it fills at the next open, as any market exit).
  The count is the position's own: a takeover recounts it from the cancelled limit exits
  recorded since its entry. 0 never gives up.
- **Partial fills** (on exchanges; on paper with ``metadata.paper_volume_share``, see
  ``worker.bots.paper``). An entry cancelled after part of it filled opens a position of the
  filled amount (its credit hold is posted: a trade happened; the exchange frees the funds
  it reserved for the rest). An exit that filled in part closes that part as its own trade
  and leaves the rest open and managed, with the entry's cost and fee split pro rata.
- **Equity.** Every step of a bot that holds a position (and every step that changed its
  result) records its realized and unrealised P&L and equity at the candle's close
  (``bot_equity``), in the step's transaction.
- **Fill notifications** go to owners who opted in (``profiles.preferences.notify_fills``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from worker.candles import Candle, timeframe_seconds
from worker.errors import Fatal
from worker.exchanges import Order, OrderStatus, make_client_order_id
from worker.retry import retry

from . import trades
from .model import BotState, InFlight, Position, StepOut, derived_id
from .order_settings import Purpose
from .paper import ROW_SCALE

ZERO = Decimal(0)
Side = Literal["buy", "sell"]


async def place(
    bot: BotState,
    purpose: Purpose,
    side: Side,
    amount: Decimal,
    cid: str,
    close: Decimal,
    *,
    opening: bool,
    fresh: bool = False,
) -> tuple[Order, Decimal | None]:
    """Place an entry or exit as the bot's settings say: a market order, or a limit order
    at ``close`` moved by the offset. Returns the order and its limit price (None: market).
    ``fresh``: see ``trades.place_market``."""
    cfg = bot.config
    if cfg.orders.kind(purpose) == "market":
        order = await trades.place_market(bot, side, amount, cid, opening=opening, fresh=fresh)
        return order, None
    price = bot.exchange.price_to_precision(cfg.symbol, cfg.orders.limit_price(side, close))
    order = await trades.place_market(
        bot, side, amount, cid, opening=opening, price=price, fresh=fresh
    )
    return order, price


async def _final(bot: BotState, flight: InFlight) -> Order | None:
    """Cancel a resting order; its final state (a fill that won the race included)."""
    cfg = bot.config
    ex = bot.exchange
    current = await retry(
        lambda: ex.fetch_order_by_client_id(flight.client_order_id, cfg.symbol),
        attempts=3,
        describe="fetch order",
    )
    if current is None or not current.is_open:
        return current
    final = await retry(
        lambda: ex.cancel_order(current.id, cfg.symbol), attempts=3, describe="cancel order"
    )
    if final.is_open:  # an exchange that answers a cancel with the order before it
        again = await ex.fetch_order_by_client_id(flight.client_order_id, cfg.symbol)
        final = again or replace(final, status=OrderStatus.CANCELED)
    return final


def record_fill(bot: BotState, flight: InFlight, order: Order, when: Any, out: StepOut) -> None:
    """An order in flight that filled, all of it or part (cancelled after a partial fill)."""
    if (op := trades.settle_hold("post", flight)) is not None:
        out.credits.append(op)
    if flight.purpose == "entry" and adds_to(bot, flight):
        trades.add_to_position(bot, order, out)
    elif flight.purpose == "entry":
        trades.open_trade(bot, order, when, flight.placed_at, out)
    elif bot.position is not None and order.filled < bot.position.amount:
        close_part(bot, order, flight.reason, when, out)
    else:
        trades.close_trade(bot, order, flight.reason, when, out)
    notify_fill(bot, order, flight.purpose, out)


def close_part(bot: BotState, order: Order, reason: str, when: Any, out: StepOut) -> None:
    """A partially filled exit: the filled part closes as its own trade; the rest stays
    open under the position's trade id, with cost and fee split pro rata."""
    pos = bot.position
    assert pos is not None
    # The rest as its row holds it (its amount at the entry price, its fee to 12 decimals),
    # so that a worker taking the bot over rebuilds the very same position; the part that
    # closes takes the difference.
    amount = pos.amount - order.filled
    rest_fee = (pos.entry_fee * amount / pos.amount).quantize(ROW_SCALE)
    rest = replace(pos, amount=amount, entry_cost=amount * pos.entry_price, entry_fee=rest_fee)
    part = replace(
        pos,
        trade_id=derived_id(order.client_order_id, "trade"),
        amount=order.filled,
        entry_cost=pos.entry_cost - rest.entry_cost,
        entry_fee=pos.entry_fee - rest_fee,
    )
    bot.position = part
    trades.close_trade(bot, order, reason, when, out)
    bot.position = rest
    out.resized.append(
        {
            "id": str(rest.trade_id),
            "bot_id": bot.id,
            "lease_epoch": bot.epoch,
            "amount": str(rest.amount),
            "fee": str(rest.entry_fee),
        }
    )
    out.log(
        bot.config,
        "info",
        f"exit filled in part: {order.filled} of {pos.amount} {bot.config.symbol}, "
        f"{rest.amount} stays open",
        action="exit_partial",
        client_order_id=order.client_order_id,
    )


async def expire(bot: BotState, candle: Candle, out: StepOut) -> None:
    """Cancel the limit orders whose timeout ended with this candle (after its fills);
    re-quote them when the bot says so (an entry: ``bot.requote``, placed by the decision
    step through the credit gate; an exit: placed again now)."""
    cfg = bot.config
    tf = timeframe_seconds(cfg.timeframe)
    for cid, flight in list(bot.in_flight.items()):
        if flight.price is None:
            continue
        n = cfg.orders.timeout_candles(flight.purpose, tf)
        if candle.time < flight.placed_at + timedelta(seconds=tf * n):
            continue
        order = await _final(bot, flight)
        bot.in_flight.pop(cid)
        if order is not None:
            out.orders.append(trades.order_row(bot, order, cid, flight.reason, flight.placed_at))
        if order is not None and order.filled > 0:
            record_fill(bot, flight, order, candle.time, out)
            if order.status is OrderStatus.CLOSED:
                continue  # it filled before the cancel reached it
        elif (op := trades.settle_hold("void", flight)) is not None:
            out.credits.append(op)
        unit = "candle" if cfg.orders.timeout_unit == "candles" else "minute"
        timeout = cfg.orders.entry_timeout if flight.purpose == "entry" else cfg.orders.exit_timeout
        again = cfg.orders.requote and not bot.halted
        if flight.purpose == "exit" and (pos := bot.position) is not None:
            bot.position = pos = replace(pos, exit_timeouts=pos.exit_timeouts + 1)
            if 0 < cfg.orders.exit_timeout_count <= pos.exit_timeouts:
                await _exit_at_market(bot, flight, candle, out)
                continue
        out.log(
            cfg,
            "info",
            f"limit {flight.purpose} at {flight.price} unfilled after {timeout} {unit}(s): "
            + ("cancelled, re-quoted" if again else "cancelled"),
            action="order_timeout",
            client_order_id=cid,
            filled=str(order.filled if order is not None else ZERO),
        )
        if not again:
            continue
        if flight.purpose == "entry":
            if bot.position is None:
                bot.requote = flight.side
            elif order is not None and order.filled > 0:  # the rest, at the new price
                await _requote_entry_rest(bot, flight, order, candle, out)
        elif bot.position is not None:
            await _requote_exit(bot, flight, candle, out)


async def _exit_at_market(bot: BotState, flight: InFlight, candle: Candle, out: StepOut) -> None:
    """``exit_timeout_count`` limit exits of the position timed out: exit at market now."""
    pos = bot.position
    assert pos is not None
    cfg = bot.config
    cid = make_client_order_id(cfg.order_key, candle.time.isoformat(), "exit")
    order = await trades.place_market(bot, flight.side, pos.amount, cid, opening=False)
    out.orders.append(trades.order_row(bot, order, cid, flight.reason, candle.time))
    out.log(
        cfg,
        "info",
        f"limit exit unfilled {pos.exit_timeouts} time(s) (exit_timeout_count): exiting at market",
        action="exit_timeout_market",
        client_order_id=cid,
    )
    again = InFlight(
        cid, derived_id(cid, "order"), "exit", flight.side, pos.amount, flight.reason, None,
        candle.time,
    )  # fmt: skip
    if order.is_open:
        bot.in_flight[cid] = again
    elif order.filled > 0:
        record_fill(bot, again, order, candle.time, out)


def adds_to(bot: BotState, flight: InFlight) -> bool:
    """Is this entry the re-quoted rest of the open position's entry (its fill adds to it)?"""
    pos = bot.position
    return flight.adds and pos is not None and flight.side == ("buy" if pos.long else "sell")


def rest_id(bot: BotState, candle_time: datetime) -> str:
    """The client order id of an entry's rest re-quoted on the close of ``candle_time``."""
    return make_client_order_id(bot.config.order_key, candle_time.isoformat(), "entry-rest")


async def _requote_entry_rest(
    bot: BotState, flight: InFlight, order: Order, candle: Candle, out: StepOut
) -> None:
    """An entry that timed out partly filled, with ``requote``: the filled part is the
    position and the rest is placed again at the new price (its stake: the rest at its old
    price), as a limit order with the same timeout; its fills add to the position. A rest
    below the market's rules is not placed (logged)."""
    cfg, ex = bot.config, bot.exchange
    assert flight.price is not None
    price = ex.price_to_precision(cfg.symbol, cfg.orders.limit_price(flight.side, candle.close))
    stake = (flight.amount - order.filled) * flight.price
    try:
        amount = ex.amount_to_precision(cfg.symbol, stake / price)
        ex.check_order(cfg.symbol, flight.side, "limit", amount, price)
    except Fatal as e:
        out.log(
            cfg,
            "info",
            f"the rest of the entry is not re-quoted: {e}",
            action="entry_rest_skipped",
            client_order_id=flight.client_order_id,
        )
        return
    cid = rest_id(bot, candle.time)
    placed = await trades.place_market(bot, flight.side, amount, cid, opening=True, price=price)
    out.orders.append(trades.order_row(bot, placed, cid, flight.reason, candle.time))
    again = InFlight(
        cid, derived_id(cid, "order"), "entry", flight.side, amount, flight.reason, None,
        candle.time, price, adds=True,
    )  # fmt: skip
    if placed.is_open:
        bot.in_flight[cid] = again
    elif placed.filled > 0:
        record_fill(bot, again, placed, candle.time, out)


async def _cancel_flights(
    bot: BotState, when: datetime, out: StepOut, which: Callable[[InFlight], bool]
) -> None:
    """Cancel the orders in flight that ``which`` picks; what of each filled first is
    recorded."""
    for cid, flight in list(bot.in_flight.items()):
        if not which(flight):
            continue
        order = await _final(bot, flight)
        bot.in_flight.pop(cid)
        if order is None:
            continue
        out.orders.append(trades.order_row(bot, order, cid, flight.reason, flight.placed_at))
        if order.filled > 0:
            record_fill(bot, flight, order, when, out)


async def cancel_entry_rest(bot: BotState, when: datetime, out: StepOut) -> None:
    """The position exits (a stop, a target, a decision, its owner): an entry's rest still
    resting is cancelled first, what of it filled added to the position."""
    await _cancel_flights(bot, when, out, lambda flight: flight.adds)


async def _requote_exit(bot: BotState, flight: InFlight, candle: Candle, out: StepOut) -> None:
    pos = bot.position
    assert pos is not None
    cid = make_client_order_id(bot.config.order_key, candle.time.isoformat(), "exit")
    order, price = await place(
        bot, "exit", flight.side, pos.amount, cid, candle.close, opening=False
    )
    out.orders.append(trades.order_row(bot, order, cid, flight.reason, candle.time))
    again = InFlight(
        cid, derived_id(cid, "order"), "exit", flight.side, pos.amount, flight.reason, None,
        candle.time, price,
    )  # fmt: skip
    if order.status is OrderStatus.CLOSED or (not order.is_open and order.filled > 0):
        record_fill(bot, again, order, candle.time, out)
    elif order.is_open:
        bot.in_flight[cid] = again


async def cancel_resting_exits(bot: BotState, when: datetime, out: StepOut) -> bool:
    """A stop, a target or the owner is about to close the position: cancel the limit
    exits resting for it (a part that filled first is recorded). False when the position
    is closed."""
    await _cancel_flights(
        bot, when, out, lambda flight: flight.purpose == "exit" and flight.price is not None
    )
    return bot.position is not None


def notify_fill(bot: BotState, order: Order, purpose: Purpose, out: StepOut) -> None:
    cfg = bot.config
    if not cfg.orders.notify_fills:
        return
    price = order.average or order.price
    verb = "bought" if order.side == "buy" else "sold"
    out.notify(
        cfg,
        "fill",
        f"{cfg.name}: {purpose} filled",
        f"{verb} {order.filled} {cfg.symbol} at {price}",
        client_order_id=order.client_order_id,
        side=order.side,
        amount=str(order.filled),
        price=None if price is None else str(price),
        fee=None if order.fee is None else str(order.fee.cost),
    )


def equity_row(bot: BotState, candle: Candle) -> dict[str, Any]:
    """The bot's result at this candle's close: realized, unrealised (the open position
    marked at the close, net of its entry fee) and equity over the initial balance."""
    cfg = bot.config
    pos: Position | None = bot.position
    unrealized = ZERO
    amount = ZERO
    if pos is not None:
        value = pos.amount * candle.close
        unrealized = (
            value - pos.entry_cost - pos.entry_fee
            if pos.long
            else pos.entry_cost - pos.entry_fee - value
        )
        amount = pos.amount if pos.long else -pos.amount
    return {
        "bot_id": bot.id,
        "user_id": cfg.user_id,
        "candle_at": candle.time.isoformat(),
        "price": str(candle.close),
        "position_amount": str(amount),
        "unrealized_pnl": str(unrealized),
        "realized_pnl": str(bot.realized),
        "equity": str(cfg.initial_balance + bot.realized + unrealized),
        "lease_epoch": bot.epoch,
    }
