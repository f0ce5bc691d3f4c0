"""A fake exchange as a process of its own, for tests and benchmarks that run real workers.

    python -m tests.fakes.serve binance [--port 0] [--price BTCUSDT=43000] [--balance USDT=10000]

``binance`` serves ``FakeBinance`` (spot), ``binanceusdm`` ``FakeBinanceFutures``. The first
line printed is ``listening http://127.0.0.1:<port>``; the server runs until SIGTERM/SIGINT.
Besides the exchange's own REST API it answers a control API under ``/_fake/`` (never
signed, loopback only):

- ``GET /_fake/state``: ``orders`` (every order with its fills), ``trades`` (the fills),
  ``balances`` (``{asset: {free, locked}}``), ``held`` (orders whose answer is held back);
- ``POST /_fake/kill_point`` ``{"name": "entry", "after": 0}``: arm a kill point (see
  ``KILL_POINTS``): the next order it matches (after letting ``after`` such orders through)
  is accepted (it exists on the exchange, balances move), but its answer is held back, so
  its caller never learns of it; the test then kills the caller;
- ``POST /_fake/release``: answer the held requests (to a dead caller: nothing arrives);
- ``POST /_fake/price`` ``{"symbol": "BTCUSDT", "price": "43000"}``: the market price.

``--history BTCUSDT:1m:1577836800000:1000000`` makes ``/api/v3/klines`` serve that many
generated candles of the symbol and interval from the given open time (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.fakes.fake_binance import FakeBinance
from tests.fakes.fake_binance_futures import FakeBinanceFutures

ORDER_PATHS = frozenset({"/api/v3/order", "/fapi/v1/order"})
PROTECTIVE_TYPES = frozenset(
    {
        "STOP_LOSS",
        "STOP_LOSS_LIMIT",
        "TAKE_PROFIT",
        "TAKE_PROFIT_LIMIT",
        "STOP",
        "STOP_MARKET",
        "TAKE_PROFIT_MARKET",
    }
)
KILL_POINTS: dict[str, Callable[[dict[str, Any]], bool]] = {
    # A long bot's entry and its exit at market (a signal, or the fleet's own stop check).
    "entry": lambda o: o["side"] == "BUY" and o["type"] == "MARKET",
    "exit": lambda o: o["side"] == "SELL" and o["type"] == "MARKET",
    # A protective order placed on the exchange (stop-loss or take-profit).
    "stop": lambda o: o["type"] in PROTECTIVE_TYPES,
}
"""Named points at which an accepted order's answer is held back (``/_fake/kill_point``)."""

KINDS: dict[str, type[FakeBinance]] = {"binance": FakeBinance, "binanceusdm": FakeBinanceFutures}


class Control:
    """Kill points and the state view over one fake exchange."""

    def __init__(self, fake: FakeBinance) -> None:
        self.fake = fake
        self.armed: list[list[Any]] = []  # [kill point, matching orders still let through]
        self.held: list[dict[str, Any]] = []
        self.release = asyncio.Event()
        self._dispatch = fake._dispatch
        fake._dispatch = self.dispatch  # type: ignore[method-assign]

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_fake/"):
            return await self.control(request)
        before = len(self.fake.orders)
        response = await self._dispatch(request)
        if (
            request.method == "POST"
            and request.path in ORDER_PATHS
            and len(self.fake.orders) > before
            and self.armed
        ):
            order = self.fake.orders[max(self.fake.orders)]
            point = next((p for p in self.armed if KILL_POINTS[p[0]](order)), None)
            if point is not None and point[1] > 0:
                point[1] -= 1
            elif point is not None:
                self.armed.remove(point)
                self.held.append({"kill_point": point[0], "clientOrderId": order["clientOrderId"]})
                await self.release.wait()
        return response

    async def control(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = {}
        if request.method == "POST" and request.can_read_body:
            body = json.loads(await request.text() or "{}")
        match (request.method, request.path):
            case ("GET", "/_fake/state"):
                return web.json_response(self.state())
            case ("POST", "/_fake/kill_point"):
                name = str(body.get("name"))
                if name not in KILL_POINTS:
                    return web.json_response(
                        {"error": f"unknown kill point {name!r}", "known": sorted(KILL_POINTS)},
                        status=400,
                    )
                self.release.clear()
                self.armed.append([name, int(body.get("after", 0))])
                return web.json_response({"armed": self.armed})
            case ("POST", "/_fake/release"):
                self.release.set()
                return web.json_response({"released": len(self.held)})
            case ("POST", "/_fake/price"):
                self.fake.prices[str(body["symbol"])] = Decimal(str(body["price"]))
                return web.json_response({"ok": True})
        return web.json_response({"error": f"no control route {request.path}"}, status=404)

    def state(self) -> dict[str, Any]:
        orders = [_plain(o) for o in self.fake.orders.values()]
        trades = [
            {
                **_plain(f),
                "orderId": o["orderId"],
                "clientOrderId": o["clientOrderId"],
                "symbol": o["symbol"],
                "side": o["side"],
            }
            for o in orders
            for f in o.get("fills") or []
        ]
        balances = {
            asset: {"free": str(v[0]), "locked": str(v[1])}
            for asset, v in self.fake.balances.items()
        }
        return {"orders": orders, "trades": trades, "balances": balances, "held": self.held}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Decimal) else value


def _pairs(values: list[str]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for v in values:
        key, _, amount = v.partition("=")
        out[key] = Decimal(amount)
    return out


async def serve(
    kind: str,
    port: int,
    prices: dict[str, Decimal],
    balances: dict[str, Decimal],
    history: list[str] | None = None,
) -> None:
    fake = KINDS[kind]()
    fake.prices.update(prices)
    for spec in history or []:
        symbol, interval, first, count = spec.split(":")
        fake.history[(symbol, interval)] = (int(first), int(count))
    for asset, amount in balances.items():
        fake.balances[asset] = [amount, Decimal(0)]
    Control(fake)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", lambda r: fake._dispatch(r))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    server = site._server
    assert server is not None
    bound = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"listening http://127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--price", action="append", default=[], help="SYMBOL=PRICE")
    parser.add_argument("--balance", action="append", default=[], help="ASSET=AMOUNT")
    parser.add_argument(
        "--history", action="append", default=[], help="SYMBOL:INTERVAL:FIRST_MS:COUNT"
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(args.kind, args.port, _pairs(args.price), _pairs(args.balance), args.history))


if __name__ == "__main__":
    sys.exit(main())
