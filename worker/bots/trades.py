"""A bot's orders and trades as rows: opening and closing a trade from a filled order,
settling an entry's credit hold, and placing a market order with the market's rules.

Shared by the candle step (``engine``), position requests (``requests``) and recovery.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from worker.candles import timeframe_seconds
from worker.credits import TransferRequest
from worker.exchanges import Order, OrderStatus
from worker.retry import retry

from . import credit_gate
from .model import HUNDRED, BotConfig, BotState, InFlight, Position, StepOut, derived_id
from .paper import ROW_SCALE, BotPaperExchange

ZERO = Decimal(0)
ONE = Decimal(1)
PCT = Decimal("0.0001")


def iso(t: datetime | None) -> str | None:
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
        "decided_at": iso(decided_at),
    }


def rollover(bot: BotState, when: datetime) -> None:
    if bot.day != when.date():
        bot.day, bot.day_pnl = when.date(), ZERO


def levels(cfg: BotConfig, price: Decimal, long: bool) -> tuple[Decimal | None, Decimal | None]:
    """The stop-loss and take-profit of a position entered at ``price``: the stop below a
    long's entry and above a short's, the target on the other side."""
    away = ONE if long else -ONE
    stop = None if cfg.stop_loss is None else price * (ONE - away * cfg.stop_loss)
    take = None if cfg.take_profit is None else price * (ONE + away * cfg.take_profit)
    return stop, take


def open_trade(
    bot: BotState, order: Order, when: datetime, decided_at: datetime, out: StepOut
) -> None:
    cfg = bot.config
    price = order.average or order.price or ZERO
    fee = order.fee.cost if order.fee else ZERO
    entry_order = derived_id(order.client_order_id, "order")
    long = order.side == "buy"
    stop, take = levels(cfg, price, long)
    pos = Position(
        trade_id=derived_id(order.client_order_id, "trade"),
        amount=order.filled,
        entry_price=price,
        entry_cost=order.cost,
        entry_fee=fee,
        entry_time=when,
        entry_order_id=entry_order,
        stop_price=stop,
        take_price=take,
        direction="long" if long else "short",
        decided_at=decided_at,
    )
    bot.position = pos
    out.trades.append(trade_row(bot, pos, status="open"))
    verb = "bought" if long else "sold short"
    out.log(
        cfg,
        "info",
        f"{verb} {pos.amount} {cfg.symbol} at {price}",
        action="entry_filled",
        client_order_id=order.client_order_id,
    )


def add_to_position(bot: BotState, order: Order, out: StepOut) -> None:
    """A fill of the re-quoted rest of the position's entry: the position grows, its entry
    price is the average of its fills, its fees add up, and its stop-loss and take-profit
    follow the new entry price (a trailing stop keeps a level it reached)."""
    pos, cfg = bot.position, bot.config
    assert pos is not None
    amount = pos.amount + order.filled
    # The average as the trade's row holds it (12 decimals), and the cost a worker taking
    # the bot over rebuilds from that row: its profit is then the same either way.
    price = ((pos.entry_cost + order.cost) / amount).quantize(ROW_SCALE)
    cost = amount * price
    stop, take = levels(cfg, price, pos.long)
    if cfg.trailing_stop and stop is not None and pos.stop_price is not None:
        stop = max(stop, pos.stop_price) if pos.long else min(stop, pos.stop_price)
    fee = pos.entry_fee + (order.fee.cost if order.fee else ZERO)
    bot.position = replace(
        pos,
        amount=amount,
        entry_cost=cost,
        entry_price=price,
        entry_fee=fee,
        stop_price=stop,
        take_price=take,
    )
    bot.stops_moved = True
    out.resized.append(
        {
            "id": str(pos.trade_id),
            "bot_id": bot.id,
            "lease_epoch": bot.epoch,
            "amount": str(amount),
            "fee": str(fee),
            "price": str(price),
        }
    )
    out.log(
        cfg,
        "info",
        f"entry rest filled: {order.filled} {cfg.symbol} added, {amount} at {price} on average",
        action="entry_added",
        client_order_id=order.client_order_id,
    )


def trade_row(bot: BotState, pos: Position, **extra: Any) -> dict[str, Any]:
    cfg = bot.config
    row: dict[str, Any] = {
        "id": str(pos.trade_id),
        "bot_id": cfg.id,
        "user_id": cfg.user_id,
        "exchange": cfg.exchange,
        "trading_pair": cfg.symbol,
        "side": "buy" if pos.long else "sell",
        "direction": pos.direction,
        "order_type": cfg.orders.entry_type,
        "amount": str(pos.amount),
        "price": str(pos.entry_price),
        "exit_price": None,
        "fee": str(pos.entry_fee),
        "profit": "0",
        "profit_percentage": "0",
        "exit_reason": None,
        "entry_time": iso(pos.entry_time),
        "exit_time": None,
        "entry_order_id": str(pos.entry_order_id),
        "exit_order_id": None,
        "is_paper_trade": cfg.is_paper,
        "stop_loss_price": None if pos.stop_price is None else str(pos.stop_price),
        "take_profit_price": None if pos.take_price is None else str(pos.take_price),
        "lease_epoch": bot.epoch,
        "metadata": {},
        "decided_at": iso(pos.decided_at),
    }
    row.update(extra)
    return row


def close_trade(bot: BotState, order: Order, reason: str, when: datetime, out: StepOut) -> None:
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
    # As the trade's row holds it: the realized profit a worker taking the bot over sums
    # from the rows is then the one this worker adds up.
    profit = profit.quantize(ROW_SCALE, ROUND_HALF_EVEN)
    pct = (profit / invested * HUNDRED).quantize(PCT, ROUND_HALF_EVEN) if invested else ZERO
    out.trades.append(
        trade_row(
            bot,
            pos,
            status="closed",
            exit_price=str(exit_price),
            fee=str(pos.entry_fee + exit_fee),
            profit=str(profit),
            profit_percentage=str(pct),
            exit_reason=reason,
            exit_time=iso(when),
            exit_order_id=str(derived_id(order.client_order_id, "order")),
        )
    )
    bot.position = None
    bot.realized += profit
    rollover(bot, when)
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


def settle_hold(op: Literal["post", "void"], flight: InFlight) -> TransferRequest | None:
    if flight.hold_id is None:
        return None
    settle = credit_gate.post if op == "post" else credit_gate.void
    return settle(flight.client_order_id, flight.hold_id)


def never_sent(bot: BotState, decided_at: datetime) -> bool:
    """Can no order decided on the candle opening at ``decided_at`` be on the exchange yet?

    True for a live bot's candle that closed after this worker loaded the bot: only the
    lease holder steps a bot, and a step that failed is retried by a bot loaded again (a
    later ``loaded_at``). Orders of such candles are placed without a lookup first; any
    other (a candle a previous owner may have stepped, an owner's request) is looked up."""
    loaded = bot.loaded_at
    if loaded is None or bot.config.is_paper:
        return False
    return decided_at + timedelta(seconds=timeframe_seconds(bot.config.timeframe)) > loaded


async def place_market(
    bot: BotState,
    side: str,
    amount: Decimal,
    cid: str,
    *,
    opening: bool,
    price: Decimal | None = None,
    fresh: bool = False,
) -> Order:
    """A market order (a limit order at ``price`` when given); on a live futures/swap
    market an entry carries the bot's leverage and an exit only reduces the position.

    ``fresh`` (``never_sent``): the first attempt posts without looking the id up first;
    a refused or unanswered post, and every retry, looks it up."""
    cfg = bot.config
    ex = bot.exchange
    leverage: int | None = None
    params: dict[str, Any] | None = None
    if not isinstance(ex, BotPaperExchange) and ex.market(cfg.symbol).contract:
        if opening:
            leverage = cfg.leverage
        else:
            params = {"reduceOnly": True}
    symbol = cfg.symbol
    order_side: Literal["buy", "sell"] = "buy" if side == "buy" else "sell"
    order_type: Literal["market", "limit"] = "market" if price is None else "limit"
    lookup_first = not fresh  # every retry looks the id up

    async def once() -> Order:
        nonlocal lookup_first
        first, lookup_first = lookup_first, True
        return await ex.place_order_once(
            symbol, order_side, order_type, amount, price,
            client_order_id=cid, leverage=leverage, params=params, lookup_first=first,
        )  # fmt: skip

    return await retry(once, attempts=4, describe=f"place order for bot {cfg.id}")


def fee_rate(bot: BotState) -> Decimal:
    ex = bot.exchange
    if isinstance(ex, BotPaperExchange) and ex.taker_fee is not None:
        return ex.taker_fee
    return ex.market(bot.config.symbol).taker
