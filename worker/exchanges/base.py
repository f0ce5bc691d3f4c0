"""The one ``Exchange`` interface that live (ccxt) and paper trading both implement.

Bots, the backtester and the replay clock program against this class only, so a paper
bot behaves like the live bot it predicts. Every method is async; every amount, price and
fee is a ``Decimal``; errors are ``worker.errors.Retryable`` or ``Fatal``.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

from worker.candles import Candle
from worker.errors import Bug, Fatal

from .models import Balance, CheckedOrder, Market, Order, OrderType, Side
from .precision import MarketRules

_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def make_client_order_id(*parts: object, prefix: str = "tf") -> str:
    """A deterministic client order id from the bot and its decision (e.g. bot id, candle, leg).

    The same parts always give the same id, so a retried or restarted decision finds the
    order it already placed instead of placing a second one. 32 characters of ``[a-z0-9]``
    fit every major exchange (Binance allows 36, OKX 32, Bybit 36).
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return (prefix + digest)[:32]


def validate_client_order_id(client_order_id: str) -> str:
    if not _CLIENT_ID_RE.match(client_order_id):
        raise Fatal(
            f"client order id {client_order_id!r} must be 1-32 characters of letters, digits, '_' or '-'"
        )
    return client_order_id


class Exchange(ABC):
    """An exchange account: markets, orders, balances and closed candles."""

    id: str

    def __init__(self, exchange_id: str) -> None:
        self.id = exchange_id
        self._rules: MarketRules | None = None

    # -- markets and precision (shared logic) ---------------------------------------------

    @abstractmethod
    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        """Load (once) and return the exchange's markets by unified symbol."""

    @property
    def rules(self) -> MarketRules:
        if self._rules is None:
            raise Bug(f"{self.id}: call load_markets() before using markets")
        return self._rules

    def market(self, symbol: str) -> Market:
        return self.rules.market(symbol)

    def amount_to_precision(self, symbol: str, amount: Decimal) -> Decimal:
        return self.rules.amount_to_precision(symbol, amount)

    def price_to_precision(self, symbol: str, price: Decimal) -> Decimal:
        return self.rules.price_to_precision(symbol, price)

    def check_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: Decimal,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> CheckedOrder:
        """Round and validate like the exchange; raises ``Fatal`` naming the violated limit."""
        return self.rules.check_order(symbol, side, type, amount, price, stop_price)

    # -- orders ---------------------------------------------------------------------------

    @abstractmethod
    async def create_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: Decimal,
        price: Decimal | None = None,
        *,
        stop_price: Decimal | None = None,
        client_order_id: str | None = None,
        leverage: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Order:
        """Place an order (after ``check_order``).

        ``type="stop"`` with ``stop_price`` is a stop-market order, or a stop-limit order
        when ``price`` is given too. ``leverage`` applies to contract markets only.
        """

    @abstractmethod
    async def cancel_order(self, order_id: str, symbol: str) -> Order:
        """Cancel an open order; returns its final state."""

    @abstractmethod
    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> Order | None:
        """The order placed with this client order id, or ``None`` if there is none."""

    @abstractmethod
    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders still open, oldest first."""

    @abstractmethod
    async def fetch_balance(self) -> dict[str, Balance]:
        """Balances by currency code."""

    @abstractmethod
    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Candle]:
        """Closed candles only, oldest first (a still-forming candle is never returned)."""

    # -- idempotency ----------------------------------------------------------------------

    async def reconcile(self, client_order_ids: Iterable[str], symbol: str) -> dict[str, Order]:
        """Find orders already placed under these client ids (after a restart or a retry).

        Returns the ones the exchange knows; ids missing from the result were never placed.
        """
        found: dict[str, Order] = {}
        for cid in dict.fromkeys(client_order_ids):
            order = await self.fetch_order_by_client_id(cid, symbol)
            if order is not None:
                found[cid] = order
        return found

    async def place_order_once(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: Decimal,
        price: Decimal | None = None,
        *,
        client_order_id: str,
        stop_price: Decimal | None = None,
        leverage: int | None = None,
        params: Mapping[str, Any] | None = None,
        lookup_first: bool = True,
    ) -> Order:
        """Place an order unless one with ``client_order_id`` exists; return that one then.

        ``lookup_first=False`` is for an id nobody can have sent yet: the order is posted
        at once, and looked up only if the exchange refuses it (a duplicate id)."""
        if lookup_first:
            existing = await self.fetch_order_by_client_id(client_order_id, symbol)
            if existing is not None:
                return existing
        try:
            return await self.create_order(
                symbol,
                side,
                type,
                amount,
                price,
                stop_price=stop_price,
                client_order_id=client_order_id,
                leverage=leverage,
                params=params,
            )
        except Fatal:
            if lookup_first:
                raise
            found = await self.fetch_order_by_client_id(client_order_id, symbol)
            if found is None:
                raise
            return found

    # -- lifecycle ------------------------------------------------------------------------

    async def close(self) -> None:
        """Release network resources (no-op for paper)."""
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
