"""A local HTTP server that answers like MEXC's spot V3 REST API, for ccxt tests.

Paths (https://www.mexc.com/api-docs/spot-v3/introduction): ``/api/v3/time``,
``/api/v3/exchangeInfo``, ``/api/v3/capital/config/getall``, ``/api/v3/account``,
``/api/v3/order`` (POST new, GET query by ``orderId`` or ``origClientOrderId``, DELETE cancel),
``/api/v3/openOrders``, ``/api/v3/allOrders``; the futures contract list
(``/api/v1/contract/detail``) answers empty: spot only.

Private calls are signed as documented: ``timestamp`` and ``recvWindow`` in the query,
``signature`` = hex HMAC-SHA256 of the query string before it, header ``X-MEXC-APIKEY``.
A bad key or signature answers ``700002`` (HTTP 400).

MEXC's spot API has no stop or trigger orders; MEXC has no spot testnet.

Errors: rate limit ``429`` (HTTP 429), maintenance ``801`` ("System under maintenance"),
insufficient balance ``30004`` ("Insufficient position"), invalid order ``30002`` (below the
minimum transaction volume), unknown order ``-2013`` (query) / ``-2011`` (cancel).

Markets: a small sample of MEXC's own exchangeInfo payload in ``tests/fakes/markets/mexc.json``.
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.fakes.fake_venue import (
    FakeVenue,
    Instrument,
    Request,
    VenueOrder,
    hmac_sha256,
    load_fixture,
    now_ms,
    plain,
)

STATUS = {"open": "NEW", "untriggered": "NEW", "filled": "FILLED", "canceled": "CANCELED"}


KLINE_INTERVALS = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "60m": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
    "1W": 7 * 86_400_000,
}
"""MEXC spot's kline intervals in ms (``1M``, a month, is not generated)."""


