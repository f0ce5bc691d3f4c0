"""A local HTTP server that answers like OKX's V5 REST API, for ccxt tests of spot and
USDT-margined perpetual swap markets.

Paths (https://www.okx.com/docs-v5/en/): ``/api/v5/public/time``, ``/api/v5/public/instruments``
(``instType`` SPOT / SWAP / FUTURES / OPTION), ``/api/v5/asset/currencies``,
``/api/v5/account/balance``, ``/api/v5/trade/order`` and ``/api/v5/trade/batch-orders`` (POST place, GET details by ``ordId`` or
``clOrdId``), ``/api/v5/trade/cancel-order``, ``/api/v5/trade/orders-pending``,
``/api/v5/trade/orders-history``, ``/api/v5/trade/order-algo`` (POST place, GET details),
``/api/v5/trade/cancel-algos``, ``/api/v5/trade/orders-algo-pending``,
``/api/v5/trade/fills-history`` (the account's fills), ``/api/v5/account/set-leverage``.

An algo (conditional or trigger) order that triggers places an order of its own: the algo
order turns ``effective`` with that order's ``ordId``, ``actualSz``, ``actualPx`` and
``triggerTime``, and its fill is listed under that ``ordId``.

Private calls are signed as documented: ``OK-ACCESS-KEY``, ``OK-ACCESS-PASSPHRASE``,
``OK-ACCESS-TIMESTAMP`` (ISO 8601) and ``OK-ACCESS-SIGN`` = base64 HMAC-SHA256 of
``timestamp + method + request path (with query) + body``. A bad key answers ``50111``, a bad
passphrase ``50105``, a bad signature ``50113`` (HTTP 401). Demo trading is the same host
with the header ``x-simulated-trading: 1`` (counted by ``sandbox_requests``).

``clOrdId`` is checked as documented: up to 32 case-sensitive letters and digits.

Errors: rate limit ``50011`` (HTTP 429), maintenance ``50001`` (HTTP 503, "Service temporarily
unavailable"), and per order (``code`` "1", the reason in ``data[0].sCode``): insufficient
balance ``51008``, invalid order ``51020`` (amount below the minimum).

Markets: a small sample of OKX's own instruments payload in ``tests/fakes/markets/okx.json``
(BTC-USDT, ETH-USDT spot; BTC-USDT-SWAP, ETH-USDT-SWAP), field for field as OKX lists them.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
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

CL_ORD_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
STATE = {"open": "live", "untriggered": "live", "filled": "filled", "canceled": "canceled"}


CANDLE_BARS = {
    **{f"{m}m": m * 60_000 for m in (1, 3, 5, 15, 30)},
    **{f"{h}H": h * 3_600_000 for h in (1, 2, 4)},
    "6Hutc": 6 * 3_600_000,
    "12Hutc": 12 * 3_600_000,
    "1Dutc": 86_400_000,
    "1Wutc": 7 * 86_400_000,
}
"""OKX's candle bars in ms (UTC-aligned from 6 hours up; months are not generated)."""


