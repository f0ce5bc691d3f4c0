"""Live updates: one LISTEN connection per console process, fanned out to every browser.

The database sends ``tradefleet_console`` notifications whose payload names a topic
(``queue``, ``webhooks``, ``bots``, ``fleet``, ``audit``; see the console migration), and a
service health change arrives on ``tradefleet_service_health`` (topic ``services``). The
hub passes each topic on to every connected client's queue, at most once per
``interval_s`` per topic (a burst of job statements becomes one update, the last one
always arrives). Browsers then fetch the parts of their page that show the topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

import psycopg

log = logging.getLogger("tradefleet.console")

CHANNEL = "tradefleet_console"
SERVICES_CHANNEL = "tradefleet_service_health"  # payload: the changed service (ops area)
TOPICS = ("queue", "webhooks", "bots", "fleet", "audit", "services")
CLIENT_BACKLOG = 64


class Hub:
    """Topics in, to every subscriber's queue out."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self._interval_s = interval_s
        self._clients: set[asyncio.Queue[str]] = set()
        self._last: dict[str, float] = {}
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self.connected = asyncio.Event()

    @property
    def clients(self) -> int:
        return len(self._clients)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue(CLIENT_BACKLOG)
        self._clients.add(queue)
        try:
            yield queue
        finally:
            self._clients.discard(queue)

    def publish(self, topic: str) -> None:
        """Pass ``topic`` on now, or once its interval is over if it was just sent."""
        if topic in self._pending:
            return
        wait = self._last.get(topic, -1e9) + self._interval_s - time.monotonic()
        if wait <= 0:
            self._send(topic)
        else:
            loop = asyncio.get_running_loop()
            self._pending[topic] = loop.call_later(wait, self._send, topic)

    def _send(self, topic: str) -> None:
        self._pending.pop(topic, None)
        self._last[topic] = time.monotonic()
        for queue in list(self._clients):
            try:
                queue.put_nowait(topic)
            except asyncio.QueueFull:  # a client that stopped reading misses updates
                pass

    async def listen(self, url: str, *, retry_max_s: float = 5.0) -> None:
        """LISTEN until cancelled, reconnecting after failures (then everything is stale)."""
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    url, autocommit=True, application_name="tradefleet-console-listen"
                ) as conn:
                    await conn.execute(f"listen {CHANNEL}")
                    await conn.execute(f"listen {SERVICES_CHANNEL}")
                    self.connected.set()
                    delay = 0.1
                    for topic in TOPICS:
                        self.publish(topic)
                    async for notify in conn.notifies():
                        if notify.channel == SERVICES_CHANNEL:
                            self.publish("services")
                        elif notify.payload in TOPICS:
                            self.publish(notify.payload)
            except (psycopg.Error, OSError) as e:
                self.connected.clear()
                log.warning("console notifications lost; reconnecting: %s", e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, retry_max_s)