class FakeMexc(FakeVenue):
    exchange_id = "mexc"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.symbols: list[dict[str, Any]] = load_fixture("mexc.json")
        for info in self.symbols:
            self.instruments[info["symbol"]] = Instrument(
                id=info["symbol"],
                base=info["baseAsset"],
                quote=info["quoteAsset"],
                contract=False,
                min_amount=Decimal(info["baseSizePrecision"]),
            )

    # -- protocol -------------------------------------------------------------------------

    def is_private(self, request: Request) -> bool:
        return "signature" in request.params or request.path in {
            "/api/v3/account",
            "/api/v3/order",
            "/api/v3/openOrders",
            "/api/v3/allOrders",
            "/api/v3/capital/config/getall",
        }

    def authenticate(self, request: Request) -> bool:
        if request.headers.get("x-mexc-apikey") != self.api_key:
            return False
        query = request.headers["x-raw-query"]
        signed, _, signature = query.rpartition("&signature=")
        expected = hmac_sha256(self.secret, signed).hex()
        return hmac.compare_digest(expected, signature)

    @staticmethod
    def _fail(code: int, msg: str, status: int = 400) -> web.Response:
        return web.json_response({"code": code, "msg": msg}, status=status)

    def error(self, kind: str, request: Request) -> web.Response:
        return {
            "auth": lambda: self._fail(700002, "Signature for this request is not valid."),
            "rate_limit": lambda: self._fail(429, "Too Many Requests", 429),
            "maintenance": lambda: self._fail(801, "System under maintenance", 503),
            "insufficient": lambda: self._fail(30004, "Insufficient position"),
            "invalid": lambda: self._fail(
                30002, "The minimum transaction volume cannot be less than:5USDT"
            ),
            "duplicate": lambda: self._fail(-2010, "Duplicate order sent."),
        }[kind]()

    def not_found(self, request: Request) -> web.Response:
        return self._fail(404, "Not Found", 404)

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/api/v3/ping"): lambda r: web.json_response({}),
            ("GET", "/api/v3/time"): lambda r: web.json_response({"serverTime": now_ms()}),
            ("GET", "/api/v3/exchangeInfo"): self._exchange_info,
            ("GET", "/api/v3/klines"): self._klines,
            ("GET", "/api/v1/contract/detail"): lambda r: web.json_response(
                {"success": True, "code": 0, "data": []}
            ),
            ("GET", "/api/v3/capital/config/getall"): lambda r: web.json_response([]),
            ("GET", "/api/v3/account"): self._account,
            ("POST", "/api/v3/order"): self._new,
            ("GET", "/api/v3/order"): self._query,
            ("DELETE", "/api/v3/order"): self._cancel,
            ("GET", "/api/v3/openOrders"): lambda r: self._list(r, open_only=True),
            ("GET", "/api/v3/allOrders"): lambda r: self._list(r, open_only=False),
            ("GET", "/api/v3/myTrades"): self._my_trades,
        }

    # -- market data and account ------------------------------------------------------------

    def _klines(self, request: Request) -> web.Response:
        """GET /api/v3/klines: ``interval`` 1m, 5m, 15m, 30m, 60m, 4h, 1d, 1W or 1M;
        ``startTime`` inclusive, ``endTime`` exclusive, ``limit`` at most 1000 (default 500);
        oldest first, each ``[openTime, open, high, low, close, volume, closeTime,
        quoteVolume]`` with prices as text."""
        p = request.params
        step = KLINE_INTERVALS.get(p.get("interval", ""))
        if step is None:
            return self._fail(-1121, "Invalid interval.")
        limit = int(p.get("limit", 500))
        if not 1 <= limit <= 1000:
            return self._fail(-1121, "Invalid limit.")
        start, end = int(p.get("startTime", 0)), int(p.get("endTime", now_ms() + 1))
        rows = self.candles(p.get("symbol", ""), step, start, end - 1, limit)
        return web.json_response([[t, o, h, lo, c, v, t + step, "0"] for t, o, h, lo, c, v in rows])

    def _exchange_info(self, request: Request) -> web.Response:
        return web.json_response(
            {
                "timezone": "CST",
                "serverTime": now_ms(),
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": self.symbols,
            }
        )

    def _account(self, request: Request) -> web.Response:
        return web.json_response(
            {
                "makerCommission": None,
                "takerCommission": None,
                "buyerCommission": None,
                "sellerCommission": None,
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "updateTime": None,
                "accountType": "SPOT",
                "balances": [
                    {"asset": a, "free": plain(free), "locked": plain(used)}
                    for a, (free, used) in self.balances.items()
                ],
                "permissions": ["SPOT"],
            }
        )

    # -- orders ---------------------------------------------------------------------------

    def _new(self, request: Request) -> web.Response:
        p = request.params
        symbol, kind = str(p.get("symbol")), str(p.get("type", "")).lower()
        if symbol not in self.instruments:
            return self._fail(-1121, "Invalid symbol.")
        if kind not in {"market", "limit"} or p.get("side") not in {"BUY", "SELL"}:
            return self._fail(-1128, "Combination of optional parameters invalid.")
        if "quantity" in p:
            qty = Decimal(str(p["quantity"]))
        else:  # a market buy by quote amount
            qty = Decimal(str(p.get("quoteOrderQty", "0"))) / self.price(symbol)
        result = self.place(
            symbol,
            str(p["side"]).lower(),
            kind,
            qty,
            Decimal(str(p["price"])) if p.get("price") else None,
            client_id=p.get("newClientOrderId") or None,
        )
        if isinstance(result, str):
            return self.error(result, request)
        return web.json_response(
            {
                "symbol": symbol,
                "orderId": result.id,
                "orderListId": -1,
                "price": plain(result.price) if result.price is not None else "",
                "origQty": plain(result.amount),
                "type": kind.upper(),
                "side": result.side.upper(),
                "transactTime": result.created,
            }
        )

    def _one(self, p: dict[str, Any]) -> VenueOrder | None:
        order = self.find(order_id=p.get("orderId"), client_id=p.get("origClientOrderId"))
        if order is None or order.symbol != p.get("symbol"):
            return None
        return order

    def _query(self, request: Request) -> web.Response:
        order = self._one(request.params)
        if order is None:
            return self._fail(-2013, "Order does not exist.")
        return web.json_response(_public(order))

    def _cancel(self, request: Request) -> web.Response:
        order = self._one(request.params)
        if order is None or not self.cancel(order):
            return self._fail(-2011, "Unknown order sent.")
        return web.json_response({**_public(order), "origClientOrderId": order.client_id})

    def _list(self, request: Request, open_only: bool) -> web.Response:
        symbol = request.params.get("symbol")
        rows = [
            _public(o)
            for o in sorted(self.orders.values(), key=lambda o: o.created)
            if (symbol is None or o.symbol == symbol)
            and (not open_only or o.status in {"open", "untriggered"})
        ]
        return web.json_response(rows)

    def _my_trades(self, request: Request) -> web.Response:
        """The account's fills (one per filled order here), with their commission: MEXC's
        order endpoints report none."""
        p = request.params
        rows = [
            {
                "symbol": o.symbol,
                "id": f"t{o.id}",
                "orderId": o.id,
                "orderListId": -1,
                "price": plain(o.average),
                "qty": plain(o.filled),
                "quoteQty": plain(o.cost),
                "commission": plain(o.fee),
                "commissionAsset": self.instruments[o.symbol].quote,
                "time": o.updated,
                "isBuyer": o.side == "buy",
                "isMaker": o.type == "limit",
                "isBestMatch": True,
                "isSelfTrade": False,
                "clientOrderId": o.client_id,
            }
            for o in sorted(self.orders.values(), key=lambda o: o.created)
            if o.symbol == p.get("symbol")
            and o.filled > 0
            and (p.get("orderId") is None or o.id == p.get("orderId"))
        ]
        return web.json_response(rows)


def _public(o: VenueOrder) -> dict[str, Any]:
    return {
        "symbol": o.symbol,
        "orderId": o.id,
        "orderListId": -1,
        "clientOrderId": o.client_id,
        "price": plain(o.price) if o.price is not None else "0",
        "origQty": plain(o.amount),
        "executedQty": plain(o.filled),
        "cummulativeQuoteQty": plain(o.cost),
        "status": STATUS[o.status],
        "timeInForce": None,
        "type": o.type.upper(),
        "side": o.side.upper(),
        "stopPrice": None,
        "icebergQty": None,
        "time": o.created,
        "updateTime": o.updated,
        "isWorking": True,
        "origQuoteOrderQty": "0",
    }
