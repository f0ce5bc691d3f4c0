"""Protective orders on a live exchange: a stop-loss (and take-profit) resting on the
exchange, through ccxt's unified parameters, so a position is protected while no worker
watches it.

- Capabilities come from ccxt (``has['createStopLossOrder']`` / ``createTakeProfitOrder``,
  or ``STOPS_UNDECLARED`` where ccxt places them without declaring it) and the market's own list of order types where the exchange publishes one (Binance's
  ``orderTypes``): a spot market rests a stop-limit sell (Binance ``STOP_LOSS_LIMIT``), a
  futures/swap market a reduce-only stop-market and take-profit-market (Binance's
  conditional algo orders). On spot the take-profit is not rested beside the stop: both
  would lock the same coins.
- Orders carry the caller's deterministic client order id: placing again after a restart
  finds the order already placed.
- The account's resting orders are read in one open-orders query (per symbol only where the
  exchange wants one, with ccxt's ``trigger`` where it lists trigger orders apart): a bot
  asks about one of its orders only once it has left that list.
- A filled protective order is read back with its real fills (``fetch_my_trades``): price,
  amount, commission and time, which order responses often lack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

import ccxt

from worker.candles import ms_to_datetime
from worker.errors import Retryable

from .base import Exchange, validate_client_order_id
from .ccxt_errors import translate
from .live import LiveExchange
from .models import Fee, Order, OrderStatus, Side, to_decimal
from .venues import (
    CANCEL_BY_ID,
    CLIENT_ID_PARAM,
    FILLS_UNFILTERED,
    LIST_BY_CLIENT_ID,
    OCO_SPOT,
    OPEN_LIST_HOLDS_TRIGGERS,
    OPEN_ORDERS_ANY_SYMBOL,
    STOPS_AS_TRIGGERS,
    STOPS_UNDECLARED,
    TRIGGER_BY_LIST,
    TRIGGER_CLIENT_ID_PARAM,
    TRIGGER_LIST_PARAMS,
    TRIGGER_ORDERS_APART,
)

Kind = Literal["stop_loss", "take_profit"]

LIMIT_BAND = Decimal("0.005")
"""A stop-limit's limit price lies this fraction beyond its trigger (below for a sell), so
it fills in a fast market without selling at any price."""

SPOT_TYPES: dict[Kind, tuple[str, ...]] = {
    "stop_loss": ("STOP_LOSS_LIMIT", "STOP_LOSS"),
    "take_profit": ("TAKE_PROFIT_LIMIT", "TAKE_PROFIT"),
}
CONTRACT_TYPES: dict[Kind, tuple[str, ...]] = {
    "stop_loss": ("STOP_MARKET", "STOP"),
    "take_profit": ("TAKE_PROFIT_MARKET", "TAKE_PROFIT"),
}
HAS: dict[Kind, str] = {"stop_loss": "createStopLossOrder", "take_profit": "createTakeProfitOrder"}


@dataclass(frozen=True, slots=True)
class Support:
    """What an exchange market can rest on the exchange; ``missing`` says why not."""

    stop_loss: bool
    take_profit: bool
    missing: str | None = None
    oco: bool = False
    """A spot market that rests the stop-loss and the take-profit together as one OCO list
    (one leg filling expires the other, so the coins are sold once)."""

    def holds(self, kind: Kind) -> bool:
        return self.stop_loss if kind == "stop_loss" else self.take_profit


def support(ex: Exchange, symbol: str) -> Support:
    """Which protective orders ``symbol`` on ``ex`` can rest (none on paper accounts)."""
    if not isinstance(ex, LiveExchange):
        return Support(False, False, "a paper account has no exchange to rest orders on")
    client = ex.client
    market: Mapping[str, Any] = client.market(symbol)
    contract = bool(market.get("contract"))
    listed = (market.get("info") or {}).get("orderTypes")

    def can(kind: Kind) -> bool:
        if not client.has.get(HAS[kind]) and ex.id not in STOPS_UNDECLARED:
            return False
        wanted = CONTRACT_TYPES[kind] if contract else SPOT_TYPES[kind]
        return not isinstance(listed, list) or any(t in listed for t in wanted)

    stop, take = can("stop_loss"), can("take_profit") and contract
    info = market.get("info") or {}
    oco = (
        ex.id in OCO_SPOT
        and stop
        and not contract
        and info.get("ocoAllowed") is True
        and (not isinstance(listed, list) or "LIMIT_MAKER" in listed)
    )
    missing = None
    if not stop:
        missing = (
            f"{ex.id} has no stop-loss orders for {symbol}: the stop is checked by the "
            "fleet at each candle close, and only while a worker runs the bot"
        )
    return Support(stop, take, missing, oco)


def _contract(ex: LiveExchange, symbol: str) -> bool:
    return bool(ex.client.market(symbol).get("contract"))


def limit_price(ex: LiveExchange, symbol: str, side: Side, trigger: Decimal) -> Decimal | None:
    """The limit of a spot stop-limit beyond ``trigger``; None for stop-market orders."""
    if _contract(ex, symbol):
        return None
    band = Decimal(1) - LIMIT_BAND if side == "sell" else Decimal(1) + LIMIT_BAND
    return ex.price_to_precision(symbol, trigger * band)


def _kept_apart(ex: LiveExchange, symbol: str) -> dict[str, Any]:
    """ccxt parameters that read or cancel one protective order where the exchange keeps
    trigger orders apart from plain ones (OKX, Bitget; contract markets elsewhere)."""
    if ex.id in OPEN_LIST_HOLDS_TRIGGERS:
        return {}
    return {"trigger": True} if ex.id in TRIGGER_ORDERS_APART or _contract(ex, symbol) else {}


async def fetch(ex: LiveExchange, symbol: str, client_order_id: str) -> Order | None:
    """The protective order placed under ``client_order_id``, or None."""
    native = ex.native_cid(client_order_id)
    apart = _kept_apart(ex, symbol)
    try:
        if ex.id in LIST_BY_CLIENT_ID or ex.id in TRIGGER_BY_LIST:
            # No lookup by client id: its open and recent order lists, filtered.
            params = {**apart, **_by_client_id(ex, native)}
            raw = None
            for listing in (ex.client.fetch_open_orders, ex.finished_orders):
                rows = await listing(symbol, None, None, params)
                raw = next((r for r in rows if r.get("clientOrderId") == native), None)
                if raw is not None:
                    break
            if raw is None:
                return None
        else:
            raw = await ex.client.fetch_order("", symbol, {"clientOrderId": native, **apart})
    except ccxt.OrderNotFound:
        return None
    except ccxt.BaseError as e:
        raise translate(e, ex.id, f"fetch protective order {client_order_id}") from e
    order = ex.to_order(raw)
    return replace(order, client_order_id=client_order_id)


def _by_client_id(ex: LiveExchange, native: str) -> dict[str, Any]:
    param = LIST_BY_CLIENT_ID.get(ex.id)
    return {} if param is None else {param: native}


def _trigger_params(ex: LiveExchange, symbol: str) -> dict[str, Any]:
    """ccxt parameters that read this market's protective orders from their list."""
    if ex.id in OPEN_LIST_HOLDS_TRIGGERS:
        return {}
    if ex.id in TRIGGER_ORDERS_APART or _contract(ex, symbol):
        return {"trigger": True, **TRIGGER_LIST_PARAMS.get(ex.id, {})}
    return {}


