"""Typed values the exchange layer hands out: markets, orders, balances (candles are
``worker.candles.Candle``).

Money is ``Decimal``; times are UTC-aware ``datetime``. The dataclasses are frozen so a
bot can keep an ``Order`` it received without the exchange changing it underneath.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop"]


class OrderStatus(StrEnum):
    """ccxt's unified order states."""

    OPEN = "open"
    CLOSED = "closed"  # fully filled
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


def to_decimal(value: object) -> Decimal | None:
    """Convert a ccxt number (float, int, str or None) to ``Decimal`` without float noise."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # repr() gives the shortest string that round-trips, e.g. 1e-05 -> "1e-05".
        return Decimal(repr(value))
    return Decimal(str(value))


@dataclass(frozen=True, slots=True)
class Market:
    """What a bot needs to know about one market, in exchange-exact units."""

    exchange: str
    symbol: str
    id: str
    base: str
    quote: str
    settle: str | None
    type: str  # spot, swap, future, option
    active: bool
    contract: bool
    linear: bool | None
    contract_size: Decimal | None
    amount_precision: Decimal | None  # step size, e.g. 0.00001
    price_precision: Decimal | None  # tick size, e.g. 0.01
    min_amount: Decimal | None
    max_amount: Decimal | None
    min_price: Decimal | None
    max_price: Decimal | None
    min_cost: Decimal | None
    max_cost: Decimal | None
    max_market_amount: Decimal | None
    taker: Decimal
    maker: Decimal


@dataclass(frozen=True, slots=True)
class CheckedOrder:
    """An order request rounded to the market's precision and checked against its limits."""

    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None  # limit price (limit, stop-limit); None for market/stop-market
    stop_price: Decimal | None
    cost: Decimal | None  # estimated notional in quote currency, when a price is known


@dataclass(frozen=True, slots=True)
class Fee:
    cost: Decimal
    currency: str
    rate: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the exchange reports it."""

    id: str
    client_order_id: str | None
    symbol: str
    side: Side
    type: OrderType
    status: OrderStatus
    amount: Decimal
    filled: Decimal
    remaining: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    average: Decimal | None
    cost: Decimal
    fee: Fee | None
    created_at: datetime | None
    updated_at: datetime | None = None
    info: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status is OrderStatus.OPEN


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    free: Decimal
    used: Decimal
    total: Decimal
