"""Shared plumbing of the fake exchanges (Bybit, OKX, Bitget, MEXC, Kraken): an aiohttp server
that records every request, failures switched on per test, and a small matching engine.

Each exchange's module (``fake_<id>.py``) subclasses ``FakeVenue`` with its own paths,
signature check, payload shapes and error codes; the engine here is exchange-neutral:

- a market order fills at once at ``prices[symbol]`` with a 0.1 % fee in the quote currency;
- a limit order rests (its funds are locked) until cancelled;
- a trigger (stop) order rests untriggered and locks nothing; ``set_price`` fires the ones
  whose trigger the price reached (from the side it stood on when they were placed): a
  market one fills at the new price, a limit one at the new price if it is marketable (else
  it rests), each exchange choosing whether the fill keeps the trigger order's id or goes to
  an order of its own (``fire``);
- every fill is listed in ``fills`` (the account's trades, with their commission);
- contract markets keep a position per symbol (margin = notional / leverage, settled in
  the quote currency), leverage and margin mode per symbol.

Failures (``fail_next``): ``"rate_limit"``, ``"maintenance"``, ``"insufficient"``,
``"invalid"`` (the exchange's own code for each) and ``"auth"``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

from aiohttp import web

MARKETS_DIR = Path(__file__).resolve().parents[2] / "worker" / "exchanges" / "markets"
FIXTURES_DIR = Path(__file__).resolve().parent / "markets"

FAILURES = frozenset({"rate_limit", "maintenance", "insufficient", "invalid", "auth"})
FEE_RATE = Decimal("0.001")


def now_ms() -> int:
    return int(time.time() * 1000)


def hmac_sha256(secret: str, payload: str) -> bytes:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()


def plain(value: Decimal | None) -> str:
    """A decimal as the exchanges print it (no exponent, no trailing zeros)."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return text


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    body: str


@dataclass
class VenueOrder:
    id: str
    client_id: str
    symbol: str
    side: str  # buy / sell
    type: str  # market / limit
    amount: Decimal
    price: Decimal | None
    trigger: Decimal | None
    reduce_only: bool
    contract: bool
    base: str
    quote: str
    status: str = "open"  # open / filled / canceled / untriggered
    filled: Decimal = Decimal(0)
    average: Decimal | None = None
    fee: Decimal = Decimal(0)
    created: int = field(default_factory=now_ms)
    updated: int = field(default_factory=now_ms)
    locked: tuple[str, Decimal] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cost(self) -> Decimal:
        return self.filled * (self.average or Decimal(0))


@dataclass
class Fill:
    """One trade of the account: what an exchange's fills endpoint lists."""

    id: str
    order: VenueOrder
    price: Decimal
    amount: Decimal
    fee: Decimal
    time: int


@dataclass
class Instrument:
    """What the engine needs of a market: its exchange id, currencies and limits."""

    id: str
    base: str
    quote: str
    contract: bool
    min_amount: Decimal
    max_leverage: int = 1
    contract_size: Decimal = Decimal(1)
    """Base currency per unit of amount (contracts: OKX's BTC-USDT-SWAP is 0.01 BTC)."""


