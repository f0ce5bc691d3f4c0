"""The aiohttp-backed httpx transport against a real local HTTP server: what httpx's own
transport would send and return, byte for byte where signatures depend on it."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import httpx
import pytest
from aiohttp import web

from worker.holdings.provider import ProviderCredentials
from worker.holdings.snaptrade import SnapTradeClient, SnapTradeConfig, sign
from worker.http_transport import AiohttpTransport

CONSUMER_KEY = "consumer-key"


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": dict(request.headers),
            "body": body.decode(),
        },
        headers={"X-Seen": "yes"},
    )


async def gzipped(_: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(b'{"zipped": true}'),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )


async def busy(_: web.Request) -> web.Response:
    return web.json_response({"detail": "slow down"}, status=429, headers={"Retry-After": "3"})


async def slow(_: web.Request) -> web.Response:
    await asyncio.sleep(2)
    return web.json_response({})


async def positions(request: web.Request) -> web.Response:
    """SnapTrade's positions, only for a request whose signature covers what arrived."""
    path, _, query = request.raw_path.partition("?")
    expected = sign(CONSUMER_KEY, path=path, query=query, content=None)
    if request.headers.get("Signature") != expected:
        return web.json_response({"detail": "bad signature"}, status=401)
    params = dict(parse_qsl(query))
    assert params["userId"] == "user 1" and params["userSecret"] == "s/cr+t&=x"
    return web.json_response(
        {
            "results": [
                {
                    "instrument": {"kind": "stock", "id": "AAPL", "symbol": "AAPL"},
                    "units": "2.5",
                    "price": "200.10",
                    "cost_basis": "150",
                    "currency": "USD",
                }
            ],
            "data_freshness": {"as_of": "2026-12-07T10:00:00+00:00"},
        }
    )


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/busy", busy)
    app.router.add_get("/slow", slow)
    app.router.add_get("/api/v1/accounts/{id}/positions/all", positions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_sends_url_headers_and_body_as_httpx_built_them(server: str) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        response = await client.post(
            f"{server}/echo/a%2Fb",
            params={"q": "a b+c/d", "n": "1"},
            json={"x": [1, 2]},
            headers={"X-Custom": "v"},
        )
    assert response.status_code == 200
    assert response.headers["x-seen"] == "yes"
    seen = response.json()
    # The path and query arrive exactly as httpx encoded them (signatures cover them).
    assert seen["raw_path"] == f"/echo/a%2Fb?{response.request.url.query.decode()}"
    assert seen["method"] == "POST"
    assert json.loads(seen["body"]) == {"x": [1, 2]}
    assert seen["headers"]["X-Custom"] == "v"
    assert seen["headers"]["Content-Type"] == "application/json"


async def test_compressed_bodies_are_decoded_once(server: str) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        response = await client.get(f"{server}/gzip")
    assert response.json() == {"zipped": True}


async def test_status_and_headers_reach_the_caller(server: str) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        response = await client.get(f"{server}/busy")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"


async def test_failures_raise_httpx_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_read_timeout_raises_httpx_timeout(server: str) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=0.2) as client:
        with pytest.raises(httpx.TimeoutException):
            await client.get(f"{server}/slow")


async def test_snaptrade_requests_are_signed_over_what_is_sent(server: str) -> None:
    """SnapTrade's default client goes through this transport; the server recomputes the
    signature over the path and query it received."""
    snap = SnapTradeClient(SnapTradeConfig("TRADEFLEET", CONSUMER_KEY, f"{server}/api/v1"))
    try:
        snapshot = await snap.positions(ProviderCredentials("user 1", "s/cr+t&=x"), "acc-1")
    finally:
        await snap.aclose()
    assert [(h.symbol, str(h.units)) for h in snapshot.holdings] == [("AAPL", "2.5")]
