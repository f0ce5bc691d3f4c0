"""A local HTTP server that answers like Kraken's spot REST API, for ccxt tests.

Paths (https://docs.kraken.com/api-reference/): ``GET /0/public/Time``, ``/0/public/Assets``,
``/0/public/AssetPairs``; ``POST /0/private/BalanceEx``, ``AddOrder``, ``CancelOrder``,
``QueryOrders``, ``OpenOrders``, ``ClosedOrders``, ``TradesHistory``. Every answer is HTTP
200 with ``{"error": [...], "result": ...}``.

``AddOrder`` takes the documented order types ``market``, ``limit``, ``stop-loss`` and
``take-profit`` (``price`` is the trigger; market on trigger) and ``stop-loss-limit`` and
``take-profit-limit`` (``price`` is the trigger, ``price2`` the limit); any other answers
``EGeneral:Invalid arguments:ordertype``. A triggered order keeps its txid.

Private calls are signed as documented: form-encoded body with an increasing ``nonce``,
headers ``API-Key`` and ``API-Sign`` = base64 HMAC-SHA512 (key: the base64-decoded secret)
of ``URI path + SHA256(nonce + POST data)``; a bad key or signature answers
``EAPI:Invalid key``, a nonce not above the last one ``EAPI:Invalid nonce``.

``cl_ord_id`` is checked as documented: a long UUID, a short UUID (32 hex digits) or free
text of up to 18 characters.

Errors: rate limit ``EAPI:Rate limit exceeded``, maintenance ``EService:Unavailable`` (the
matching engine or API is offline), insufficient funds ``EOrder:Insufficient funds``,
invalid order ``EOrder:Order minimum not met``. Kraken has no spot sandbox.

Markets: the real definitions recorded in ``worker/exchanges/markets/kraken.json``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.fakes.fake_venue import (
    FakeVenue,
    Instrument,
    Request,
    VenueOrder,
    load_ccxt_markets,
    now_ms,
    plain,
)

SECRET = base64.b64encode(b"kraken-test-secret-bytes-0123456").decode()
"""Kraken secrets are base64 (ccxt decodes them before signing)."""

ASSETS = {
    "XXBT": "BTC",
    "XETH": "ETH",
    "XLTC": "LTC",
    "XXRP": "XRP",
    "XXDG": "DOGE",
    "ADA": "ADA",
    "USDT": "USDT",
    "ZUSD": "USD",
}
CL_ORD_ID = re.compile(
    r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}|[\x20-\x7e]{1,18})$"
)
STATUS = {"open": "open", "untriggered": "open", "filled": "closed", "canceled": "canceled"}


OHLC_INTERVALS = {"1", "5", "15", "30", "60", "240", "1440", "10080", "21600"}
"""Kraken's OHLC intervals, in minutes."""


