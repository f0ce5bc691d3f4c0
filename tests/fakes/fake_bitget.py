"""A local HTTP server that answers like Bitget's V2 REST API (spot and USDT-FUTURES), for
ccxt tests.

Paths (https://www.bitget.com/api-doc/spot/intro): ``/api/v2/public/time``,
``/api/v2/spot/public/symbols``, ``/api/v2/spot/public/coins``, ``/api/v2/spot/market/tickers``,
``/api/v2/margin/currencies`` (listed empty),
``/api/v2/spot/account/assets``, ``/api/v2/spot/trade/place-order``, ``cancel-order``,
``orderInfo``, ``unfilled-orders``, ``history-orders``, and the plan (trigger) orders
``place-plan-order``, ``cancel-plan-order``, ``current-plan-order``, ``history-plan-order``;
USDT-FUTURES perpetual swaps (one-way position mode): ``/api/v2/mix/market/contracts``,
``/api/v2/mix/market/ticker``, ``/api/v2/mix/account/accounts``, ``set-leverage``,
``set-margin-mode``, ``/api/v2/mix/order/place-order``, ``place-plan-order``, ``detail``,
``cancel-order``, ``cancel-plan-order``, ``orders-pending``, ``orders-history``,
``orders-plan-pending``, ``orders-plan-history``; the account's fills ``/api/v2/spot/trade/fills``
and ``/api/v2/mix/order/fills`` (fees negative, as Bitget reports them).

A plan (trigger) order that triggers fills under its own ``orderId`` (``executed``).

Private calls are signed as documented: ``ACCESS-KEY``, ``ACCESS-PASSPHRASE``,
``ACCESS-TIMESTAMP`` (ms) and ``ACCESS-SIGN`` = base64 HMAC-SHA256 of
``timestamp + METHOD + path + ("?" + query) + body``. A bad key answers ``40006``, a bad
passphrase ``40012``, a bad signature ``40009``. Demo trading is the same host with the header
``paptrading: 1`` (counted by ``sandbox_requests``).

A market buy's ``size`` is the quote amount to spend, as Bitget documents.

Errors (``code``): rate limit ``429`` (HTTP 429), maintenance ``40200`` ("Server upgrade"),
insufficient balance ``43012``, invalid order ``45110`` (below the minimum amount).

The account is a classic (not unified) one: the unified ``/api/v3`` paths, which ccxt probes
to tell, answer ``40404`` like any unknown path.

Markets: small samples of Bitget's own payloads in ``tests/fakes/markets/bitget.json`` (spot
symbols) and ``bitget_contracts.json`` (USDT-FUTURES contracts).
"""

from __future__ import annotations

import base64
import hmac
import json
from decimal import ROUND_DOWN, Decimal
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

STATUS = {"open": "live", "untriggered": "live", "filled": "filled", "canceled": "cancelled"}
SPOT = "/api/v2/spot/trade/"
MIX_ORDER = "/api/v2/mix/order/"
MIX = "mix:"
"""Prefix of the engine's instrument ids of USDT-FUTURES contracts (the symbols are shared)."""


SPOT_GRANULARITIES = {
    **{f"{m}min": m * 60_000 for m in (1, 3, 5, 15, 30)},
    "1h": 3_600_000,
    "4h": 4 * 3_600_000,
    "6Hutc": 6 * 3_600_000,
    "12Hutc": 12 * 3_600_000,
    "1Dutc": 86_400_000,
    "1Wutc": 7 * 86_400_000,
}
"""Bitget spot's candle granularities in ms (months are not generated)."""


