"""An httpx transport that sends through aiohttp: httpx's client API (auth, retries, tests
that fake it at the transport with respx) over aiohttp's connection pool and C parser.

httpx's own transport (httpcore over anyio, h11 in pure Python) costs several times the
CPU per request of aiohttp's; a worker syncing thousands of brokerage accounts spends most
of its time there. The URL goes out exactly as httpx built it (never re-quoted: request
signatures cover it), the body and headers as given, and the response comes back
undecoded so httpx decodes it by its headers as with its own transport. Connection
failures and timeouts raise httpx's exceptions, so callers handle them the same way.
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
from yarl import URL

# Set by aiohttp from the body, or meaningless once the request is handed over.
_DROPPED = {"content-length", "transfer-encoding", "connection"}


class AiohttpTransport(httpx.AsyncBaseTransport):
    """``limit``: connections open at once (aiohttp's connector pool, kept alive)."""

    def __init__(self, *, limit: int = 100) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                auto_decompress=False,  # httpx decodes by Content-Encoding
                skip_auto_headers=("Accept-Encoding", "User-Agent"),
            )
            self._loop = loop
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers.raw
            if k.lower().decode("latin-1") not in _DROPPED
        ]
        body = await request.aread()
        try:
            async with self._current_session().request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                content = await response.read()
                return httpx.Response(
                    response.status,
                    headers=[
                        (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers
                    ],
                    content=content,
                    request=request,
                    extensions={"http_version": b"HTTP/1.1"},
                )
        except TimeoutError as e:
            raise httpx.TimeoutException(
                f"{request.method} {request.url.host}: timed out", request=request
            ) from e
        except aiohttp.ClientConnectionError as e:
            raise httpx.ConnectError(f"{type(e).__name__}: {e}", request=request) from e
        except aiohttp.ClientError as e:
            raise httpx.TransportError(f"{type(e).__name__}: {e}", request=request) from e

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
