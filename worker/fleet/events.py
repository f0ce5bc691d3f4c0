"""Wake-ups: one interface, two sources (Postgres LISTEN/NOTIFY, Supabase Realtime).

A wake-up only says "queue X may have work"; the worker's periodic poll guarantees
progress when one is lost (reconnects, Realtime hiccups), so losing one never loses a job.
Both sources call ``wake(None)`` after (re)connecting: anything enqueued while they were
deaf gets picked up at once instead of at the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

import psycopg

from worker.fleet.queue import NOTIFY_CHANNEL

log = logging.getLogger("tradefleet.events")

Wake = Callable[[str | None], None]
"""Called with a queue name, or None for "any queue"."""


class EventSource(Protocol):
    name: str

    async def run(self, wake: Wake) -> None:
        """Deliver wake-ups until cancelled; reconnect on its own after failures."""
        ...


class ListenNotifySource:
    """``LISTEN tradefleet_jobs`` on a dedicated direct connection (the default)."""

    name = "listen"

    def __init__(self, url: str, *, retry_max_s: float = 5.0) -> None:
        self._url = url
        self._retry_max_s = retry_max_s
        self.connected = asyncio.Event()

    async def run(self, wake: Wake) -> None:
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, application_name="tradefleet-listen"
                ) as conn:
                    await conn.execute(f"listen {NOTIFY_CHANNEL}")
                    self.connected.set()
                    log.info(
                        "listening for job notifications",
                        extra={"action": "events_connected", "source": self.name},
                    )
                    delay = 0.1
                    wake(None)
                    async for notify in conn.notifies():
                        wake(notify.payload or None)
            except (psycopg.Error, OSError) as e:
                self.connected.clear()
                log.warning(
                    "notification connection lost; reconnecting",
                    extra={"action": "events_disconnected", "source": self.name, "error": str(e)},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)


class RealtimeSource:
    """Supabase Realtime ``postgres_changes`` on ``public.jobs`` INSERTs.

    ``url`` is the project URL (``https://<ref>.supabase.co``) or a Realtime websocket base;
    ``key`` the service-role key (so RLS lets the subscription see every job).
    """

    name = "realtime"

    def __init__(
        self, url: str, key: str, *, retry_max_s: float = 5.0, heartbeat_s: int = 25
    ) -> None:
        base = url.rstrip("/")
        self._url = base if base.endswith("/realtime/v1") else f"{base}/realtime/v1"
        self._key = key
        self._retry_max_s = retry_max_s
        self._heartbeat_s = heartbeat_s
        self.connected = asyncio.Event()

    async def run(self, wake: Wake) -> None:
        delay = 0.1
        while True:
            try:
                await self._session(wake)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the realtime client raises bare Exceptions
                log.warning(
                    "realtime connection failed; reconnecting",
                    extra={"action": "events_disconnected", "source": self.name, "error": str(e)},
                )
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)

    async def _session(self, wake: Wake) -> None:
        """One client connection, until it fails for good."""
        from realtime import (
            AsyncRealtimeClient,
            RealtimePostgresChangesListenEvent,
            RealtimeSubscribeStates,
        )

        client = AsyncRealtimeClient(
            self._url, self._key, hb_interval=self._heartbeat_s, max_retries=3, initial_backoff=0.2
        )
        failed = asyncio.Event()

        def on_insert(payload: Any) -> None:
            record = (payload.get("data") or {}).get("record") or {}
            wake(record.get("queue"))

        def on_state(state: Any, error: Exception | None) -> None:
            if state == RealtimeSubscribeStates.SUBSCRIBED:
                self.connected.set()
                log.info(
                    "subscribed to job inserts",
                    extra={"action": "events_connected", "source": self.name},
                )
                wake(None)
            elif state in (
                RealtimeSubscribeStates.CHANNEL_ERROR,
                RealtimeSubscribeStates.TIMED_OUT,
                RealtimeSubscribeStates.CLOSED,
            ):
                self.connected.clear()
                log.warning(
                    "realtime channel %s",
                    state,
                    extra={
                        "action": "events_disconnected",
                        "source": self.name,
                        "error": str(error),
                    },
                )
                if state != RealtimeSubscribeStates.CHANNEL_ERROR:
                    failed.set()  # the client rejoins errored channels itself

        try:
            await client.connect()
            channel = client.channel("tradefleet-jobs")
            channel.on_postgres_changes(
                RealtimePostgresChangesListenEvent.Insert, on_insert, table="jobs", schema="public"
            )
            await channel.subscribe(on_state)
            # The client reconnects by itself a few times, then gives up silently:
            # start over when it has stayed disconnected for two checks in a row.
            down = 0
            while not failed.is_set() and down < 2:
                down = 0 if client.is_connected else down + 1
                try:
                    await asyncio.wait_for(failed.wait(), 1.0)
                except TimeoutError:
                    pass
        finally:
            self.connected.clear()
            await client.close()