async def open_protective(
    ex: LiveExchange, symbols: Iterable[str], client_order_ids: Iterable[str]
) -> set[str]:
    """Which of ``client_order_ids`` rest open on the account (``symbols`` are their
    markets): one open-orders query for the account, or one per symbol where the exchange
    lists a single market at a time."""
    await ex.load_markets()
    wanted = set(client_order_ids)
    for cid in wanted:
        ex.native_cid(cid)  # so orders listed under the exchange's form map back
    markets = sorted(set(symbols))
    if not markets or not wanted:
        return set()
    queries: list[str | None] = list(markets)
    if ex.id in OPEN_ORDERS_ANY_SYMBOL and len(markets) > 1:
        queries = [None]
    found: set[str] = set()
    for symbol in queries:
        params = _trigger_params(ex, markets[0] if symbol is None else symbol)
        for order in await ex.fetch_open_orders(symbol, params=params):
            if order.client_order_id in wanted and order.is_open:
                found.add(order.client_order_id)
    return found


async def place(
    ex: LiveExchange,
    symbol: str,
    kind: Kind,
    side: Side,
    amount: Decimal,
    trigger: Decimal,
    client_order_id: str,
    *,
    look_first: bool = True,
) -> Order:
    """Rest a stop-loss or take-profit that closes ``amount`` (once per client order id).

    ``look_first=False`` skips the lookup before placing, for an id never sent before: the
    exchange refuses a second open order under one client id, and a refused or unanswered
    placement is looked up before the error counts."""
    await ex.load_markets()
    if look_first:
        existing = await fetch(ex, symbol, client_order_id)
        if existing is not None:
            return existing
    validate_client_order_id(client_order_id)
    contract = _contract(ex, symbol)
    trigger = ex.price_to_precision(symbol, trigger)
    id_param = TRIGGER_CLIENT_ID_PARAM.get(ex.id) or CLIENT_ID_PARAM.get(ex.id, "clientOrderId")
    level = "stopLossPrice" if kind == "stop_loss" else "takeProfitPrice"
    if ex.id in STOPS_AS_TRIGGERS:
        level = "triggerPrice"
    params: dict[str, Any] = {id_param: ex.native_cid(client_order_id), level: float(trigger)}
    if contract:
        params["reduceOnly"] = True
    limit = limit_price(ex, symbol, side, trigger)
    amount = ex.amount_to_precision(symbol, amount)
    contracts = amount / ex.contract_size(symbol)  # the exchange counts contracts
    action = f"place {kind.replace('_', '-')} {side} {amount} {symbol} at {trigger}"
    try:
        raw = await ex.client.create_order(
            symbol,
            "market" if limit is None else "limit",
            side,
            float(contracts),
            None if limit is None else float(limit),
            params,
        )
    except ccxt.BaseError as e:
        error = translate(e, ex.id, action)
        if isinstance(error, Retryable) or not look_first:  # it may be on the exchange
            try:
                existing = await fetch(ex, symbol, client_order_id)
            except Retryable:
                existing = None
            if existing is not None:
                return existing
        raise error from e
    order = ex.to_order(raw)
    return replace(
        order,
        client_order_id=order.client_order_id or client_order_id,
        stop_price=order.stop_price or trigger,
    )