class FakeKraken(FakeVenue):
    exchange_id = "kraken"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("secret", SECRET)
        super().__init__(**kwargs)
        self.pairs: dict[str, dict[str, Any]] = {}
        for market in load_ccxt_markets("kraken").values():
            info = market["info"]
            self.pairs[market["id"]] = info
            self.instruments[market["id"]] = Instrument(
                id=market["id"],
                base=ASSETS[info["base"]],
                quote=ASSETS[info["quote"]],
                contract=False,
                min_amount=Decimal(info["ordermin"]),
            )
        self._nonce = 0
        self._txids = 0

    def new_id(self) -> str:
        self._txids += 1
        n = f"{self._txids:011d}"
        return f"O{n[:5]}-{n[5:10]}-{n[10:]}ABCDE"

    def price(self, instrument_id: str) -> Decimal:
        return self.prices.get(instrument_id, Decimal("43000"))

    # -- protocol -------------------------------------------------------------------------

    def is_private(self, request: Request) -> bool:
        return request.path.startswith("/0/private/")

    def authenticate(self, request: Request) -> bool:
        if request.headers.get("api-key") != self.api_key:
            return False
        nonce = str(request.params.get("nonce", ""))
        digest = hashlib.sha256((nonce + request.body).encode()).digest()
        mac = hmac.new(
            base64.b64decode(self.secret), request.path.encode() + digest, hashlib.sha512
        )
        expected = base64.b64encode(mac.digest()).decode()
        return hmac.compare_digest(expected, request.headers.get("api-sign", ""))

    @staticmethod
    def _answer(result: Any = None, errors: list[str] | None = None) -> web.Response:
        body: dict[str, Any] = {"error": errors or []}
        if result is not None:
            body["result"] = result
        return web.json_response(body)

    def error(self, kind: str, request: Request) -> web.Response:
        return self._answer(
            errors=[
                {
                    "auth": "EAPI:Invalid key",
                    "rate_limit": "EAPI:Rate limit exceeded",
                    "maintenance": "EService:Unavailable",
                    "insufficient": "EOrder:Insufficient funds",
                    "invalid": "EOrder:Order minimum not met",
                    "duplicate": "EOrder:Duplicate order",
                }[kind]
            ]
        )

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/0/public/Time"): lambda r: self._answer(
                {"unixtime": now_ms() // 1000, "rfc1123": ""}
            ),
            ("GET", "/0/public/Assets"): self._assets,
            ("GET", "/0/public/AssetPairs"): lambda r: self._answer(self.pairs),
            ("GET", "/0/public/OHLC"): self._ohlc,
            ("POST", "/0/private/BalanceEx"): self._private(self._balance),
            ("POST", "/0/private/AddOrder"): self._private(self._add),
            ("POST", "/0/private/CancelOrder"): self._private(self._cancel),
            ("POST", "/0/private/QueryOrders"): self._private(self._query),
            ("POST", "/0/private/OpenOrders"): self._private(self._open),
            ("POST", "/0/private/ClosedOrders"): self._private(self._closed),
            ("POST", "/0/private/TradesHistory"): self._private(self._trades),
        }

    def _private(self, handler: Any) -> Any:
        def checked(request: Request) -> web.Response:
            nonce = int(request.params.get("nonce", 0))
            if nonce <= self._nonce:
                return self._answer(errors=["EAPI:Invalid nonce"])
            self._nonce = nonce
            response: web.Response = handler(request)
            return response

        return checked

    def _assets(self, request: Request) -> web.Response:
        return self._answer(
            {
                asset: {
                    "aclass": "currency",
                    "altname": code if asset != "XXBT" else "XBT",
                    "decimals": 10 if asset.startswith("X") else 8,
                    "display_decimals": 5,
                    "status": "enabled",
                }
                for asset, code in ASSETS.items()
            }
        )

    def _balance(self, request: Request) -> web.Response:
        native = {code: asset for asset, code in ASSETS.items()}
        return self._answer(
            {
                native.get(code, code): {"balance": plain(free + used), "hold_trade": plain(used)}
                for code, (free, used) in self.balances.items()
            }
        )

    def _ohlc(self, request: Request) -> web.Response:
        """GET /0/public/OHLC: ``interval`` in minutes (1, 5, 15, 30, 60, 240, 1440, 10080,
        21600); only the newest 720 candles exist (of the generated history), those after
        ``since`` (seconds, exclusive) oldest first, each ``[time (s), open, high, low,
        close, vwap, volume, count]`` as text, under the pair's id, with ``last``."""
        p = request.params
        interval = p.get("interval", "1")
        if interval not in OHLC_INTERVALS:
            return self._answer(errors=["EGeneral:Invalid arguments"])
        pair, step = p.get("pair", ""), int(interval) * 60_000
        first, count = self.history.get((pair, step), (0, 0))
        newest = first + (count - 1) * step
        start = max(newest - 719 * step, int(p.get("since", 0)) * 1000 + 1)
        rows = self.candles(pair, step, start, newest, 720)
        listed = [[t // 1000, o, h, lo, c, c, v, 1] for t, o, h, lo, c, v in rows]
        last = rows[-1][0] // 1000 if rows else int(p.get("since", 0))
        return self._answer({pair: listed, "last": last})

    # -- orders ---------------------------------------------------------------------------

    def _add(self, request: Request) -> web.Response:
        p = request.params
        pair = str(p.get("pair"))
        if pair not in self.instruments:
            return self._answer(errors=["EQuery:Unknown asset pair"])
        cid = p.get("cl_ord_id")
        if cid is not None and not CL_ORD_ID.match(str(cid)):
            return self._answer(errors=["EGeneral:Invalid arguments:cl_ord_id"])
        kind = p.get("ordertype")
        trigger = None
        price = Decimal(str(p["price"])) if p.get("price") else None
        if kind in {"stop-loss", "take-profit"}:
            trigger, price, kind = price, None, "market"
        elif kind in {"stop-loss-limit", "take-profit-limit"}:
            if price is None or not p.get("price2"):
                return self._answer(errors=["EGeneral:Invalid arguments:price2"])
            trigger, price, kind = price, Decimal(str(p["price2"])), "limit"
        elif kind not in {"market", "limit"}:
            return self._answer(errors=["EGeneral:Invalid arguments:ordertype"])
        result = self.place(
            pair,
            str(p.get("type")),
            str(kind),
            Decimal(str(p.get("volume", "0"))),
            price,
            trigger=trigger,
            client_id=cid,
            extra={"ordertype": p.get("ordertype")},
        )
        if isinstance(result, str):
            return self.error(result, request)
        descr = _description(result)
        return self._answer({"descr": {"order": descr}, "txid": [result.id]})

    def _cancel(self, request: Request) -> web.Response:
        p = request.params
        order = self.find(order_id=p.get("txid"), client_id=p.get("cl_ord_id"))
        if order is None or not self.cancel(order):
            return self._answer(errors=["EOrder:Unknown order"])
        return self._answer({"count": 1})

    def _query(self, request: Request) -> web.Response:
        txids = str(request.params.get("txid", ""))
        if not txids:
            return self._answer(errors=["EGeneral:Invalid arguments:txid"])
        found = {t: self.orders[t] for t in txids.split(",") if t in self.orders}
        if not found:
            return self._answer(errors=["EOrder:Invalid order"])
        return self._answer({t: _public(o) for t, o in found.items()})

    def _listed(self, request: Request, open_ones: bool) -> dict[str, Any]:
        cid = request.params.get("cl_ord_id")
        return {
            o.id: _public(o)
            for o in sorted(self.orders.values(), key=lambda o: o.created, reverse=True)
            if (o.status in {"open", "untriggered"}) == open_ones
            and (cid is None or o.client_id == cid)
        }

    def _open(self, request: Request) -> web.Response:
        return self._answer({"open": self._listed(request, open_ones=True)})

    def _closed(self, request: Request) -> web.Response:
        closed = self._listed(request, open_ones=False)
        return self._answer({"closed": closed, "count": len(closed)})

    def _trades(self, request: Request) -> web.Response:
        """The account's trades, newest first (Kraken filters by time, not by order)."""
        trades = {
            f.id: {
                "ordertxid": f.order.id,
                "postxid": f"T{f.id}",
                "pair": f.order.symbol,
                "time": f.time / 1000,
                "type": f.order.side,
                "ordertype": f.order.type,
                "price": plain(f.price),
                "cost": plain(f.price * f.amount),
                "fee": plain(f.fee),
                "vol": plain(f.amount),
                "margin": "0",
                "misc": "",
            }
            for f in sorted(self.fills, key=lambda f: f.time, reverse=True)
        }
        return self._answer({"trades": trades, "count": len(trades)})


def _public(o: VenueOrder) -> dict[str, Any]:
    ordertype = o.extra.get("ordertype") or o.type
    shown_price = o.trigger if o.trigger is not None else o.price
    limit = o.price if o.trigger is not None and o.type == "limit" else None
    return {
        "refid": None,
        "userref": 0,
        "cl_ord_id": o.client_id,
        "status": STATUS[o.status],
        "opentm": o.created / 1000,
        "starttm": 0,
        "expiretm": 0,
        "closetm": o.updated / 1000 if o.status in {"filled", "canceled"} else None,
        "descr": {
            "pair": o.symbol,
            "type": o.side,
            "ordertype": ordertype,
            "price": plain(shown_price) if shown_price is not None else "0",
            "price2": plain(limit) if limit is not None else "0",
            "leverage": "none",
            "order": _description(o),
            "close": "",
        },
        "vol": plain(o.amount),
        "vol_exec": plain(o.filled),
        "cost": plain(o.cost),
        "fee": plain(o.fee),
        "price": plain(o.average) if o.average is not None else "0",
        "stopprice": plain(o.trigger) if o.trigger is not None else "0",
        "limitprice": plain(limit) if limit is not None else "0",
        "misc": "",
        "oflags": "fciq",
        "reason": "User requested" if o.status == "canceled" else None,
    }


def _description(o: VenueOrder) -> str:
    """Kraken's one-line summary, e.g. ``sell 0.01000000 XBTUSDT @ stop loss 41000.0``."""
    if o.trigger is not None:
        what = f"{str(o.extra.get('ordertype', 'stop-loss')).replace('-', ' ')} {plain(o.trigger)}"
    elif o.type == "limit":
        what = f"limit {plain(o.price)}"
    else:
        what = "market"
    return f"{o.side} {o.amount:.8f} {o.symbol} @ {what}"
