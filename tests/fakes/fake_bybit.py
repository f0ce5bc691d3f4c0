"""A local HTTP server that answers like Bybit's V5 REST API (unified trading account), for
ccxt tests of spot and USDT-linear markets.

Paths (https://bybit-exchange.github.io/docs/v5/intro): ``/v5/market/time``,
``/v5/market/instruments-info`` (``category`` spot / linear / inverse / option),
``/v5/user/query-api``, ``/v5/account/info``, ``/v5/account/wallet-balance``,
``/v5/asset/coin/query-info``, ``/v5/order/create``, ``/v5/order/cancel``,
``/v5/order/realtime``, ``/v5/order/history``, ``/v5/execution/list`` (the account's fills),
``/v5/position/set-leverage``, ``/v5/account/set-margin-mode``.

A conditional (stop) order that triggers keeps its ``orderId`` and fills under it, as Bybit's
V5 conditional orders do.

Private calls are signed as documented: headers ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP``,
``X-BAPI-RECV-WINDOW`` and ``X-BAPI-SIGN`` = hex HMAC-SHA256 of
``timestamp + api_key + recv_window + (query string | JSON body)``; a bad key or
signature answers ``10003``.

Errors (``retCode``, HTTP 200): rate limit ``10006``, maintenance ``10016``
("Server is under maintenance"), insufficient balance ``170131`` (spot) / ``110007``
(contracts), invalid order ``170136`` (spot, quantity below minimum) / ``110094`` (contracts).

Markets: the real definitions recorded in ``worker/exchanges/markets/bybit.json``.
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
    load_ccxt_markets,
    now_ms,
    plain,
)

KLINE_INTERVALS = {
    **{str(m): m * 60_000 for m in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)},
    "D": 86_400_000,
    "W": 7 * 86_400_000,
}
"""Bybit's kline intervals in ms (``M``, a month, is not generated)."""

STATUS = {
    "open": "New",
    "untriggered": "Untriggered",
    "filled": "Filled",
    "canceled": "Cancelled",
}