async def place_oco(
    ex: LiveExchange,
    symbol: str,
    amount: Decimal,
    stop: Decimal,
    take: Decimal,
    client_order_ids: tuple[str, str, str],
) -> tuple[Order, Order]:
    """Rest a long's stop-loss and take-profit as one OCO list (Binance spot
    ``POST /api/v3/orderList/oco``): a ``STOP_LOSS_LIMIT`` leg below the price and a
    ``LIMIT_MAKER`` leg above it, under the client ids (stop leg, take-profit leg, list).
    Returns the stop and take-profit legs."""
    await ex.load_markets()
    stop_cid, take_cid, list_cid = client_order_ids
    for cid in client_order_ids:
        validate_client_order_id(cid)
    market = ex.client.market(symbol)
    stop = ex.price_to_precision(symbol, stop)
    take = ex.price_to_precision(symbol, take)
    limit = limit_price(ex, symbol, "sell", stop)
    request = {
        "symbol": market["id"],
        "side": "SELL",
        "quantity": str(ex.amount_to_precision(symbol, amount)),
        "listClientOrderId": list_cid,
        "aboveType": "LIMIT_MAKER",
        "abovePrice": str(take),
        "aboveClientOrderId": take_cid,
        "belowType": "STOP_LOSS_LIMIT",
        "belowStopPrice": str(stop),
        "belowPrice": str(limit),
        "belowTimeInForce": "GTC",
        "belowClientOrderId": stop_cid,
    }
    action = f"place an OCO sell of {amount} {symbol}: stop {stop}, take-profit {take}"
    try:
        raw = await ex.client.private_post_orderlist_oco(request)
    except ccxt.BaseError as e:
        raise translate(e, ex.id, action) from e
    legs = {str(r.get("clientOrderId")): r for r in raw.get("orderReports") or []}
    orders = []
    for cid, trigger in ((stop_cid, stop), (take_cid, take)):
        order = ex.to_order(ex.client.parse_order(legs[cid], market))
        orders.append(replace(order, client_order_id=cid, stop_price=order.stop_price or trigger))
    return orders[0], orders[1]


