"""Live trading through ccxt ``async_support`` for any ccxt exchange id.

Every ccxt call goes through ``_call``, which translates ccxt errors into ``Retryable`` /
``Fatal`` at this boundary. Orders carry the caller's deterministic client order id, so a
retried decision finds its order (``fetch_order_by_client_id`` / ``reconcile``) instead of
placing a second one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async

from worker.candles import Candle, datetime_to_ms, ms_to_datetime, timeframe_seconds
from worker.errors import Fatal, Retryable

from .base import Exchange, validate_client_order_id
from .ccxt_errors import teach, translate
from .credentials import ExchangeCredentials
from .models import (
    Balance,
    Fee,
    Market,
    Order,
    OrderStatus,
    OrderType,
    Side,
    to_decimal,
)
from .precision import MarketRules
from .venues import (
    CLIENT_ID_PARAM,
    HEADER_SANDBOX,
    LIST_BY_CLIENT_ID,
    LIST_BY_ID,
    LOOKUP_BY_CLIENT_ID,
    MARGIN_MODE_WITH_LEVERAGE,
    MARKET_BUY_BY_COST,
    NATIVE_CLIENT_ID,
    SPOT_WITHOUT_STOPS,
    TRIGGER_BY_LIST,
    TRIGGER_ORDERS_APART,
    TRIGGER_PARAMS,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


def _status(value: object) -> OrderStatus:
    try:
        return OrderStatus(str(value)) if value is not None else OrderStatus.OPEN
    except ValueError:
        return OrderStatus.OPEN


def candle_from_ccxt(row: list[Any]) -> Candle:
    """A candle from a ccxt OHLCV row ``[ms, open, high, low, close, volume]``."""
    ts = ms_to_datetime(row[0])
    assert ts is not None
    values = [to_decimal(v) for v in row[1:6]]
    o, h, lo, c, v = (x if x is not None else Decimal(0) for x in values)
    return Candle(time=ts, open=o, high=h, low=lo, close=c, volume=v)


def order_from_ccxt(raw: Mapping[str, Any]) -> Order:
    """Turn a ccxt unified order structure into an ``Order``."""
    stop_price = to_decimal(
        raw.get("triggerPrice")
        or raw.get("stopPrice")
        or raw.get("stopLossPrice")  # OKX and Bitget report a stop-loss order's trigger here
        or raw.get("takeProfitPrice")
    )
    ccxt_type = str(raw.get("type") or "").lower()
    order_type: OrderType
    if stop_price is not None or "stop" in ccxt_type:
        order_type = "stop"
    elif ccxt_type == "market":
        order_type = "market"
    else:
        order_type = "limit"
    amount = to_decimal(raw.get("amount")) or Decimal(0)
    filled = to_decimal(raw.get("filled")) or Decimal(0)
    remaining = to_decimal(raw.get("remaining"))
    average = to_decimal(raw.get("average"))
    cost = to_decimal(raw.get("cost"))
    if cost is None:
        cost = filled * average if average is not None else Decimal(0)
    fee_raw = raw.get("fee") or next(iter(raw.get("fees") or []), None)
    fee = None
    if isinstance(fee_raw, Mapping) and fee_raw.get("cost") is not None:
        fee = Fee(
            cost=to_decimal(fee_raw.get("cost")) or Decimal(0),
            currency=str(fee_raw.get("currency") or ""),
            rate=to_decimal(fee_raw.get("rate")),
        )
    side = str(raw.get("side") or "buy").lower()
    return Order(
        id=str(raw.get("id")),
        # OKX's algo (trigger) orders carry their client id as ``algoClOrdId``.
        client_order_id=raw.get("clientOrderId")
        or (raw.get("info") or {}).get("algoClOrdId")
        or None,
        symbol=str(raw.get("symbol")),
        side="sell" if side == "sell" else "buy",
        type=order_type,
        status=_status(raw.get("status")),
        amount=amount,
        filled=filled,
        remaining=remaining if remaining is not None else amount - filled,
        price=to_decimal(raw.get("price")) if order_type != "market" else None,
        stop_price=stop_price,
        average=average,
        cost=cost,
        fee=fee,
        created_at=ms_to_datetime(raw.get("timestamp")),
        updated_at=ms_to_datetime(raw.get("lastUpdateTimestamp") or raw.get("lastTradeTimestamp")),
        info=dict(raw.get("info") or {}),
    )


def point_urls_at(client: ccxt.Exchange, base_url: str) -> None:
    """Send every REST call of ``client`` to ``base_url`` (same paths); for local fakes."""
    base = urlsplit(base_url)
    real: dict[str, str] = {}

    def rewrite(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("http"):
            parts = urlsplit(value)
            local = parts._replace(scheme=base.scheme, netloc=base.netloc).geturl()
            real.setdefault(local, value)
            return local
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        return value

    client.urls["api"] = rewrite(client.urls["api"])
    # Some exchanges pick their error codes by host (Binance: fapi.* has the futures codes,
    # e.g. -2019 "Margin is insufficient"); errors are read as if from the real host.
    prefixes = sorted(real, key=len, reverse=True)
    handle_errors = client.handle_errors

    def handle_errors_as_real_host(code: int, reason: str, url: str, *rest: Any) -> Any:
        local = next((p for p in prefixes if url.startswith(p)), None)
        if local is not None:
            url = real[local] + url[len(local) :]
        return handle_errors(code, reason, url, *rest)

    client.handle_errors = handle_errors_as_real_host


class LiveExchange(Exchange):
    """A real exchange account through ccxt (or its testnet with ``sandbox=True``)."""

    def __init__(
        self,
        exchange_id: str,
        credentials: ExchangeCredentials | None = None,
        *,
        sandbox: bool = False,
        default_type: str | None = None,
        options: Mapping[str, Any] | None = None,
        timeout_ms: int = 10_000,
        api_base_url: str | None = None,
        enable_rate_limit: bool = True,
    ) -> None:
        """Build the ccxt client; no network until ``load_markets``.

        ``default_type`` is ccxt's ``defaultType`` (spot, swap, future). ``api_base_url``
        replaces the exchange host (tests point it at a local fake server).
        ``enable_rate_limit`` keeps ccxt's client-side throttle on (off only for local fakes).
        """
        super().__init__(exchange_id)
        cls = getattr(ccxt_async, exchange_id, None)
        if cls is None or not isinstance(cls, type):
            raise Fatal(f"unknown exchange {exchange_id!r}: not a ccxt exchange id")
        config: dict[str, Any] = {"enableRateLimit": enable_rate_limit, "timeout": timeout_ms}
        if credentials is not None:
            config["apiKey"] = credentials.api_key
            config["secret"] = credentials.secret
            if credentials.password:
                config["password"] = credentials.password
        merged_options: dict[str, Any] = dict(options or {})
        if default_type:
            merged_options.setdefault("defaultType", default_type)
        if merged_options:
            config["options"] = merged_options
        self._client: ccxt_async.Exchange = cls(config)
        teach(self._client, exchange_id)
        # ccxt's close() sleeps 250 ms (for TLS connections to wind down at interpreter
        # exit); a worker closes a client per dropped bot, so 1,000 live bots would take
        # minutes to drop or reload. Closing returns at once instead.
        self._client.timeout_on_exit = 0
        if sandbox:
            if not self._client.urls.get("test") and exchange_id not in HEADER_SANDBOX:
                raise Fatal(f"{exchange_id} has no testnet or sandbox: trade it with a live key")
            try:
                self._client.set_sandbox_mode(True)
            except ccxt.NotSupported as e:
                raise Fatal(
                    f"{exchange_id} has no testnet or sandbox: trade it with a live key"
                ) from e
        if api_base_url is not None:
            point_urls_at(self._client, api_base_url)
        self._leverage: dict[str, int] = {}
        self._margin_mode: dict[str, str] = {}
        self._cid_alias: dict[str, str] = {}
        self._holders = 1

    def native_cid(self, client_order_id: str) -> str:
        """The client order id as sent to this exchange (Kraken takes a UUID, 32 hex digits
        or up to 18 characters: longer ids go as 32 hex digits of their SHA-256)."""
        form = NATIVE_CLIENT_ID.get(self.id)
        if form is None or form.match(client_order_id):
            return client_order_id
        native = hashlib.sha256(client_order_id.encode()).hexdigest()[:32]
        self._cid_alias[native] = client_order_id
        return native

    def contract_size(self, symbol: str) -> Decimal:
        """Base currency per contract of a contract market (1 for spot and most linear
        swaps; OKX's BTC-USDT-SWAP is 0.01 BTC)."""
        market = (self._client.markets or {}).get(symbol) or {}
        size = to_decimal(market.get("contractSize")) if market.get("contract") else None
        return size if size is not None and size > 0 else Decimal(1)

    def to_order(self, raw: Mapping[str, Any]) -> Order:
        """An order in the bot's units: client id as the bot made it, amounts in the base
        currency (contracts times contract size)."""
        order = order_from_ccxt(raw)
        ours = self._cid_alias.get(order.client_order_id or "")
        if ours is not None:
            order = _with_client_id(order, ours)
        size = self.contract_size(order.symbol)
        if size != 1:
            order = replace(
                order,
                amount=order.amount * size,
                filled=order.filled * size,
                remaining=order.remaining * size,
                cost=order.filled * size * order.average
                if order.average is not None
                else order.cost,
            )
        return order

    def share(self) -> LiveExchange:
        """One more bot trades through this client (the same account and market type): one
        connection pool and one rate limit per account; the last ``close`` closes it."""
        self._holders += 1
        return self

    @property
    def closed(self) -> bool:
        return self._holders <= 0

    @property
    def client(self) -> ccxt_async.Exchange:
        """The underlying ccxt client (for exchange-specific calls; translate errors yourself)."""
        return self._client

    async def _call(self, action: str, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except ccxt.BaseError as e:
            raise translate(e, self.id, action) from e

    async def close(self) -> None:
        self._holders -= 1
        if self._holders == 0:
            await self._client.close()

    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        await self._call("load markets", self._client.load_markets(reload))
        if self._rules is None or reload:
            self._rules = MarketRules(self._client)
        return {symbol: self._rules.market(symbol) for symbol in self._rules.symbols}

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """Set leverage for a contract market (skipped when already set by this process)."""
        if self._leverage.get(symbol) == leverage:
            return
        if not self.market(symbol).contract:
            raise Fatal(f"leverage applies to futures/swap markets only, {symbol} is spot")
        params: dict[str, Any] = {}
        if self.id in MARGIN_MODE_WITH_LEVERAGE and symbol in self._margin_mode:
            params["marginMode"] = self._margin_mode[symbol]
        try:
            await self._client.set_leverage(leverage, symbol, params)
        except ccxt.NoChange:
            pass
        except ccxt.BaseError as e:
            raise translate(e, self.id, f"set leverage {leverage}x on {symbol}") from e
        self._leverage[symbol] = leverage

    async def set_margin_mode(self, symbol: str, mode: str) -> None:
        """Trade a contract market with ``cross`` or ``isolated`` margin.

        OKX sets margin mode and leverage together: the leverage set by this process (else 1)
        goes with it. Bybit's unified account sets the mode for the whole account.
        """
        if mode not in {"cross", "isolated"}:
            raise Fatal(f"margin mode must be cross or isolated, not {mode!r}")
        if not self.market(symbol).contract:
            raise Fatal(f"margin mode applies to futures/swap markets only, {symbol} is spot")
        params: dict[str, Any] = {}
        if self.id in MARGIN_MODE_WITH_LEVERAGE:
            params["leverage"] = self._leverage.get(symbol, 1)
        try:
            await self._client.set_margin_mode(mode, symbol, params)
        except ccxt.MarginModeAlreadySet:
            pass
        except ccxt.BaseError as e:
            raise translate(e, self.id, f"set {mode} margin on {symbol}") from e
        self._margin_mode[symbol] = mode

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
        await self.load_markets()
        # Contracts: ``amount`` is in the base currency, the exchange counts contracts.
        checked = self.check_order(
            symbol, side, type, amount / self.contract_size(symbol), price, stop_price
        )
        if leverage is not None:
            await self.set_leverage(symbol, leverage)
        request: dict[str, Any] = dict(params or {})
        if client_order_id is not None:
            validate_client_order_id(client_order_id)
            request[CLIENT_ID_PARAM.get(self.id, "clientOrderId")] = self.native_cid(
                client_order_id
            )
        if self.id in MARGIN_MODE_WITH_LEVERAGE and symbol in self._margin_mode:
            request.setdefault("marginMode", self._margin_mode[symbol])
        ccxt_type = "limit" if checked.price is not None else "market"
        if TRIGGER_PARAMS & request.keys() and self.id in SPOT_WITHOUT_STOPS:
            if not self.market(symbol).contract:
                # ccxt would drop the trigger and send a plain order that fills at once.
                raise Fatal(
                    f"{self.id} {symbol}: stop and trigger orders are not supported on "
                    f"{self.id} spot markets"
                )
        if ccxt_type == "market" and side == "buy" and self.id in MARKET_BUY_BY_COST:
            if not self.market(symbol).contract and "cost" not in request:
                request["cost"] = float(checked.amount * await self._reference_price(symbol))
        if checked.stop_price is not None:
            request["triggerPrice"] = float(checked.stop_price)
        action = f"create {type} {side} order {checked.amount} {symbol}"
        try:
            raw = await self._client.create_order(
                symbol,
                ccxt_type,
                side,
                float(checked.amount),
                float(checked.price) if checked.price is not None else None,
                request,
            )
        except ccxt.BaseError as e:
            error = translate(e, self.id, action)
            if isinstance(error, Retryable) and client_order_id is not None:
                # The request may have reached the exchange before the failure.
                try:
                    existing = await self.fetch_order_by_client_id(client_order_id, symbol)
                except Retryable:
                    existing = None
                if existing is not None:
                    return existing
            raise error from e
        if raw.get("status") is None and raw.get("id"):
            # Some exchanges (Bybit, OKX) answer an accepted order with its ids only.
            fetch_params = {}
            if self.id in TRIGGER_ORDERS_APART and TRIGGER_PARAMS & request.keys():
                fetch_params["trigger"] = True
            raw = await self._fetch_raw(str(raw["id"]), symbol, action, fetch_params)
        order = self.to_order(raw)
        if order.client_order_id is None and client_order_id is not None:
            order = _with_client_id(order, client_order_id)
        order = await self._with_fee(order)  # a fill at once: its commission from its trades
        log.info(
            "order placed",
            extra={
                "exchange": self.id,
                "symbol": symbol,
                "action": "create_order",
                "client_order_id": client_order_id,
                "order_id": order.id,
            },
        )
        return order

    async def cancel_order(
        self, order_id: str, symbol: str, *, params: Mapping[str, Any] | None = None
    ) -> Order:
        """Cancel an order (``params`` as ccxt takes them, e.g. ``{"trigger": True}`` for an
        OKX or Bitget trigger order); an order already closed is reported as it ended."""
        await self.load_markets()
        action = f"fetch order {order_id}"
        try:
            raw = await self._client.cancel_order(order_id, symbol, dict(params or {}))
        except (ccxt.OrderNotFound, ccxt.InvalidOrder) as e:
            # Already filled or canceled (Kraken says "EOrder:Unknown order", an InvalidOrder):
            # report its final state.
            raw = await self._fetch_raw(order_id, symbol, action, params)
            if raw.get("status") == "open":
                raise translate(e, self.id, f"cancel order {order_id} on {symbol}") from e
        except ccxt.BaseError as e:
            raise translate(e, self.id, f"cancel order {order_id} on {symbol}") from e
        if raw.get("status") is None:
            raw = await self._fetch_raw(order_id, symbol, action, params)
        return self.to_order(raw)

    async def _reference_price(self, symbol: str) -> Decimal:
        """The ask (else last) price of ``symbol``: what a market buy of an amount costs."""
        ticker = await self._call(f"fetch ticker of {symbol}", self._client.fetch_ticker(symbol))
        price = to_decimal(ticker.get("ask") or ticker.get("last"))
        if price is None or price <= 0:
            raise Retryable(f"{self.id} has no price for {symbol} to size a market buy")
        return price

    def finished_orders(
        self, symbol: str, since: Any = None, limit: Any = None, params: Any = None
    ) -> Awaitable[list[dict[str, Any]]]:
        """Recent closed and cancelled orders (ccxt's closed orders alone omit cancelled ones
        on some exchanges)."""
        fetch: Any = self._client.fetch_closed_orders
        if self._client.has.get("fetchCanceledAndClosedOrders"):
            fetch = self._client.fetch_canceled_and_closed_orders
        rows: Awaitable[list[dict[str, Any]]] = fetch(symbol, since, limit, params or {})
        return rows

    async def _fetch_raw(
        self, order_id: str, symbol: str, action: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """One order by exchange id, as ccxt parses it."""
        extra = {k: v for k, v in (params or {}).items() if k in {"trigger", "stop"}}
        if self.id in LIST_BY_ID or (extra and self.id in TRIGGER_BY_LIST):
            for fetch in (self._client.fetch_open_orders, self.finished_orders):
                rows = await self._call(
                    action, fetch(symbol, None, None, {"orderId": order_id, **extra})
                )
                for row in rows:
                    if str(row.get("id")) == order_id:
                        return dict(row)
            raise Fatal(f"{self.id} {action}: order not found")
        raw: dict[str, Any] = await self._call(
            action, self._client.fetch_order(order_id, symbol, extra)
        )
        return raw

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> Order | None:
        await self.load_markets()
        action = f"fetch order by client id {client_order_id}"
        native = self.native_cid(client_order_id)
        listing_param = LIST_BY_CLIENT_ID.get(self.id)
        if listing_param is not None:
            # The exchange filters its open and recent order lists by the client id.
            for fetch in (self._client.fetch_open_orders, self.finished_orders):
                rows = await self._call(action, fetch(symbol, None, None, {listing_param: native}))
                for raw in rows:
                    if raw.get("clientOrderId") == native:
                        return self.to_order(raw)
            return None
        if self.id in LOOKUP_BY_CLIENT_ID and self._client.has.get("fetchOrder"):
            try:
                raw = await self._client.fetch_order("", symbol, {"clientOrderId": client_order_id})
            except ccxt.OrderNotFound:
                return None
            except ccxt.BaseError as e:
                raise translate(e, self.id, action) from e
            return await self._with_fee(_with_client_id(self.to_order(raw), client_order_id))
        # Fallback: look through open orders, then recent orders.
        for order in await self.fetch_open_orders(symbol):
            if order.client_order_id == client_order_id:
                return order
        for method in ("fetchOrders", "fetchClosedOrders"):
            if self._client.has.get(method):
                fetch = getattr(
                    self._client,
                    "fetch_orders" if method == "fetchOrders" else "fetch_closed_orders",
                )
                rows = await self._call(action, fetch(symbol))
                for raw in rows:
                    if raw.get("clientOrderId") == client_order_id:
                        return self.to_order(raw)
                break
        return None

    async def _with_fee(self, order: Order) -> Order:
        """A filled order as an order query reports it carries no commission (Binance's
        order endpoint has no fills): take it from the account's trades of that order."""
        if order.fee is not None or order.filled <= 0 or not self._client.has.get("fetchMyTrades"):
            return order
        try:
            rows = await self._client.fetch_my_trades(
                order.symbol, None, None, {"orderId": order.id}
            )
        except ccxt.BaseError as e:
            log.warning(
                "trades of an order unavailable: its fee stays unknown",
                extra={"exchange": self.id, "order_id": order.id, "error": str(e)},
            )
            return order
        fees = [
            t["fee"]
            for t in rows
            if str(t.get("order")) == order.id
            and isinstance(t.get("fee"), Mapping)
            and t["fee"].get("cost") is not None
        ]
        if not fees:
            return order
        from dataclasses import replace

        cost = sum((to_decimal(f["cost"]) or Decimal(0) for f in fees), Decimal(0))
        return replace(order, fee=Fee(cost=cost, currency=str(fees[0].get("currency") or "")))

    async def reconcile(self, client_order_ids: Iterable[str], symbol: str) -> dict[str, Order]:
        """Orders already placed under these client ids: open ones in one call, others by id."""
        wanted = list(dict.fromkeys(client_order_ids))
        for cid in wanted:
            self.native_cid(cid)  # so orders listed under the exchange's form map back
        found = {
            o.client_order_id: o
            for o in await self.fetch_open_orders(symbol)
            if o.client_order_id in wanted
        }
        for cid in wanted:
            if cid not in found:
                order = await self.fetch_order_by_client_id(cid, symbol)
                if order is not None:
                    found[cid] = order
        return {cid: order for cid, order in found.items() if cid is not None}

    async def fetch_open_orders(
        self, symbol: str | None = None, *, params: Mapping[str, Any] | None = None
    ) -> list[Order]:
        """Open orders (of one market, or of every market where the exchange lists them all;
        ``params`` as ccxt takes them, e.g. ``{"trigger": True}`` for trigger orders)."""
        await self.load_markets()
        if symbol is None:  # a deliberate account-wide query, not a forgotten symbol
            self._client.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        fetch = self._client.fetch_open_orders(symbol, None, None, dict(params or {}))
        return [self.to_order(r) for r in await self._call("fetch open orders", fetch)]

    async def fetch_balance(self) -> dict[str, Balance]:
        raw = await self._call("fetch balance", self._client.fetch_balance())
        totals: Mapping[str, Any] = raw.get("total") or {}
        out: dict[str, Balance] = {}
        for code in totals:
            entry = raw.get(code) or {}
            out[code] = Balance(
                currency=code,
                free=to_decimal(entry.get("free")) or Decimal(0),
                used=to_decimal(entry.get("used")) or Decimal(0),
                total=to_decimal(entry.get("total")) or Decimal(0),
            )
        return out

    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Candle]:
        await self.load_markets()
        period_ms = timeframe_seconds(timeframe) * 1000
        rows = await self._call(
            f"fetch {timeframe} candles of {symbol}",
            self._client.fetch_ohlcv(
                symbol, timeframe, datetime_to_ms(since) if since else None, limit
            ),
        )
        now_ms = int(self._client.milliseconds())
        return [candle_from_ccxt(row) for row in rows if int(row[0]) + period_ms <= now_ms]


def _with_client_id(order: Order, client_order_id: str) -> Order:
    if order.client_order_id == client_order_id:
        return order
    return replace(order, client_order_id=client_order_id)