class FakeBybit(FakeVenue):
    exchange_id = "bybit"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instrument_info: dict[str, list[dict[str, Any]]] = {
            "spot": [],
            "linear": [],
            "inverse": [],
            "option": [],
        }
        for market in load_ccxt_markets("bybit").values():
            if market["type"] not in {"spot", "swap"}:
                continue
            category = "spot" if market["spot"] else "linear"
            info = market["info"]
            self.instrument_info[category].append(info)
            self.instruments[_key(category, info["symbol"])] = Instrument(
                id=info["symbol"],
                base=info["baseCoin"],
                quote=info["quoteCoin"],
                contract=category == "linear",
                min_amount=Decimal(info["lotSizeFilter"]["minOrderQty"]),
                max_leverage=int(Decimal(info.get("leverageFilter", {}).get("maxLeverage", "1"))),
            )

    def price_key(self, instrument_id: str) -> str:
        return instrument_id.split(":")[-1]  # spot and linear share a price

    # -- protocol -------------------------------------------------------------------------

    def is_private(self, request: Request) -> bool:
        return not request.path.startswith("/v5/market/")

    def authenticate(self, request: Request) -> bool:
        h = request.headers
        if h.get("x-bapi-api-key") != self.api_key:
            return False
        payload = request.body if request.method == "POST" else request.headers["x-raw-query"]
        auth = h.get("x-bapi-timestamp", "") + self.api_key + h.get("x-bapi-recv-window", "")
        expected = hmac_sha256(self.secret, auth + payload).hex()
        return hmac.compare_digest(expected, h.get("x-bapi-sign", ""))

    def _answer(self, result: Any, code: int = 0, msg: str = "OK") -> web.Response:
        body = {
            "retCode": code,
            "retMsg": msg,
            "result": result,
            "retExtInfo": {},
            "time": now_ms(),
        }
        return web.json_response(body)

    def error(self, kind: str, request: Request) -> web.Response:
        contract = request.params.get("category") == "linear"
        code, msg = {
            "auth": (10003, "API key is invalid."),
            "rate_limit": (10006, "Too many visits!"),
            "maintenance": (10016, "Server is under maintenance, please try again later."),
            "insufficient": (
                (110007, "ab not enough for new order")
                if contract
                else (170131, "Insufficient balance.")
            ),
            "invalid": (
                (110094, "Order does not meet minimum order value")
                if contract
                else (170136, "Order quantity lower than the minimum.")
            ),
        }[kind]
        return self._answer({}, code, msg)

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/v5/market/time"): self._time,
            ("GET", "/v5/market/instruments-info"): self._instruments,
            ("GET", "/v5/market/kline"): self._kline,
            ("GET", "/v5/user/query-api"): lambda r: self._answer(
                {"id": "1", "apiKey": self.api_key, "readOnly": 0, "unified": 0, "uta": 1}
            ),
            ("GET", "/v5/account/info"): lambda r: self._answer(
                {"unifiedMarginStatus": 5, "marginMode": self._account_margin_mode()}
            ),
            ("GET", "/v5/asset/coin/query-info"): lambda r: self._answer({"rows": []}),
            ("GET", "/v5/account/wallet-balance"): self._wallet,
            ("POST", "/v5/order/create"): self._create,
            ("POST", "/v5/order/cancel"): self._cancel,
            ("GET", "/v5/order/realtime"): self._realtime,
            ("GET", "/v5/order/history"): self._history,
            ("GET", "/v5/execution/list"): self._executions,
            ("POST", "/v5/position/set-leverage"): self._set_leverage,
            ("POST", "/v5/account/set-margin-mode"): self._set_margin_mode,
        }

    # -- market data ----------------------------------------------------------------------

    def _time(self, request: Request) -> web.Response:
        now = now_ms()
        return self._answer({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})

    def _instruments(self, request: Request) -> web.Response:
        category = request.params.get("category", "spot")
        rows = self.instrument_info.get(category)
        if rows is None:
            return self._answer({}, 10001, "params error: category")
        return self._answer({"category": category, "list": rows, "nextPageCursor": ""})

    def _kline(self, request: Request) -> web.Response:
        """GET /v5/market/kline: ``interval`` 1 … 720 (minutes), D, W or M; ``start`` and
        ``end`` inclusive, ``limit`` 1 … 1000 (default 200); the candles from ``start`` on,
        newest first, each ``[startTime, open, high, low, close, volume, turnover]`` as text."""
        p = request.params
        step = KLINE_INTERVALS.get(p.get("interval", ""))
        if step is None:
            return self._answer({}, 10001, "Invalid period!")
        limit = int(p.get("limit", 200))
        if not 1 <= limit <= 1000:
            return self._answer({}, 10001, "params error: limit")
        start, end = int(p.get("start", 0)), int(p.get("end", now_ms()))
        rows = self.candles(p.get("symbol", ""), step, start, end, limit)
        listed = [[str(t), o, h, lo, c, v, "0"] for t, o, h, lo, c, v in reversed(rows)]
        return self._answer(
            {"category": p.get("category"), "symbol": p.get("symbol"), "list": listed}
        )

    # -- account --------------------------------------------------------------------------

    def _account_margin_mode(self) -> str:
        return self.margin_mode.get("*", "REGULAR_MARGIN")

    def _wallet(self, request: Request) -> web.Response:
        if request.params.get("accountType") != "UNIFIED":
            return self._answer({}, 10001, "accountType only support UNIFIED.")
        coins = [
            {
                "coin": coin,
                "walletBalance": plain(free + used),
                "equity": plain(free + used),
                "locked": plain(used),
                "totalOrderIM": "0",
                "totalPositionIM": "0",
                "availableToWithdraw": plain(free),
                "borrowAmount": "0",
                "accruedInterest": "0",
                "unrealisedPnl": "0",
            }
            for coin, (free, used) in self.balances.items()
        ]
        return self._answer({"list": [{"accountType": "UNIFIED", "coin": coins}]})

    def _set_leverage(self, request: Request) -> web.Response:
        p = request.params
        inst = self.instruments.get(_key(p.get("category", ""), p.get("symbol", "")))
        if inst is None or not inst.contract:
            return self._answer({}, 10001, "params error: symbol invalid")
        leverage = Decimal(p["buyLeverage"])
        if p["buyLeverage"] != p["sellLeverage"] or not 1 <= leverage <= inst.max_leverage:
            return self._answer({}, 10001, "leverage invalid")
        if self.leverage.get(inst.id) == int(leverage):
            return self._answer({}, 110043, "Set leverage not modified")
        self.leverage[inst.id] = int(leverage)
        return self._answer({})

    def _set_margin_mode(self, request: Request) -> web.Response:
        mode = request.params.get("setMarginMode")
        if mode not in {"ISOLATED_MARGIN", "REGULAR_MARGIN", "PORTFOLIO_MARGIN"}:
            return self._answer({}, 10001, "params error: setMarginMode")
        self.margin_mode["*"] = mode
        return self._answer({"reasons": []})

    # -- orders ---------------------------------------------------------------------------

    def _create(self, request: Request) -> web.Response:
        p = request.params
        category = p.get("category")
        key = _key(str(category), str(p.get("symbol")))
        if key not in self.instruments or p.get("side") not in {"Buy", "Sell"}:
            return self._answer({}, 10001, "params error: symbol invalid")
        kind = str(p.get("orderType", "")).lower()
        qty = Decimal(str(p.get("qty", "0")))
        if category == "spot" and kind == "market" and p.get("side") == "Buy":
            if p.get("marketUnit") != "baseCoin":
                qty = qty / self.price(key)  # a market buy's qty is in the quote coin by default
        trigger = Decimal(str(p["triggerPrice"])) if p.get("triggerPrice") else None
        result = self.place(
            key,
            str(p["side"]).lower(),
            kind,
            qty,
            Decimal(str(p["price"])) if p.get("price") else None,
            trigger=trigger,
            client_id=p.get("orderLinkId") or None,
            reduce_only=bool(p.get("reduceOnly")),
            extra={
                "category": category,
                "orderFilter": p.get("orderFilter", "Order"),
                "triggerDirection": p.get("triggerDirection", 0),
            },
        )
        if result == "duplicate":
            return self._answer({}, 10001, "Duplicate orderLinkId")
        if isinstance(result, str):
            return self.error(result, request)
        return self._answer({"orderId": result.id, "orderLinkId": result.client_id})

    def _find(self, p: dict[str, Any]) -> VenueOrder | None:
        order = self.find(order_id=p.get("orderId"), client_id=p.get("orderLinkId"))
        if order is None or order.extra.get("category") != p.get("category"):
            return None
        return order

    def _cancel(self, request: Request) -> web.Response:
        order = self._find(request.params)
        if order is None or not self.cancel(order):
            code = 170213 if request.params.get("category") == "spot" else 110001
            return self._answer({}, code, "Order does not exist.")
        return self._answer({"orderId": order.id, "orderLinkId": order.client_id})

    def _listing(self, request: Request, open_ones: bool) -> web.Response:
        p = request.params
        category = p.get("category")
        rows = [
            o
            for o in self.orders.values()
            if o.extra.get("category") == category
            and (o.status in {"open", "untriggered"}) == open_ones
            and (not p.get("symbol") or o.symbol == _key(str(category), p["symbol"]))
        ]
        if p.get("orderId") or p.get("orderLinkId"):
            rows = [
                o
                for o in rows
                if (not p.get("orderId") or o.id == p["orderId"])
                and (not p.get("orderLinkId") or o.client_id == p["orderLinkId"])
            ]
        if p.get("orderFilter"):  # a unified account lists every kind unless filtered
            rows = [o for o in rows if o.extra.get("orderFilter") == p["orderFilter"]]
        rows.sort(key=lambda o: o.created, reverse=True)
        return self._answer(
            {"category": category, "list": [_public(o) for o in rows], "nextPageCursor": ""}
        )

    def _realtime(self, request: Request) -> web.Response:
        # Without an id the documented default is the open orders; ``openOnly=1`` would add
        # recent closed ones, which these tests do not need.
        return self._listing(request, open_ones=True)

    def _history(self, request: Request) -> web.Response:
        return self._listing(request, open_ones=False)

    def _executions(self, request: Request) -> web.Response:
        p = request.params
        category = p.get("category")
        rows = [
            f
            for f in sorted(self.fills, key=lambda f: f.time, reverse=True)
            if f.order.extra.get("category") == category
            and (not p.get("symbol") or f.order.symbol == _key(str(category), p["symbol"]))
            and (not p.get("orderId") or f.order.id == p["orderId"])
        ]
        out = [
            {
                "symbol": f.order.symbol.split(":")[-1],
                "orderId": f.order.id,
                "orderLinkId": f.order.client_id,
                "side": f.order.side.capitalize(),
                "orderPrice": plain(f.order.price) if f.order.price is not None else "0",
                "orderQty": plain(f.order.amount),
                "leavesQty": "0",
                "orderType": f.order.type.capitalize(),
                "stopOrderType": "StopLoss" if f.order.trigger is not None else "UNKNOWN",
                "execFee": plain(f.fee),
                "feeCurrency": f.order.quote,
                "execId": f.id,
                "execPrice": plain(f.price),
                "execQty": plain(f.amount),
                "execType": "Trade",
                "execValue": plain(f.price * f.amount),
                "execTime": str(f.time),
                "feeRate": "0.001",
                "isMaker": False,
                "markPrice": "",
                "indexPrice": "",
                "closedSize": "",
                "seq": int(f.id),
            }
            for f in rows
        ]
        return self._answer({"category": category, "list": out, "nextPageCursor": ""})