class FakeOkx(FakeVenue):
    exchange_id = "okx"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instrument_info: list[dict[str, Any]] = load_fixture("okx.json")
        for info in self.instrument_info:
            swap = info["instType"] == "SWAP"
            base, quote = info["instFamily" if swap else "instId"].split("-")[:2]
            self.instruments[info["instId"]] = Instrument(
                id=info["instId"],
                base=base,
                quote=info["settleCcy"] if swap else quote,
                contract=swap,
                min_amount=Decimal(info["minSz"]),
                max_leverage=int(info["lever"]),
                contract_size=Decimal(info["ctVal"]) if swap else Decimal(1),
            )

        self._auth_error = ("50113", "Invalid Sign")

    def sandbox_requests(self) -> int:
        return sum(1 for r in self.requests if r.headers.get("x-simulated-trading") == "1")

    # -- protocol -------------------------------------------------------------------------

    def is_private(self, request: Request) -> bool:
        return not request.path.startswith(("/api/v5/public/", "/api/v5/market/"))

    def authenticate(self, request: Request) -> bool:
        h = request.headers
        if h.get("ok-access-key") != self.api_key:
            self._auth_error = ("50111", "Invalid OK-ACCESS-KEY")
            return False
        if h.get("ok-access-passphrase") != self.password:
            self._auth_error = ("50105", "Invalid OK-ACCESS-PASSPHRASE")
            return False
        self._auth_error = ("50113", "Invalid Sign")
        query = request.headers["x-raw-query"]
        path = request.path + ("?" + query if query else "")
        prehash = h.get("ok-access-timestamp", "") + request.method + path + request.body
        expected = base64.b64encode(hmac_sha256(self.secret, prehash)).decode()
        return hmac.compare_digest(expected, h.get("ok-access-sign", ""))

    @staticmethod
    def _answer(data: list[Any], code: str = "0", msg: str = "", status: int = 200) -> web.Response:
        return web.json_response({"code": code, "msg": msg, "data": data}, status=status)

    def error(self, kind: str, request: Request) -> web.Response:
        if kind == "auth":
            return self._answer([], *self._auth_error, 401)
        if kind == "rate_limit":
            return self._answer([], "50011", "Too Many Requests", 429)
        if kind == "maintenance":
            return self._answer(
                [], "50001", "Service temporarily unavailable. Try again later", 503
            )
        s_code, s_msg = {
            "insufficient": ("51008", "Order failed. Insufficient USDT balance in account."),
            "invalid": ("51020", "Your order should meet or exceed the minimum order amount."),
            "duplicate": ("51016", "Duplicated clOrdId"),
        }[kind]
        return self._order_failed(request.params, s_code, s_msg)

    def _order_failed(self, p: dict[str, Any], s_code: str, s_msg: str) -> web.Response:
        row = {
            "clOrdId": p.get("clOrdId", ""),
            "ordId": "",
            "tag": "",
            "sCode": s_code,
            "sMsg": s_msg,
        }
        return self._answer([row], "1", "All operations failed")

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/api/v5/public/time"): lambda r: self._answer([{"ts": str(now_ms())}]),
            ("GET", "/api/v5/public/instruments"): self._instruments,
            ("GET", "/api/v5/market/candles"): lambda r: self._candles(r, 300),
            ("GET", "/api/v5/market/history-candles"): lambda r: self._candles(r, 300),
            ("GET", "/api/v5/asset/currencies"): lambda r: self._answer([]),
            ("GET", "/api/v5/account/balance"): self._balance,
            ("POST", "/api/v5/account/set-leverage"): self._set_leverage,
            ("POST", "/api/v5/trade/order"): self._place,
            ("POST", "/api/v5/trade/batch-orders"): self._batch,
            ("GET", "/api/v5/trade/order"): self._details,
            ("POST", "/api/v5/trade/cancel-order"): self._cancel,
            ("GET", "/api/v5/trade/orders-pending"): self._pending,
            ("GET", "/api/v5/trade/orders-history"): self._history,
            ("POST", "/api/v5/trade/order-algo"): self._place_algo,
            ("GET", "/api/v5/trade/order-algo"): self._algo_details,
            ("POST", "/api/v5/trade/cancel-algos"): self._cancel_algos,
            ("GET", "/api/v5/trade/orders-algo-pending"): self._algo_pending,
            ("GET", "/api/v5/trade/fills-history"): self._fills,
        }

    # -- market data and account -------------------------------------------------------------

    def _candles(self, request: Request, most: int) -> web.Response:
        """GET /api/v5/market/candles and history-candles: ``bar`` 1m … 4H, 6Hutc, 12Hutc,
        1Dutc or 1Wutc; the candles with ``before < ts < after`` (both exclusive), newest
        first, at most ``limit`` (default 100) of the newest of them, each ``[ts, o, h, l,
        c, vol, volCcy, volCcyQuote, confirm]`` as text."""
        p = request.params
        step = CANDLE_BARS.get(p.get("bar", "1m"))
        if step is None:
            return self._answer([], "51000", "Parameter bar error")
        limit = int(p.get("limit", 100))
        if not 1 <= limit <= most:
            return self._answer([], "51000", "Parameter limit error")
        before, after = int(p.get("before", -1)), int(p.get("after", now_ms() + 1))
        rows = self.candles(p.get("instId", ""), step, before + 1, after - 1, 10**9)[-limit:]
        return self._answer(
            [[str(t), o, h, lo, c, v, v, "0", "1"] for t, o, h, lo, c, v in reversed(rows)]
        )

    def _instruments(self, request: Request) -> web.Response:
        kind = request.params.get("instType")
        if kind not in {"SPOT", "SWAP", "FUTURES", "OPTION", "MARGIN"}:
            return self._answer([], "51000", "Parameter instType error")
        return self._answer([i for i in self.instrument_info if i["instType"] == kind])

    def _balance(self, request: Request) -> web.Response:
        details = [
            {
                "ccy": ccy,
                "eq": plain(free + used),
                "cashBal": plain(free + used),
                "availBal": plain(free),
                "availEq": plain(free),
                "frozenBal": plain(used),
                "ordFrozen": plain(used),
                "upl": "0",
                "uTime": str(now_ms()),
            }
            for ccy, (free, used) in self.balances.items()
        ]
        return self._answer([{"totalEq": "0", "details": details, "uTime": str(now_ms())}])

    def _set_leverage(self, request: Request) -> web.Response:
        p = request.params
        inst = self.instruments.get(str(p.get("instId")))
        if inst is None or p.get("mgnMode") not in {"cross", "isolated"}:
            return self._answer([], "51000", "Parameter instId error")
        lever = int(Decimal(str(p.get("lever"))))
        if not 1 <= lever <= inst.max_leverage:
            return self._answer([], "59102", "Leverage exceeds the maximum leverage")
        self.leverage[inst.id] = lever
        self.margin_mode[inst.id] = str(p["mgnMode"])
        row = {"instId": inst.id, "lever": str(lever), "mgnMode": p["mgnMode"], "posSide": "net"}
        return self._answer([row])

    # -- orders ---------------------------------------------------------------------------

    def _checked(self, p: dict[str, Any]) -> tuple[Instrument, str] | web.Response:
        inst = self.instruments.get(str(p.get("instId")))
        if inst is None:
            return self._order_failed(p, "51001", "Instrument ID does not exist")
        if p.get("clOrdId") and not CL_ORD_ID.match(str(p["clOrdId"])):
            return self._order_failed(p, "51000", "Parameter clOrdId error")
        modes = {"cross", "isolated"} if inst.contract else {"cash", "cross", "isolated"}
        if p.get("tdMode") not in modes:
            return self._order_failed(p, "51000", "Parameter tdMode error")
        if p.get("side") not in {"buy", "sell"}:
            return self._order_failed(p, "51000", "Parameter side error")
        return inst, str(p["side"])

    def _placed(self, p: dict[str, Any], result: VenueOrder | str, algo: bool) -> web.Response:
        if isinstance(result, str):
            return self.error(result, Request("POST", "", p, {}, ""))
        if algo:
            row = {"algoId": result.id, "algoClOrdId": result.client_id, "clOrdId": "", "tag": ""}
        else:
            row = {"ordId": result.id, "clOrdId": result.client_id, "tag": "", "ts": str(now_ms())}
        return self._answer([{**row, "sCode": "0", "sMsg": "Order placed"}])

    def _place(self, request: Request) -> web.Response:
        p = request.params
        checked = self._checked(p)
        if isinstance(checked, web.Response):
            return checked
        inst, side = checked
        kind = p.get("ordType")
        if kind not in {"market", "limit"}:
            return self._order_failed(p, "51000", "Parameter ordType error")
        size = Decimal(str(p["sz"]))
        if kind == "market" and side == "buy" and not inst.contract:
            if p.get("tgtCcy", "quote_ccy") == "quote_ccy":
                size = size / self.price(inst.id)
        result = self.place(
            inst.id,
            side,
            str(kind),
            size,
            Decimal(str(p["px"])) if p.get("px") else None,
            client_id=p.get("clOrdId") or None,
            reduce_only=str(p.get("reduceOnly", "false")).lower() == "true",
            extra={"tdMode": p.get("tdMode")},
        )
        return self._placed(p, result, algo=False)

    def _batch(self, request: Request) -> web.Response:
        """Up to 20 orders in one call; ``code`` 0 if all were placed, 1 if none, 2 if some."""
        rows = json.loads(request.body or "[]")
        out: list[Any] = []
        for row in rows if isinstance(rows, list) else [rows]:
            answer = self._place(Request("POST", request.path, row, request.headers, ""))
            out.extend(json.loads(answer.text or "{}")["data"])
        placed = sum(1 for r in out if r["sCode"] == "0")
        code = "0" if placed == len(out) else "1" if placed == 0 else "2"
        return self._answer(out, code, "" if code == "0" else "All operations failed")

    def _place_algo(self, request: Request) -> web.Response:
        p = request.params
        checked = self._checked(p)
        if isinstance(checked, web.Response):
            return checked
        inst, side = checked
        trigger = p.get("slTriggerPx") or p.get("tpTriggerPx") or p.get("triggerPx")
        if p.get("ordType") not in {"conditional", "oco", "trigger"} or not trigger:
            return self._order_failed(p, "51000", "Parameter ordType error")
        result = self.place(
            inst.id,
            side,
            "market",
            Decimal(str(p["sz"])),
            trigger=Decimal(str(trigger)),
            client_id=p.get("algoClOrdId") or None,
            reduce_only=str(p.get("reduceOnly", "false")).lower() == "true",
            extra={"algo": True, "ordType": p["ordType"], "tdMode": p.get("tdMode"), **p},
        )
        return self._placed(p, result, algo=True)

    def _one(self, p: dict[str, Any], algo: bool) -> VenueOrder | None:
        if algo:
            order = self.find(order_id=p.get("algoId"), client_id=p.get("algoClOrdId"))
        else:
            order = self.find(order_id=p.get("ordId"), client_id=p.get("clOrdId"))
        if order is None or bool(order.extra.get("algo")) != algo:
            return None
        if p.get("instId") and order.symbol != p["instId"]:
            return None
        return order

    def _details(self, request: Request) -> web.Response:
        order = self._one(request.params, algo=False)
        if order is None:
            return self._answer([], "51603", "Order does not exist")
        return self._answer([self._public(order)])

    def _cancel(self, request: Request) -> web.Response:
        p = request.params
        order = self._one(p, algo=False)
        if order is None or not self.cancel(order):
            return self._order_failed(
                p,
                "51400",
                "Order cancellation failed as the order has been filled, canceled or does not exist",
            )
        row = {"ordId": order.id, "clOrdId": order.client_id, "sCode": "0", "sMsg": ""}
        return self._answer([row])

    def _listing(self, request: Request, open_ones: bool, algo: bool) -> web.Response:
        p = request.params
        rows = [
            o
            for o in self.orders.values()
            if bool(o.extra.get("algo")) == algo
            and (o.status in {"open", "untriggered"}) == open_ones
            and (not p.get("instId") or o.symbol == p["instId"])
        ]
        rows.sort(key=lambda o: o.created, reverse=True)
        render = self._public_algo if algo else self._public
        return self._answer([render(o) for o in rows])

    def _pending(self, request: Request) -> web.Response:
        return self._listing(request, open_ones=True, algo=False)

    def _history(self, request: Request) -> web.Response:
        return self._listing(request, open_ones=False, algo=False)

    def _algo_pending(self, request: Request) -> web.Response:
        return self._listing(request, open_ones=True, algo=True)

    def _algo_details(self, request: Request) -> web.Response:
        order = self._one(request.params, algo=True)
        if order is None:
            return self._answer([], "51603", "Order does not exist")
        return self._answer([self._public_algo(order)])

    def _cancel_algos(self, request: Request) -> web.Response:
        rows = json.loads(request.body or "[]")
        out = []
        for row in rows if isinstance(rows, list) else [rows]:
            order = self._one(row, algo=True)
            if order is None or not self.cancel(order):
                return self._answer(
                    [
                        {
                            "algoId": row.get("algoId", ""),
                            "sCode": "51400",
                            "sMsg": "Cancellation failed",
                        }
                    ],
                    "1",
                    "All operations failed",
                )
            out.append(
                {"algoId": order.id, "algoClOrdId": order.client_id, "sCode": "0", "sMsg": ""}
            )
        return self._answer(out)

    def fire(self, order: VenueOrder, at: Decimal) -> VenueOrder:
        """The algo order turns ``effective`` and places the order it describes."""
        spawned = self.place(
            order.symbol,
            order.side,
            "market",
            order.amount,
            client_id=None,
            reduce_only=order.reduce_only,
            extra={"tdMode": order.extra.get("tdMode"), "algoId": order.id},
        )
        assert isinstance(spawned, VenueOrder), spawned
        order.status, order.updated = "filled", now_ms()
        order.extra.update(ordId=spawned.id, triggered=order.updated)
        return spawned

    def _fills(self, request: Request) -> web.Response:
        p = request.params
        kind = p.get("instType")
        if kind not in {"SPOT", "SWAP", "FUTURES", "MARGIN", "OPTION"}:
            return self._answer([], "51000", "Parameter instType error")
        rows = [
            f
            for f in sorted(self.fills, key=lambda f: f.time, reverse=True)
            if ("SWAP" if f.order.contract else "SPOT") == kind
            and (not p.get("instId") or f.order.symbol == p["instId"])
            and (not p.get("ordId") or f.order.id == p["ordId"])
        ]
        out = [
            {
                "instType": kind,
                "instId": f.order.symbol,
                "tradeId": f.id,
                "ordId": f.order.id,
                "clOrdId": f.order.client_id,
                "billId": f.id,
                "tag": "",
                "fillPx": plain(f.price),
                "fillSz": plain(f.amount),
                "fillIdxPx": "",
                "fillPnl": "0",
                "side": f.order.side,
                "posSide": "net",
                "execType": "T",
                "feeCcy": f.order.quote,
                "fee": plain(-f.fee),
                "ts": str(f.time),
                "fillTime": str(f.time),
            }
            for f in rows
        ]
        return self._answer(out)

    # -- payloads -------------------------------------------------------------------------

    def _common(self, o: VenueOrder) -> dict[str, Any]:
        inst_type = "SWAP" if o.contract else "SPOT"
        return {
            "instType": inst_type,
            "instId": o.symbol,
            "ccy": "",
            "sz": plain(o.amount),
            "side": o.side,
            "posSide": "net",
            "tdMode": o.extra.get("tdMode") or "cash",
            "lever": str(self.leverage.get(o.symbol, 1)) if o.contract else "",
            "reduceOnly": "true" if o.reduce_only else "false",
            "tag": "",
            "cTime": str(o.created),
            "uTime": str(o.updated),
        }

    def _public(self, o: VenueOrder) -> dict[str, Any]:
        state = "filled" if o.status == "filled" else STATE[o.status]
        return {
            **self._common(o),
            "ordId": o.id,
            "clOrdId": o.client_id,
            "px": plain(o.price) if o.price is not None else "",
            "ordType": o.type,
            "accFillSz": plain(o.filled),
            "fillPx": plain(o.average) if o.average is not None else "",
            "fillSz": plain(o.filled),
            "fillTime": str(o.updated) if o.filled else "",
            "avgPx": plain(o.average) if o.average is not None else "",
            "state": state,
            "fee": plain(-o.fee) if o.fee else "0",
            "feeCcy": o.quote,
            "tpTriggerPx": "",
            "slTriggerPx": "",
            "category": "normal",
            "cancelSource": "1" if o.status == "canceled" else "",
        }

    def _public_algo(self, o: VenueOrder) -> dict[str, Any]:
        state = {"untriggered": "live", "canceled": "canceled", "filled": "effective"}
        trigger = plain(o.trigger)
        stop_loss = "slTriggerPx" in o.extra or o.extra.get("ordType") != "trigger"
        return {
            **self._common(o),
            "algoId": o.id,
            "algoClOrdId": o.client_id,
            "clOrdId": "",
            "ordType": o.extra.get("ordType", "conditional"),
            "state": state.get(o.status, "live"),
            "slTriggerPx": trigger if stop_loss else "",
            "slOrdPx": str(o.extra.get("slOrdPx", "-1")) if stop_loss else "",
            "slTriggerPxType": "last" if stop_loss else "",
            "tpTriggerPx": "",
            "tpOrdPx": "",
            "triggerPx": "" if stop_loss else trigger,
            "ordPx": "" if stop_loss else str(o.extra.get("orderPx", "-1")),
            "ordId": str(o.extra.get("ordId", "")),
            "actualSz": plain(o.amount) if o.extra.get("ordId") else "",
            "actualPx": "",
            "actualSide": ("sl" if stop_loss else "") if o.extra.get("ordId") else "",
            "triggerTime": str(o.extra.get("triggered", "")),
        }