class FakeBitget(FakeVenue):
    exchange_id = "bitget"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.symbols: list[dict[str, Any]] = load_fixture("bitget.json")
        for info in self.symbols:
            self.instruments[info["symbol"]] = Instrument(
                id=info["symbol"],
                base=info["baseCoin"],
                quote=info["quoteCoin"],
                contract=False,
                min_amount=Decimal(info["minTradeAmount"]),
            )
        self.contracts: list[dict[str, Any]] = load_fixture("bitget_contracts.json")
        for info in self.contracts:
            self.instruments[MIX + info["symbol"]] = Instrument(
                id=MIX + info["symbol"],
                base=info["baseCoin"],
                quote=info["quoteCoin"],
                contract=True,
                min_amount=Decimal(info["minTradeNum"]),
                max_leverage=int(info["maxLever"]),
            )
        self._auth_error = ("40009", "sign signature error")

    def sandbox_requests(self) -> int:
        return sum(1 for r in self.requests if r.headers.get("paptrading") == "1")

    # -- protocol -------------------------------------------------------------------------

    def is_private(self, request: Request) -> bool:
        public = "/public/" in request.path or "/market/" in request.path
        return not public and request.path != "/api/v2/margin/currencies"

    def not_found(self, request: Request) -> web.Response:
        return self._answer(None, "40404", "Request URL NOT FOUND", 404)

    def authenticate(self, request: Request) -> bool:
        h = request.headers
        if h.get("access-key") != self.api_key:
            self._auth_error = ("40006", "Invalid ACCESS_KEY")
            return False
        if h.get("access-passphrase") != self.password:
            self._auth_error = ("40012", "apikey/password is incorrect")
            return False
        self._auth_error = ("40009", "sign signature error")
        query = request.headers["x-raw-query"]
        prehash = (
            h.get("access-timestamp", "")
            + request.method
            + request.path
            + ("?" + query if query else "")
            + request.body
        )
        expected = base64.b64encode(hmac_sha256(self.secret, prehash)).decode()
        return hmac.compare_digest(expected, h.get("access-sign", ""))

    @staticmethod
    def _answer(
        data: Any, code: str = "00000", msg: str = "success", status: int = 200
    ) -> web.Response:
        body = {"code": code, "msg": msg, "requestTime": now_ms(), "data": data}
        return web.json_response(body, status=status)

    def error(self, kind: str, request: Request) -> web.Response:
        code, msg, status = {
            "auth": (*self._auth_error, 400),
            "rate_limit": ("429", "Too Many Requests", 429),
            "maintenance": ("40200", "Server upgrade, please try again later", 400),
            "insufficient": ("43012", "Insufficient balance", 400),
            "invalid": ("45110", "less than the minimum amount 1 USDT", 400),
            "duplicate": ("43118", "clientOid duplicate", 400),
        }[kind]
        return self._answer(None, code, msg, status)

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/api/v2/public/time"): lambda r: self._answer({"serverTime": str(now_ms())}),
            ("GET", "/api/v2/spot/public/symbols"): lambda r: self._answer(self.symbols),
            ("GET", "/api/v2/spot/market/candles"): lambda r: self._candles(r, 1000),
            ("GET", "/api/v2/spot/market/history-candles"): lambda r: self._candles(r, 200),
            ("GET", "/api/v2/spot/public/coins"): lambda r: self._answer([]),
            ("GET", "/api/v2/margin/currencies"): lambda r: self._answer([]),
            ("GET", "/api/v2/mix/market/contracts"): self._contracts,
            ("GET", "/api/v2/mix/market/ticker"): self._tickers,
            ("GET", "/api/v2/mix/account/accounts"): self._mix_accounts,
            ("POST", "/api/v2/mix/account/set-leverage"): self._mix_set_leverage,
            ("POST", "/api/v2/mix/account/set-margin-mode"): self._mix_set_margin_mode,
            ("POST", MIX_ORDER + "place-order"): self._mix_place,
            ("POST", MIX_ORDER + "place-plan-order"): self._mix_place,
            ("GET", MIX_ORDER + "detail"): self._mix_detail,
            ("POST", MIX_ORDER + "cancel-order"): self._mix_cancel,
            ("POST", MIX_ORDER + "cancel-plan-order"): self._mix_cancel_plan,
            ("GET", MIX_ORDER + "orders-pending"): lambda r: self._mix_list(r, True, False),
            ("GET", MIX_ORDER + "orders-history"): lambda r: self._mix_list(r, False, False),
            ("GET", MIX_ORDER + "orders-plan-pending"): lambda r: self._mix_list(r, True, True),
            ("GET", MIX_ORDER + "orders-plan-history"): lambda r: self._mix_list(r, False, True),
            ("GET", "/api/v2/spot/market/tickers"): self._tickers,
            ("GET", "/api/v2/spot/account/assets"): self._assets,
            ("POST", SPOT + "place-order"): self._place,
            ("POST", SPOT + "cancel-order"): self._cancel,
            ("GET", SPOT + "orderInfo"): self._info,
            ("GET", SPOT + "unfilled-orders"): lambda r: self._list(r, True, False),
            ("GET", SPOT + "history-orders"): lambda r: self._list(r, False, False),
            ("POST", SPOT + "place-plan-order"): self._place_plan,
            ("POST", SPOT + "cancel-plan-order"): self._cancel_plan,
            ("GET", SPOT + "current-plan-order"): lambda r: self._list(r, True, True),
            ("GET", SPOT + "history-plan-order"): lambda r: self._list(r, False, True),
            ("GET", SPOT + "fills"): lambda r: self._fills(r, contract=False),
            ("GET", MIX_ORDER + "fills"): lambda r: self._fills(r, contract=True),
        }

    # -- market data and account ------------------------------------------------------------

    def _candles(self, request: Request, most: int) -> web.Response:
        """GET /api/v2/spot/market/candles (at most 1,000) and history-candles (at most 200):
        ``granularity`` 1min … 4h, 6Hutc, 12Hutc, 1Dutc, 1Wutc; the newest ``limit``
        candles with ``startTime <= ts < endTime``, oldest first, each ``[ts, open, high,
        low, close, baseVolume, usdtVolume, quoteVolume]`` as text."""
        p = request.params
        step = SPOT_GRANULARITIES.get(p.get("granularity", ""))
        if step is None:
            return self._answer(None, "400172", "Parameter verification failed", 400)
        limit = int(p.get("limit", 100))
        if not 1 <= limit <= most:
            return self._answer(None, "400172", "Parameter verification failed", 400)
        start, end = int(p.get("startTime", 0)), int(p.get("endTime", now_ms() + 1))
        rows = self.candles(p.get("symbol", ""), step, start, end - 1, 10**9)[-limit:]
        return self._answer([[str(t), o, h, lo, c, v, "0", "0"] for t, o, h, lo, c, v in rows])

    def _tickers(self, request: Request) -> web.Response:
        symbol = str(request.params.get("symbol", "BTCUSDT"))
        price = plain(self.price(symbol))
        row = {
            "symbol": symbol,
            "high24h": price,
            "open": price,
            "low24h": price,
            "lastPr": price,
            "quoteVolume": "0",
            "baseVolume": "0",
            "usdtVolume": "0",
            "bidPr": price,
            "askPr": price,
            "bidSz": "1",
            "askSz": "1",
            "openUtc": price,
            "ts": str(now_ms()),
            "changeUtc24h": "0",
            "change24h": "0",
        }
        return self._answer([row])

    def _assets(self, request: Request) -> web.Response:
        rows = [
            {
                "coin": coin,
                "available": plain(free),
                "frozen": plain(used),
                "locked": "0",
                "limitAvailable": "0",
                "uTime": str(now_ms()),
            }
            for coin, (free, used) in self.balances.items()
        ]
        return self._answer(rows)

    # -- orders ---------------------------------------------------------------------------

    def _size(self, p: dict[str, Any], symbol: str, market: bool) -> Decimal:
        size = Decimal(str(p.get("size", "0")))
        if market and p.get("side") == "buy":  # a market buy spends ``size`` of the quote coin
            info = next(i for i in self.symbols if i["symbol"] == symbol)
            step = Decimal(1).scaleb(-int(info["quantityPrecision"]))
            size = (size / self.price(symbol)).quantize(step, rounding=ROUND_DOWN)
        return size

    def _placed(self, result: VenueOrder | str, request: Request) -> web.Response:
        if isinstance(result, str):
            return self.error(result, request)
        return self._answer({"orderId": result.id, "clientOid": result.client_id})

    def _place(self, request: Request) -> web.Response:
        p = request.params
        symbol, kind = str(p.get("symbol")), p.get("orderType")
        if symbol not in self.instruments or kind not in {"market", "limit"}:
            return self._answer(None, "40034", "Parameter does not exist", 400)
        result = self.place(
            symbol,
            str(p.get("side")),
            str(kind),
            self._size(p, symbol, kind == "market"),
            Decimal(str(p["price"])) if p.get("price") else None,
            client_id=p.get("clientOid") or None,
        )
        return self._placed(result, request)

    def _place_plan(self, request: Request) -> web.Response:
        p = request.params
        symbol = str(p.get("symbol"))
        if symbol not in self.instruments or not p.get("triggerPrice"):
            return self._answer(None, "40034", "Parameter does not exist", 400)
        kind = str(p.get("orderType", "market"))
        result = self.place(
            symbol,
            str(p.get("side")),
            kind,
            self._size(p, symbol, kind == "market"),
            Decimal(str(p["executePrice"])) if p.get("executePrice") else None,
            trigger=Decimal(str(p["triggerPrice"])),
            client_id=p.get("clientOid") or None,
            extra={"plan": True, "planType": p.get("planType", "amount")},
        )
        return self._placed(result, request)

    def _one(self, p: dict[str, Any], plan: bool) -> VenueOrder | None:
        order = self.find(order_id=p.get("orderId"), client_id=p.get("clientOid"))
        if order is None or bool(order.extra.get("plan")) != plan:
            return None
        return order

    def _info(self, request: Request) -> web.Response:
        order = self._one(request.params, plan=False)
        return self._answer([] if order is None else [self._public(order)])

    def _cancel(self, request: Request) -> web.Response:
        order = self._one(request.params, plan=False)
        if order is None or not self.cancel(order):
            return self._answer(None, "43001", "The order does not exist", 400)
        return self._answer({"orderId": order.id, "clientOid": order.client_id})

    def _cancel_plan(self, request: Request) -> web.Response:
        order = self._one(request.params, plan=True)
        if order is None or not self.cancel(order):
            return self._answer(None, "43025", "Plan order does not exist", 400)
        return self._answer({"result": "success"})

    def _list(self, request: Request, open_ones: bool, plan: bool) -> web.Response:
        p = request.params
        rows = [
            o
            for o in sorted(self.orders.values(), key=lambda o: o.created, reverse=True)
            if bool(o.extra.get("plan")) == plan
            and (o.status in {"open", "untriggered"}) == open_ones
            and (not p.get("symbol") or o.symbol == p["symbol"])
            and (not p.get("orderId") or o.id == p["orderId"])
        ]
        if plan:
            return self._answer(
                {
                    "nextFlag": False,
                    "idLessThan": "",
                    "orderList": [self._public_plan(o) for o in rows],
                }
            )
        return self._answer([self._public(o) for o in rows])

    # -- USDT-FUTURES (/api/v2/mix): perpetual swaps, one-way position mode ----------------

    def _contracts(self, request: Request) -> web.Response:
        if request.params.get("productType") != "USDT-FUTURES":
            return self._answer([])
        return self._answer(self.contracts)

    def _mix_accounts(self, request: Request) -> web.Response:
        if request.params.get("productType") != "USDT-FUTURES":
            return self._answer(None, "40019", "Parameter productType cannot be empty", 400)
        free, used = self.balances.get("USDT", [Decimal(0), Decimal(0)])
        row = {
            "marginCoin": "USDT",
            "locked": plain(used),
            "available": plain(free + used),
            "crossedMaxAvailable": plain(free),
            "isolatedMaxAvailable": plain(free),
            "maxTransferOut": plain(free),
            "accountEquity": plain(free + used),
            "usdtEquity": plain(free + used),
            "unrealizedPL": "0",
            "coupon": "0",
        }
        return self._answer([row])

    def _mix_checked(self, p: dict[str, Any]) -> Instrument | web.Response:
        inst = self.instruments.get(_mix_key(p))
        if (
            inst is None
            or p.get("productType") != "USDT-FUTURES"
            or p.get("marginCoin", "USDT") != "USDT"
        ):
            return self._answer(None, "40034", "Parameter does not exist", 400)
        return inst

    def _mix_set_leverage(self, request: Request) -> web.Response:
        inst = self._mix_checked(request.params)
        if isinstance(inst, web.Response):
            return inst
        leverage = int(Decimal(str(request.params.get("leverage"))))
        if not 1 <= leverage <= inst.max_leverage:
            return self._answer(None, "40797", "Exceeded the maximum settable leverage", 400)
        self.leverage[inst.id] = leverage
        row = {
            "symbol": request.params["symbol"],
            "marginCoin": "USDT",
            "crossMarginLeverage": leverage,
        }
        return self._answer(row)

    def _mix_set_margin_mode(self, request: Request) -> web.Response:
        inst = self._mix_checked(request.params)
        if isinstance(inst, web.Response):
            return inst
        mode = request.params.get("marginMode")
        if mode not in {"isolated", "crossed"}:
            return self._answer(None, "40034", "Parameter marginMode does not exist", 400)
        self.margin_mode[inst.id] = str(mode)
        return self._answer({"symbol": request.params["symbol"], "marginMode": mode})

    def _mix_place(self, request: Request) -> web.Response:
        p = request.params
        inst = self._mix_checked(p)
        if isinstance(inst, web.Response):
            return inst
        plan = request.path.endswith("place-plan-order")
        kind = p.get("orderType")
        if kind not in {"market", "limit"} or p.get("marginMode") not in {"isolated", "crossed"}:
            return self._answer(None, "40034", "Parameter does not exist", 400)
        if plan and not p.get("triggerPrice"):
            return self._answer(None, "40034", "Parameter triggerPrice does not exist", 400)
        price = p.get("executePrice") if plan else p.get("price")
        result = self.place(
            inst.id,
            str(p.get("side")),
            str(kind),
            Decimal(str(p.get("size", "0"))),
            Decimal(str(price)) if price and Decimal(str(price)) > 0 else None,
            trigger=Decimal(str(p["triggerPrice"])) if plan else None,
            client_id=p.get("clientOid") or None,
            reduce_only=p.get("reduceOnly") == "YES",
            extra={
                "plan": plan,
                "planType": p.get("planType", ""),
                "marginMode": p.get("marginMode"),
            },
        )
        return self._placed(result, request)

    def _mix_one(self, p: dict[str, Any], plan: bool) -> VenueOrder | None:
        order = self._one(p, plan)
        return order if order is not None and order.symbol == _mix_key(p) else None

    def _mix_detail(self, request: Request) -> web.Response:
        order = self._mix_one(request.params, plan=False)
        if order is None:
            return self._answer(None, "40109", "The data of the order cannot be found", 400)
        return self._answer(self._mix_public(order))

    def _mix_cancel(self, request: Request) -> web.Response:
        order = self._mix_one(request.params, plan=False)
        if order is None or not self.cancel(order):
            return self._answer(None, "40768", "Order does not exist", 400)
        return self._answer({"orderId": order.id, "clientOid": order.client_id})

    def _mix_cancel_plan(self, request: Request) -> web.Response:
        p = request.params
        done, failed = [], []
        for ids in p.get("orderIdList") or []:
            order = self._mix_one({**p, **ids}, plan=True)
            if order is not None and self.cancel(order):
                done.append({"orderId": order.id, "clientOid": order.client_id})
            else:
                failed.append({**ids, "errorMsg": "Plan order does not exist"})
        return self._answer({"successList": done, "failureList": failed})

    def _mix_list(self, request: Request, open_ones: bool, plan: bool) -> web.Response:
        p = request.params
        rows = [
            o
            for o in sorted(self.orders.values(), key=lambda o: o.created, reverse=True)
            if o.symbol.startswith(MIX)
            and bool(o.extra.get("plan")) == plan
            and (o.status in {"open", "untriggered"}) == open_ones
            and (not p.get("symbol") or o.symbol == _mix_key(p))
            and (not p.get("orderId") or o.id == p["orderId"])
            and (not plan or o.extra.get("planType") == p.get("planType", "normal_plan"))
        ]
        return self._answer(
            {"entrustedList": [self._mix_public(o) for o in rows] or None, "endId": ""}
        )

    def _mix_public(self, o: VenueOrder) -> dict[str, Any]:
        status = {"open": "live", "untriggered": "live", "filled": "filled", "canceled": "canceled"}
        if o.extra.get("plan"):
            status = {
                **status,
                "untriggered": "live",
                "filled": "executed",
                "canceled": "cancelled",
            }
        return {
            "symbol": o.symbol[len(MIX) :],
            "size": plain(o.amount),
            "orderId": o.id,
            "clientOid": o.client_id,
            "baseVolume": plain(o.filled),
            "fee": plain(-o.fee),
            "price": plain(o.price) if o.price is not None else "",
            "priceAvg": plain(o.average) if o.average is not None else "",
            "status": status[o.status],
            "state": status[o.status],
            "planStatus": status[o.status],
            "side": o.side,
            "force": "gtc",
            "totalProfits": "0",
            "posSide": "net",
            "marginCoin": "USDT",
            "quoteVolume": plain(o.cost),
            "leverage": str(self.leverage.get(o.symbol, 1)),
            "marginMode": o.extra.get("marginMode", "crossed"),
            "reduceOnly": "YES" if o.reduce_only else "NO",
            "enterPointSource": "API",
            "tradeSide": "buy_single" if o.side == "buy" else "sell_single",
            "posMode": "one_way_mode",
            "orderType": o.type,
            "orderSource": o.type,
            "planType": o.extra.get("planType", ""),
            "triggerPrice": plain(o.trigger) if o.trigger is not None else "",
            "executePrice": plain(o.price) if o.price is not None else "0",
            "triggerType": "fill_price" if o.trigger is not None else "",
            "cTime": str(o.created),
            "uTime": str(o.updated),
        }

    def _fills(self, request: Request, contract: bool) -> web.Response:
        p = request.params
        symbol = _mix_key(p) if contract else str(p.get("symbol"))
        rows = [
            f
            for f in sorted(self.fills, key=lambda f: f.time, reverse=True)
            if f.order.symbol == symbol and (not p.get("orderId") or f.order.id == p["orderId"])
        ]
        out: list[dict[str, Any]] = []
        for f in rows:
            fee = {"deduction": "no", "feeCoin": f.order.quote, "totalDeductionFee": "0"}
            row = {
                "userId": "1",
                "symbol": f.order.symbol.removeprefix(MIX),
                "orderId": f.order.id,
                "tradeId": f.id,
                "orderType": f.order.type,
                "side": f.order.side,
                "tradeScope": "taker",
                "cTime": str(f.time),
                "uTime": str(f.time),
            }
            if contract:
                row.update(
                    price=plain(f.price),
                    baseVolume=plain(f.amount),
                    quoteVolume=plain(f.price * f.amount),
                    profit="0",
                    enterPointSource="API",
                    tradeSide="close" if f.order.reduce_only else "open",
                    posMode="one_way_mode",
                    feeDetail=[{**fee, "totalFee": plain(-f.fee)}],
                )
            else:
                row.update(
                    priceAvg=plain(f.price),
                    size=plain(f.amount),
                    amount=plain(f.price * f.amount),
                    feeDetail={**fee, "totalFee": plain(-f.fee)},
                )
            out.append(row)
        if contract:
            return self._answer({"fillList": out or None, "endId": ""})
        return self._answer(out)

    # -- payloads -------------------------------------------------------------------------

    def _public(self, o: VenueOrder) -> dict[str, Any]:
        market_buy = o.type == "market" and o.side == "buy"
        fee = {
            "newFees": {
                "c": 0,
                "d": 0,
                "deduction": False,
                "r": plain(-o.fee),
                "t": plain(-o.fee),
                "totalDeductionFee": 0,
            },
            o.quote: {
                "deduction": False,
                "feeCoinCode": o.quote,
                "totalDeductionFee": 0,
                "totalFee": plain(-o.fee),
            },
        }
        return {
            "userId": "1",
            "symbol": o.symbol,
            "orderId": o.id,
            "clientOid": o.client_id,
            "price": plain(o.price) if o.price is not None else "0",
            "size": plain(o.amount * (o.average or Decimal(0))) if market_buy else plain(o.amount),
            "orderType": o.type,
            "side": o.side,
            "status": STATUS[o.status],
            "priceAvg": plain(o.average) if o.average is not None else "0",
            "baseVolume": plain(o.filled),
            "quoteVolume": plain(o.cost),
            "enterPointSource": "API",
            "feeDetail": json.dumps(fee) if o.fee else "",
            "orderSource": "market" if o.type == "market" else "normal",
            "tpslType": "normal",
            "triggerPrice": None,
            "cTime": str(o.created),
            "uTime": str(o.updated),
        }

    def _public_plan(self, o: VenueOrder) -> dict[str, Any]:
        status = {"untriggered": "live", "canceled": "cancelled", "filled": "executed"}
        return {
            "orderId": o.id,
            "clientOid": o.client_id,
            "symbol": o.symbol,
            "size": plain(o.amount),
            "executePrice": plain(o.price) if o.price is not None else "0",
            "triggerPrice": plain(o.trigger),
            "status": status.get(o.status, "live"),
            "orderType": o.type,
            "side": o.side,
            "planType": o.extra.get("planType", "amount"),
            "triggerType": "fill_price",
            "enterPointSource": "API",
            "cTime": str(o.created),
            "uTime": str(o.updated),
        }


def _mix_key(p: dict[str, Any]) -> str:
    return MIX + str(p.get("symbol"))