def _key(category: str, symbol: str) -> str:
    return symbol if category == "spot" else f"{category}:{symbol}"


def _public(o: VenueOrder) -> dict[str, Any]:
    remaining = o.amount - o.filled if o.status in {"open", "untriggered"} else Decimal(0)
    return {
        "orderId": o.id,
        "orderLinkId": o.client_id,
        "blockTradeId": "",
        "symbol": o.symbol.split(":")[-1],
        "price": plain(o.price) if o.price is not None else "0",
        "qty": plain(o.amount),
        "side": o.side.capitalize(),
        "isLeverage": "0",
        "positionIdx": 0,
        "orderStatus": STATUS[o.status],
        "cancelType": "CancelByUser" if o.status == "canceled" else "UNKNOWN",
        "rejectReason": "EC_NoError",
        "avgPrice": plain(o.average) if o.average is not None else "",
        "leavesQty": plain(remaining),
        "leavesValue": "0",
        "cumExecQty": plain(o.filled),
        "cumExecValue": plain(o.cost),
        "cumExecFee": plain(o.fee),
        "cumFeeDetail": {o.quote: plain(o.fee)} if o.fee else {},
        "timeInForce": "IOC" if o.type == "market" else "GTC",
        "orderType": o.type.capitalize(),
        "stopOrderType": "StopLoss" if o.trigger is not None else "",
        "orderIv": "",
        "triggerPrice": plain(o.trigger) if o.trigger is not None else "0",
        "takeProfit": "0",
        "stopLoss": "0",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": int(o.extra.get("triggerDirection") or 0),
        "triggerBy": "LastPrice" if o.trigger is not None else "",
        "lastPriceOnCreated": "",
        "reduceOnly": o.reduce_only,
        "closeOnTrigger": False,
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "tpslMode": "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "placeType": "",
        "createdTime": str(o.created),
        "updatedTime": str(o.updated),
    }