class FakeVenue:
    """State of a fake exchange plus the aiohttp server that serves it."""

    exchange_id = ""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        secret: str = "test-secret",
        password: str = "test-pass",
    ) -> None:
        self.api_key, self.secret, self.password = api_key, secret, password
        self.balances: dict[str, list[Decimal]] = {
            "USDT": [Decimal("10000"), Decimal(0)],
            "BTC": [Decimal("1"), Decimal(0)],
        }
        self.prices: dict[str, Decimal] = {}
        self.orders: dict[str, VenueOrder] = {}
        self.positions: dict[str, Decimal] = {}
        self.leverage: dict[str, int] = {}
        self.margin_mode: dict[str, str] = {}
        self.requests: list[Request] = []
        self.fills: list[Fill] = []
        self.instruments: dict[str, Instrument] = {}
        # Generated candle history per (instrument id, step in ms): (first open ms, number
        # of candles); open times in ``missing`` are absent (gaps in the exchange's data).
        self.history: dict[tuple[str, int], tuple[int, int]] = {}
        self.missing: set[int] = set()
        self._ids = itertools.count(1_000_001)
        self._failures: list[tuple[str, str | None]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- control --------------------------------------------------------------------------

    def fail_next(self, kind: str, *, path: str | None = None, times: int = 1) -> None:
        """Make the next ``times`` requests (to ``path`` if given) fail with ``kind``."""
        assert kind in FAILURES, kind
        self._failures.extend([(kind, path)] * times)

    def price_key(self, instrument_id: str) -> str:
        """The key of ``prices`` that prices the instrument."""
        return instrument_id

    def price(self, instrument_id: str) -> Decimal:
        return self.prices.get(self.price_key(instrument_id), Decimal("43000"))

    async def __aenter__(self) -> Self:
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
        if self._runner is not None:
            await self._runner.cleanup()

    # -- to be provided by each exchange ----------------------------------------------------

    def routes(self) -> dict[tuple[str, str], Any]:
        """``(method, path) -> handler(request) -> web.Response``."""
        raise NotImplementedError

    def is_private(self, request: Request) -> bool:
        raise NotImplementedError

    def authenticate(self, request: Request) -> bool:
        """True if the request carries this account's key and a valid signature."""
        raise NotImplementedError

    def error(self, kind: str, request: Request) -> web.Response:
        """The exchange's own answer for a failure ``kind`` (see ``FAILURES``)."""
        raise NotImplementedError

    def not_found(self, request: Request) -> web.Response:
        return web.json_response({"error": f"no route {request.method} {request.path}"}, status=404)

    # -- plumbing -------------------------------------------------------------------------

    def _take_failure(self, path: str) -> str | None:
        for i, (kind, only) in enumerate(self._failures):
            if only is None or only == path:
                del self._failures[i]
                return kind
        return None

    async def _dispatch(self, http: web.Request) -> web.StreamResponse:
        body = await http.text() if http.can_read_body else ""
        params: dict[str, Any] = dict(http.query)
        if body:
            if body.lstrip().startswith(("{", "[")):
                loaded = json.loads(body)
                if isinstance(loaded, dict):
                    params.update(loaded)
            else:
                params.update(parse_qsl(body, keep_blank_values=True))
        request = Request(
            http.method, http.path, params, {k.lower(): v for k, v in http.headers.items()}, body
        )
        request.headers["x-raw-query"] = http.query_string
        self.requests.append(request)
        failure = self._take_failure(http.path)
        if failure in {"rate_limit", "maintenance"}:
            return self.error(failure, request)
        if self.is_private(request) and (failure == "auth" or not self.authenticate(request)):
            return self.error("auth", request)
        if failure is not None:
            return self.error(failure, request)
        handler = self.routes().get((http.method, http.path))
        if handler is None:
            return self.not_found(request)
        response: web.Response = handler(request)
        return response

    def sandbox_requests(self) -> int:
        """How many requests were marked as the exchange's testnet/demo (where it marks them;
        exchanges with a separate testnet host count every request)."""
        return len(self.requests)

    def calls(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # -- candles --------------------------------------------------------------------------

    def candles(
        self, instrument_id: str, step: int, start: int, end: int, limit: int
    ) -> list[tuple[int, str, str, str, str, str]]:
        """The generated history's first ``limit`` candles with ``start <= open <= end``,
        oldest first, as (open ms, open, high, low, close, volume) with decimal text; each
        exchange's kline endpoint renders them (and orders them) its own way."""
        if (instrument_id, step) not in self.history:
            return []
        first, count = self.history[(instrument_id, step)]
        low = max(0, -(-(start - first) // step))
        rows: list[tuple[int, str, str, str, str, str]] = []
        for i in range(low, min(count, (end - first) // step + 1)):
            t = first + i * step
            if t in self.missing:
                continue
            o = 40000 + (i + 1) % 997
            rows.append((t, f"{o}.1", f"{o + 5}", f"{o - 5}", f"{o + 1}.25", "12.5"))
            if len(rows) == limit:
                break
        return rows

    # -- the engine -----------------------------------------------------------------------

    def new_id(self) -> str:
        return str(next(self._ids))

    def find(
        self, *, order_id: str | None = None, client_id: str | None = None
    ) -> VenueOrder | None:
        if order_id:
            return self.orders.get(str(order_id))
        if client_id:
            matches = [o for o in self.orders.values() if o.client_id == client_id]
            return matches[-1] if matches else None
        return None

    def place(
        self,
        instrument_id: str,
        side: str,
        type: str,
        amount: Decimal,
        price: Decimal | None = None,
        *,
        trigger: Decimal | None = None,
        client_id: str | None = None,
        reduce_only: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> VenueOrder | str:
        """A new order, or the failure kind: ``"insufficient"``, ``"invalid"``, ``"duplicate"``."""
        inst = self.instruments.get(instrument_id)
        if inst is None or amount <= 0 or amount < inst.min_amount:
            return "invalid"
        if type == "limit" and (price is None or price <= 0):
            return "invalid"
        cid = client_id or f"fake-{self.new_id()}"
        if client_id and any(o.client_id == client_id for o in self.orders.values()):
            return "duplicate"
        order = VenueOrder(
            id=self.new_id(),
            client_id=cid,
            symbol=instrument_id,
            side=side,
            type=type,
            amount=amount,
            price=price,
            trigger=trigger,
            reduce_only=reduce_only,
            contract=inst.contract,
            base=inst.base,
            quote=inst.quote,
            extra=dict(extra or {}),
        )
        at = price if price is not None else self.price(instrument_id)
        if trigger is not None:
            order.status = "untriggered"
            order.extra["_rising"] = trigger > self.price(instrument_id)
        else:
            need = self._need(order, at)
            free = self.balances.setdefault(need[0], [Decimal(0), Decimal(0)])
            if free[0] < need[1]:
                return "insufficient"
            if type == "market":
                self._fill(order, at)
            else:
                free[0] -= need[1]
                free[1] += need[1]
                order.locked = need
        self.orders[order.id] = order
        return order

    def _need(self, order: VenueOrder, at: Decimal) -> tuple[str, Decimal]:
        if order.contract:
            if order.reduce_only:
                return order.quote, Decimal(0)
            lev = Decimal(self.leverage.get(order.symbol, 1))
            size = self.instruments[order.symbol].contract_size
            return order.quote, order.amount * size * at / lev
        if order.side == "buy":
            return order.quote, order.amount * at * (1 + FEE_RATE)
        return order.base, order.amount

    def set_price(self, price_key: str, price: Decimal) -> None:
        """Move a market's price (``prices[price_key]``): resting trigger orders whose
        trigger it reached fire (``fire``)."""
        self.prices[price_key] = price
        for order in list(self.orders.values()):
            if order.status != "untriggered" or order.trigger is None:
                continue
            if self.price_key(order.symbol) != price_key:
                continue  # another market
            at, rising = price, bool(order.extra.get("_rising"))
            if (at >= order.trigger) if rising else (at <= order.trigger):
                self.fire(order, at)

    def fire(self, order: VenueOrder, at: Decimal) -> VenueOrder:
        """A trigger order reached its trigger: it becomes the order it describes (by
        default under its own id) and fills at ``at`` where its limit allows. Returns the
        order that trades."""
        order.status, order.updated = "open", now_ms()
        order.extra["triggered"] = order.updated
        self.execute(order, at)
        return order

    def execute(self, order: VenueOrder, at: Decimal) -> None:
        """Fill a just triggered order at ``at`` if it is marketable, else let it rest."""
        limit = order.price if order.type == "limit" else None
        if limit is not None and ((at < limit) if order.side == "sell" else (at > limit)):
            return
        self._fill(order, at)

    def _fill(self, order: VenueOrder, at: Decimal) -> None:
        order.status, order.filled, order.average = "filled", order.amount, at
        order.fee = order.amount * self.instruments[order.symbol].contract_size * at * FEE_RATE
        order.updated = now_ms()
        self.fills.append(Fill(self.new_id(), order, at, order.amount, order.fee, order.updated))
        q = self.balances.setdefault(order.quote, [Decimal(0), Decimal(0)])
        if order.contract:
            signed = order.amount if order.side == "buy" else -order.amount
            self.positions[order.symbol] = self.positions.get(order.symbol, Decimal(0)) + signed
            q[0] -= order.fee
            return
        b = self.balances.setdefault(order.base, [Decimal(0), Decimal(0)])
        notional = order.amount * at
        if order.side == "buy":
            q[0] -= notional + order.fee
            b[0] += order.amount
        else:
            b[0] -= order.amount
            q[0] += notional - order.fee

    def cancel(self, order: VenueOrder) -> bool:
        """Cancel a resting order; False if it is no longer open."""
        if order.status not in {"open", "untriggered"}:
            return False
        order.status, order.updated = "canceled", now_ms()
        if order.locked is not None:
            asset, amount = order.locked
            self.balances[asset][0] += amount
            self.balances[asset][1] -= amount
            order.locked = None
        return True

    def open_orders(self, instrument_id: str | None = None) -> list[VenueOrder]:
        return [
            o
            for o in self.orders.values()
            if o.status in {"open", "untriggered"}
            and (instrument_id is None or o.symbol == instrument_id)
        ]


def load_ccxt_markets(name: str) -> dict[str, dict[str, Any]]:
    """Recorded ccxt ``load_markets()`` output (``worker/exchanges/markets``)."""
    data: dict[str, dict[str, Any]] = json.loads((MARKETS_DIR / f"{name}.json").read_text())
    return data


def load_fixture(name: str) -> Any:
    """A sample of an exchange's own instruments payload (``tests/fakes/markets``)."""
    return json.loads((FIXTURES_DIR / name).read_text())
