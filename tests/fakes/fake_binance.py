"""A local HTTP server that answers like Binance's spot REST API, for ccxt tests.

Covers what ccxt's ``binance`` calls for markets, candles, orders and balances:
``/api/v3/exchangeInfo``, ``time``, ``ticker/24hr``, ``klines``, ``order`` (POST/GET/DELETE
with ``newClientOrderId`` / ``origClientOrderId``), ``openOrders``, ``myTrades`` and ``account``; the
futures ``exchangeInfo`` endpoints answer with no symbols and ``sapi`` currency config with
an empty list. Market definitions are the real ones recorded in ``markets/binance.json``.

Failures are switched on per test with ``fail_next``: ``"auth"`` (-2015, HTTP 401),
``"insufficient"`` (-2010), ``"rate_limit"`` (HTTP 429), ``"unavailable"`` (HTTP 503),
``"timeout"`` (no answer until the client gives up) and ``"lost_response"`` (the order is
accepted, then the answer never arrives). OCO order lists: ``fake_binance_oco``.

Stop orders (``STOP_LOSS``, ``STOP_LOSS_LIMIT``, ``TAKE_PROFIT``, ``TAKE_PROFIT_LIMIT``, with
``stopPrice``) rest with their amount locked, as Binance holds them, and are accepted only on
symbols whose ``orderTypes`` list them (-1116 otherwise). ``set_price`` moves the market: a
stop whose ``stopPrice`` the new price crossed triggers and fills at that price (a limit stop
only at its ``price`` or better), with the 0.1 % commission reported by ``myTrades``.

Usage::

    async with FakeBinance() as fake:
        exchange = LiveExchange("binance", creds, api_base_url=fake.url)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes import fake_binance_oco as oco

MARKETS_FILE = (
    Path(__file__).resolve().parents[2] / "worker" / "exchanges" / "markets" / "binance.json"
)

INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000}

AUTH_ERROR = (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
INSUFFICIENT = (
    400,
    {"code": -2010, "msg": "Account has insufficient balance for requested action."},
)
NOT_FOUND = (400, {"code": -2013, "msg": "Order does not exist."})
UNKNOWN_ORDER = (400, {"code": -2011, "msg": "Unknown order sent."})
DUPLICATE = (400, {"code": -2010, "msg": "Duplicate order sent."})
INVALID_ORDER_TYPE = (400, {"code": -1116, "msg": "Invalid orderType."})
STOP_TYPES = {
    "STOP_LOSS": "stop",
    "STOP_LOSS_LIMIT": "stop",
    "TAKE_PROFIT": "take",
    "TAKE_PROFIT_LIMIT": "take",
}
"""Binance spot's conditional order types, by direction: a stop triggers against the
position (a sell at or below ``stopPrice``), a take-profit with it."""
COMMISSION = Decimal("0.001")
RESTING = ("NEW", "PARTIALLY_FILLED")  # open on the book


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]


@dataclass
class FakeBinance:
    """State of the fake exchange plus the aiohttp server that serves it."""

    api_key: str = "test-key"
    balances: dict[str, list[Decimal]] = field(
        default_factory=lambda: {
            "USDT": [Decimal("10000"), Decimal(0)],
            "BTC": [Decimal("1"), Decimal(0)],
        }
    )
    prices: dict[str, Decimal] = field(default_factory=lambda: {"BTCUSDT": Decimal("43000.00")})
    klines: dict[str, list[list[Any]]] = field(default_factory=dict)
    # Generated history per (symbol, interval): (first open ms, number of candles); open
    # times in ``missing`` are absent (gaps in the exchange's own data).
    history: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    missing: set[int] = field(default_factory=set)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    order_lists: dict[int, dict[str, Any]] = field(default_factory=dict)  # OCO lists
    timeout_seconds: float = 5.0
    maintenance: bool = False  # what /sapi/v1/system/status reports

    def __post_init__(self) -> None:
        markets = json.loads(MARKETS_FILE.read_text())
        self.symbols = [m["info"] for m in markets.values() if m.get("spot")]
        self._ids = itertools.count(1000)
        self._failures: list[tuple[str, str | None]] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- control --------------------------------------------------------------------------

    def fail_next(self, kind: str, *, path: str | None = None, times: int = 1) -> None:
        """Make the next ``times`` requests (to ``path`` if given) fail with ``kind``."""
        assert kind in {
            "auth",
            "insufficient",
            "rate_limit",
            "unavailable",
            "timeout",
            "lost_response",
        }
        self._failures.extend([(kind, path)] * times)

    def order_posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/api/v3/order"]

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Move ``symbol``'s price: resting stops whose trigger it crossed fill."""
        self.prices[symbol] = price
        for order in list(self.orders.values()):
            if order["symbol"] != symbol or order["status"] != "NEW":
                continue
            if order["type"] == "LIMIT_MAKER":  # an OCO's take-profit leg
                limit = Decimal(order["price"])
                if (price >= limit) if order["side"] == "SELL" else (price <= limit):
                    self._fill_resting(order, limit)
                continue
            direction = STOP_TYPES.get(order["type"])
            if direction is None:
                continue
            stop, sell = Decimal(order["stopPrice"]), order["side"] == "SELL"
            falling = (direction == "stop") == sell  # triggers when the price falls to it
            if (price > stop) if falling else (price < stop):
                continue
            if order["type"].endswith("_LIMIT"):
                limit = Decimal(order["price"])
                if (price < limit) if sell else (price > limit):
                    continue  # triggered; its limit rests until the price comes back
            self._fill_resting(order, price)

    def fill_part(self, client_order_id: str, qty: Decimal) -> None:
        """A resting limit order fills ``qty`` at its price (``PARTIALLY_FILLED``)."""
        order = next(
            o
            for o in self.orders.values()
            if o["clientOrderId"] == client_order_id and o["status"] in RESTING
        )
        market = next(s for s in self.symbols if s["symbol"] == order["symbol"])
        base, quote = market["baseAsset"], market["quoteAsset"]
        price = Decimal(order["price"])
        if order["side"] == "BUY":
            self.balances[quote][0] += qty * price
            self.balances[quote][1] -= qty * price
        else:
            self.balances[base][0] += qty
            self.balances[base][1] -= qty
        self._settle(base, quote, order["side"], qty, price)
        done = Decimal(order["executedQty"]) + qty
        now = _now_ms()
        order.update(
            status="FILLED" if done >= Decimal(order["origQty"]) else "PARTIALLY_FILLED",
            executedQty=str(done),
            cummulativeQuoteQty=str(Decimal(order["cummulativeQuoteQty"]) + qty * price),
            updateTime=now,
        )
        self._trade(order, qty, price, quote, now)

    def _fill_resting(self, order: dict[str, Any], price: Decimal) -> None:
        market = next(s for s in self.symbols if s["symbol"] == order["symbol"])
        base, quote = market["baseAsset"], market["quoteAsset"]
        qty = Decimal(order["origQty"])
        if order["side"] == "BUY":
            locked = qty * Decimal(order["price"])
            self.balances[quote][0] += locked
            self.balances[quote][1] -= locked
        else:
            self.balances[base][0] += qty
            self.balances[base][1] -= qty
        self._settle(base, quote, order["side"], qty, price)
        now = _now_ms()
        order.update(
            status="FILLED",
            executedQty=order["origQty"],
            cummulativeQuoteQty=str(qty * price),
            updateTime=now,
        )
        self._trade(order, qty, price, quote, now)
        if order["orderListId"] != -1:
            oco.filled(self, order)

    def _trade(
        self, order: dict[str, Any], qty: Decimal, price: Decimal, quote: str, when: int
    ) -> dict[str, Any]:
        """A fill as ``GET /api/v3/myTrades`` reports it."""
        trade = {
            "symbol": order["symbol"],
            "id": next(self._ids),
            "orderId": order["orderId"],
            "orderListId": -1,
            "price": str(price),
            "qty": str(qty),
            "quoteQty": str(qty * price),
            "commission": str(qty * price * COMMISSION),
            "commissionAsset": quote,
            "time": when,
            "isBuyer": order["side"] == "BUY",
            "isMaker": False,
            "isBestMatch": True,
        }
        self.trades.append(trade)
        return trade

    async def __aenter__(self) -> FakeBinance:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- plumbing -------------------------------------------------------------------------

    @staticmethod
    def _json(status: int, body: Any) -> web.Response:
        return web.json_response(body, status=status)

    def _take_failure(self, path: str) -> str | None:
        for i, (kind, only) in enumerate(self._failures):
            if only is None or only == path:
                del self._failures[i]
                return kind
        return None

    async def _stall(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), self.timeout_seconds)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        if request.can_read_body:
            params.update(parse_qsl(await request.text()))
        path = request.path
        self.requests.append(Request(request.method, path, params))
        failure = self._take_failure(path)
        if failure == "rate_limit":
            return self._json(
                429,
                {
                    "code": -1003,
                    "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE.",
                },
            )
        if failure == "unavailable":
            return web.Response(status=503, text="Service Unavailable")
        if failure == "timeout":
            await self._stall()
            return self._json(504, {})
        signed = "signature" in params
        if signed and (failure == "auth" or request.headers.get("X-MBX-APIKEY") != self.api_key):
            return self._json(*AUTH_ERROR)
        if failure == "insufficient":
            return self._json(*self._insufficient(path))
        handler = self._routes().get((request.method, path))
        if handler is None:
            return self._json(404, {"code": -1, "msg": f"no route {request.method} {path}"})
        response = handler(params)
        if failure == "lost_response":
            await self._stall()
        return response

    def _insufficient(self, path: str) -> tuple[int, dict[str, Any]]:
        """The exchange's answer to an order it cannot fund on ``path``."""
        return INSUFFICIENT

    def _routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/api/v3/ping"): lambda p: self._json(200, {}),
            ("GET", "/api/v3/time"): lambda p: self._json(200, {"serverTime": _now_ms()}),
            ("GET", "/sapi/v1/system/status"): lambda p: self._json(
                200,
                {"status": 1, "msg": "system maintenance"}
                if self.maintenance
                else {"status": 0, "msg": "normal"},
            ),
            ("GET", "/api/v3/exchangeInfo"): self._exchange_info,
            ("GET", "/fapi/v1/exchangeInfo"): lambda p: self._json(200, {"symbols": []}),
            ("GET", "/dapi/v1/exchangeInfo"): lambda p: self._json(200, {"symbols": []}),
            ("GET", "/sapi/v1/capital/config/getall"): lambda p: self._json(200, []),
            ("GET", "/sapi/v1/margin/allPairs"): lambda p: self._json(200, []),
            ("GET", "/sapi/v1/margin/isolated/allPairs"): lambda p: self._json(200, []),
            ("GET", "/api/v3/ticker/24hr"): self._ticker,
            ("GET", "/api/v3/klines"): self._klines,
            ("POST", "/api/v3/order"): self._new_order,
            ("GET", "/api/v3/order"): self._get_order,
            ("DELETE", "/api/v3/order"): self._cancel_order,
            ("POST", "/api/v3/orderList/oco"): lambda p: oco.new_oco(self, p),
            ("GET", "/api/v3/orderList"): lambda p: oco.get_list(self, p),
            ("DELETE", "/api/v3/orderList"): lambda p: oco.cancel_list(self, p),
            ("GET", "/api/v3/openOrders"): self._open_orders,
            ("GET", "/api/v3/myTrades"): self._my_trades,
            ("GET", "/api/v3/account"): self._account,
        }

    # -- market data ----------------------------------------------------------------------

    def _exchange_info(self, params: dict[str, str]) -> web.Response:
        return self._json(
            200,
            {
                "timezone": "UTC",
                "serverTime": _now_ms(),
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": self.symbols,
            },
        )

    def _ticker(self, params: dict[str, str]) -> web.Response:
        symbol = params.get("symbol", "BTCUSDT")
        price = str(self.prices.get(symbol, Decimal("1")))
        return self._json(
            200,
            {
                "symbol": symbol,
                "priceChange": "0",
                "priceChangePercent": "0",
                "weightedAvgPrice": price,
                "prevClosePrice": price,
                "lastPrice": price,
                "lastQty": "1",
                "bidPrice": price,
                "bidQty": "1",
                "askPrice": price,
                "askQty": "1",
                "openPrice": price,
                "highPrice": price,
                "lowPrice": price,
                "volume": "100",
                "quoteVolume": "100",
                "openTime": _now_ms() - 86_400_000,
                "closeTime": _now_ms(),
                "firstId": 1,
                "lastId": 2,
                "count": 1,
            },
        )

    def _klines(self, params: dict[str, str]) -> web.Response:
        """GET /api/v3/klines: ``startTime``/``endTime`` inclusive, ``limit`` default 500,
        at most 1000 (an error above), oldest first."""
        symbol, interval = params["symbol"], params.get("interval", "1m")
        start = int(params.get("startTime", 0))
        end = int(params.get("endTime", 2**62))
        limit = int(params.get("limit", 500))
        if not 1 <= limit <= 1000:
            return self._json(
                400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}
            )
        if (symbol, interval) in self.history:
            rows = self._generated(symbol, interval, start, end, limit)
            return web.Response(body=f"[{','.join(rows)}]", content_type="application/json")
        rows = self.klines.get(symbol)
        if rows is None:
            rows = default_klines(interval, count=5)
        return self._json(200, [r for r in rows if start <= int(r[0]) <= end][:limit])

    def _generated(self, symbol: str, interval: str, start: int, end: int, limit: int) -> list[str]:
        """The generated history's rows from ``start`` to ``end``, each as its JSON text
        (written directly: a benchmark asks for a million of them)."""
        first, count = self.history[(symbol, interval)]
        step = INTERVAL_MS[interval]
        low = max(0, -(-(start - first) // step))
        stop = min(count, low + limit + len(self.missing), (end - first) // step + 1)
        rows: list[str] = []
        for i in range(low + 1, stop + 1):
            t = first + (i - 1) * step
            if t in self.missing:
                continue
            o = 40000 + (i % 997)
            rows.append(
                f'[{t},"{o}.10000000","{o + 5}.00000000","{o - 5}.00000000","{o + 1}.25000000",'
                f'"12.50000000",{t + step - 1},"537500.00000000",100,"6.00000000",'
                '"258000.00000000","0"]'
            )
            if len(rows) == limit:
                break
        return rows

    # -- trading --------------------------------------------------------------------------

    def _find(self, params: dict[str, str]) -> dict[str, Any] | None:
        if "origClientOrderId" in params:
            cid = params["origClientOrderId"]
            matches = [
                o
                for o in self.orders.values()
                if o["clientOrderId"] == cid and o["symbol"] == params.get("symbol")
            ]
            return matches[-1] if matches else None
        if "orderId" in params:
            return self.orders.get(int(params["orderId"]))
        return None

    def _new_order(self, params: dict[str, str]) -> web.Response:
        symbol, side, kind = params["symbol"], params["side"], params["type"]
        qty = Decimal(params["quantity"])
        cid = params.get("newClientOrderId") or f"x-{next(self._ids)}"
        if any(o["clientOrderId"] == cid and o["status"] in RESTING for o in self.orders.values()):
            return self._json(*DUPLICATE)
        market = next(s for s in self.symbols if s["symbol"] == symbol)
        if kind not in market.get("orderTypes", [kind]):
            return self._json(*INVALID_ORDER_TYPE)
        base, quote = market["baseAsset"], market["quoteAsset"]
        price = (
            Decimal(params["price"]) if "price" in params else self.prices.get(symbol, Decimal(1))
        )
        need_asset, need = (quote, qty * price) if side == "BUY" else (base, qty)
        free = self.balances.setdefault(need_asset, [Decimal(0), Decimal(0)])
        if free[0] < need:
            return self._json(*INSUFFICIENT)
        order_id = next(self._ids)
        now = _now_ms()
        order: dict[str, Any] = {
            "symbol": symbol,
            "orderId": order_id,
            "orderListId": -1,
            "clientOrderId": cid,
            "transactTime": now,
            "time": now,
            "updateTime": now,
            "workingTime": now,
            "price": params.get("price", "0.00000000"),
            "origQty": params["quantity"],
            "executedQty": "0.00000000",
            "cummulativeQuoteQty": "0.00000000",
            "status": "NEW",
            "timeInForce": params.get("timeInForce", "GTC"),
            "type": kind,
            "side": side,
            "stopPrice": params.get("stopPrice", "0.00000000"),
            "isWorking": True,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "fills": [],
        }
        if kind == "MARKET":
            fee = qty * price * COMMISSION
            order.update(
                status="FILLED",
                executedQty=params["quantity"],
                cummulativeQuoteQty=str(qty * price),
                fills=[
                    {
                        "price": str(price),
                        "qty": params["quantity"],
                        "commission": str(fee),
                        "commissionAsset": quote,
                        "tradeId": order_id,
                    }
                ],
            )
            self._settle(base, quote, side, qty, price)
            self._trade(order, qty, price, quote, now)
        else:
            free[0] -= need
            free[1] += need
        self.orders[order_id] = order
        return self._json(200, order)

    def _settle(self, base: str, quote: str, side: str, qty: Decimal, price: Decimal) -> None:
        b = self.balances.setdefault(base, [Decimal(0), Decimal(0)])
        q = self.balances.setdefault(quote, [Decimal(0), Decimal(0)])
        if side == "BUY":
            q[0] -= qty * price
            b[0] += qty
        else:
            b[0] -= qty
            q[0] += qty * price

    def _get_order(self, params: dict[str, str]) -> web.Response:
        order = self._find(params)
        return self._json(200, _public(order)) if order else self._json(*NOT_FOUND)

    def _cancel_order(self, params: dict[str, str]) -> web.Response:
        order = self._find(params)
        if order is None or order["status"] not in RESTING:
            return self._json(*UNKNOWN_ORDER)
        if order["orderListId"] != -1:  # a leg of a list cancels the whole list
            oco.cancel(self, self.order_lists[order["orderListId"]])
            return self._json(200, _public(order))
        order["status"] = "CANCELED"
        market = next(s for s in self.symbols if s["symbol"] == order["symbol"])
        qty = Decimal(order["origQty"]) - Decimal(order["executedQty"])
        price = Decimal(order["price"])
        asset, amount = (
            (market["quoteAsset"], qty * price)
            if order["side"] == "BUY"
            else (market["baseAsset"], qty)
        )
        self.balances[asset][0] += amount
        self.balances[asset][1] -= amount
        return self._json(200, _public(order))

    def _open_orders(self, params: dict[str, str]) -> web.Response:
        symbol = params.get("symbol")
        rows = [
            _public(o)
            for o in self.orders.values()
            if o["status"] in RESTING and (symbol is None or o["symbol"] == symbol)
        ]
        return self._json(200, rows)

    def _my_trades(self, params: dict[str, str]) -> web.Response:
        rows = [
            t
            for t in self.trades
            if t["symbol"] == params.get("symbol")
            and ("orderId" not in params or str(t["orderId"]) == params["orderId"])
        ]
        return self._json(200, rows)

    def _account(self, params: dict[str, str]) -> web.Response:
        return self._json(
            200,
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "updateTime": _now_ms(),
                "accountType": "SPOT",
                "permissions": ["SPOT"],
                "balances": [
                    {"asset": a, "free": str(v[0]), "locked": str(v[1])}
                    for a, v in self.balances.items()
                ],
            },
        )


def _public(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if k not in {"fills", "transactTime"}}


def _now_ms() -> int:
    return int(time.time() * 1000)


def default_klines(interval: str, count: int, now_ms: int | None = None) -> list[list[Any]]:
    """``count`` candles ending with the one still forming now (its open is the current period)."""
    step = INTERVAL_MS[interval]
    now = now_ms if now_ms is not None else _now_ms()
    current = now - now % step
    rows = []
    for i in range(count - 1, -1, -1):
        start = current - i * step
        o = Decimal("43000") + Decimal(count - i)
        rows.append(
            [
                start,
                str(o),
                str(o + 5),
                str(o - 5),
                str(o + 1),
                "12.5",
                start + step - 1,
                "537500",
                100,
                "6",
                "258000",
                "0",
            ]
        )
    return rows