async def cancel(ex: LiveExchange, symbol: str, client_order_id: str) -> Order | None:
    """Cancel a protective order; returns its final state (it may have filled meanwhile).
    An answer that reports the order canceled is that state (Binance answers with the
    order); any other answer, or an order no longer cancelable, is read back."""
    params: dict[str, Any] = {"clientOrderId": ex.native_cid(client_order_id)}
    params.update(_kept_apart(ex, symbol))
    order_id = ""
    if ex.id in CANCEL_BY_ID:
        found = await fetch(ex, symbol, client_order_id)
        if found is None or not found.is_open:
            return found
        order_id = found.id
        del params["clientOrderId"]
    try:
        raw = await ex.client.cancel_order(order_id, symbol, params)
    except ccxt.OrderNotFound:
        raw = None  # filled, canceled or expired already: its state says which
    except ccxt.BaseError as e:
        raise translate(e, ex.id, f"cancel protective order {client_order_id}") from e
    if isinstance(raw, Mapping) and raw.get("status") == "canceled" and raw.get("id"):
        return replace(ex.to_order(raw), client_order_id=client_order_id)
    return await fetch(ex, symbol, client_order_id)


async def with_fills(ex: LiveExchange, symbol: str, order: Order) -> Order:
    """``order`` (a filled protective order) with its real fills: average price, amount,
    cost, commission and the time of the last fill, from the account's trades."""
    # The order that traded: Binance's algo orders and OKX's name it apart from their own id.
    info = order.info
    oid = str(info.get("actualOrderId") or (info.get("algoId") and info.get("ordId")) or order.id)
    rows: list[dict[str, Any]] = []
    if ex.client.has.get("fetchMyTrades"):
        try:
            by_order = {} if ex.id in FILLS_UNFILTERED else {"orderId": oid}
            rows = await ex.client.fetch_my_trades(symbol, None, None, by_order)
        except ccxt.BaseError as e:
            raise translate(e, ex.id, f"fetch the fills of order {oid}") from e
    rows = [r for r in rows if str(r.get("order")) == oid]
    if not rows:
        return order
    size = ex.contract_size(symbol)  # trades of contract markets count contracts
    amounts = [(to_decimal(r.get("amount")) or Decimal(0)) * size for r in rows]
    amount = sum(amounts, Decimal(0))
    cost = sum(
        (
            (to_decimal(r.get("price")) or Decimal(0)) * a
            for r, a in zip(rows, amounts, strict=True)
        ),
        Decimal(0),
    )
    fee_cost = Decimal(0)
    currency = ""
    for r in rows:
        fee = r.get("fee") or {}
        fee_cost += to_decimal(fee.get("cost")) or Decimal(0)
        currency = str(fee.get("currency") or currency)
    last = max(int(r.get("timestamp") or 0) for r in rows)
    return replace(
        order,
        status=OrderStatus.CLOSED,
        filled=amount,
        remaining=max(order.amount - amount, Decimal(0)),
        average=cost / amount if amount else order.average,
        cost=cost,
        fee=Fee(fee_cost, currency),
        updated_at=ms_to_datetime(last) or order.updated_at,
    )
