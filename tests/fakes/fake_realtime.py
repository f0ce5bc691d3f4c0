"""A local Supabase Realtime server (Phoenix channel protocol, vsn 1.0.0, JSON) for tests.

It speaks what ``realtime`` (realtime-py) and supabase-js speak to the real server:

- ``GET /realtime/v1/websocket?apikey=…&vsn=1.0.0`` upgrades to a websocket;
- ``phx_join`` on ``realtime:<name>`` with ``config.postgres_changes`` bindings is answered
  by ``phx_reply`` ``{"status": "ok", "response": {"postgres_changes": [<binding + id>]}}``
  then a ``system`` message ``Subscribed to PostgreSQL``;
- ``heartbeat`` on topic ``phoenix`` is answered by an ok ``phx_reply``;
- changes arrive as ``postgres_changes`` events with the real payload shape:
  ``{"ids": [<binding id>], "data": {"schema", "table", "commit_timestamp", "type",
  "columns": [{"name", "type"}], "record": {...}, "errors": null}}``.

Instead of logical replication, it tails ``public.jobs`` of a real database: on each
``tradefleet_jobs`` notification (and every ``poll_s``) it reads rows with a larger id and
emits one INSERT per row to every subscribed ``INSERT``/``*`` binding on ``public.jobs``.
``drop_connections()`` closes every socket (the client must reconnect and rejoin).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import psycopg
from psycopg.rows import dict_row
from websockets.asyncio.server import Server, ServerConnection, serve

JOB_COLUMNS = [
    {"name": "id", "type": "int8"},
    {"name": "queue", "type": "text"},
    {"name": "kind", "type": "text"},
    {"name": "payload", "type": "jsonb"},
    {"name": "status", "type": "text"},
    {"name": "priority", "type": "int4"},
    {"name": "run_at", "type": "timestamptz"},
    {"name": "attempts", "type": "int4"},
    {"name": "max_attempts", "type": "int4"},
    {"name": "created_at", "type": "timestamptz"},
]


@dataclass
class _Binding:
    id: int
    event: str
    schema: str
    table: str | None
    filter: str | None


@dataclass
class _Subscription:
    ws: ServerConnection
    topic: str
    bindings: list[_Binding] = field(default_factory=list)


class FakeRealtime:
    """``async with FakeRealtime(db_url) as fake: RealtimeSource(fake.url, "key")``."""

    def __init__(self, db_url: str, *, api_key: str = "service-key", poll_s: float = 0.2) -> None:
        self.db_url = db_url
        self.api_key = api_key
        self.poll_s = poll_s
        self.joins: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.connections = 0
        self.events_sent = 0
        self._subs: list[_Subscription] = []
        self._ids = itertools.count(30636876)
        self._server: Server | None = None
        self._tail: asyncio.Task[None] | None = None
        self._last_id = 0
        self.url = ""

    async def __aenter__(self) -> FakeRealtime:
        async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as c:
            cur = await c.execute("select coalesce(max(id), 0) from public.jobs")
            row = await cur.fetchone()
            self._last_id = int(row[0]) if row else 0
        self._server = await serve(self._handle, "127.0.0.1", 0)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._tail = asyncio.create_task(self._tail_jobs())
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tail:
            self._tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tail
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def drop_connections(self) -> None:
        for sub in list(self._subs):
            await sub.ws.close(code=1011, reason="fake outage")

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        if (
            request is None
            or not request.path.startswith("/realtime/v1/websocket")
            or f"apikey={self.api_key}" not in request.path
        ):
            await ws.close(code=1008, reason="bad endpoint or apikey")
            return
        self.connections += 1
        try:
            async for raw in ws:
                msg = json.loads(raw)
                await self._on_message(ws, msg)
        except Exception:  # a dropped client is not the server's problem
            pass
        finally:
            self._subs = [s for s in self._subs if s.ws is not ws]

    async def _on_message(self, ws: ServerConnection, msg: dict[str, Any]) -> None:
        topic, event, ref = msg.get("topic"), msg.get("event"), msg.get("ref")
        if topic == "phoenix" and event == "heartbeat":
            self.heartbeats += 1
            await self._send(
                ws,
                {
                    "topic": "phoenix",
                    "event": "phx_reply",
                    "payload": {"status": "ok", "response": {}},
                    "ref": ref,
                },
            )
        elif event == "phx_join":
            self.joins.append(msg["payload"])
            sub = _Subscription(ws, topic)
            reply = []
            for b in msg["payload"].get("config", {}).get("postgres_changes", []):
                binding = _Binding(
                    next(self._ids),
                    b["event"],
                    b.get("schema", "public"),
                    b.get("table"),
                    b.get("filter"),
                )
                sub.bindings.append(binding)
                reply.append(
                    {
                        k: v
                        for k, v in {
                            "id": binding.id,
                            "event": binding.event,
                            "schema": binding.schema,
                            "table": binding.table,
                            "filter": binding.filter,
                        }.items()
                        if v is not None
                    }
                )
            self._subs.append(sub)
            await self._send(
                ws,
                {
                    "topic": topic,
                    "event": "phx_reply",
                    "ref": ref,
                    "join_ref": msg.get("join_ref"),
                    "payload": {"status": "ok", "response": {"postgres_changes": reply}},
                },
            )
            await self._send(
                ws,
                {
                    "topic": topic,
                    "event": "system",
                    "ref": None,
                    "payload": {
                        "channel": topic.removeprefix("realtime:"),
                        "extension": "postgres_changes",
                        "message": "Subscribed to PostgreSQL",
                        "status": "ok",
                    },
                },
            )
        elif event == "phx_leave":
            self._subs = [s for s in self._subs if not (s.ws is ws and s.topic == topic)]
            await self._send(
                ws,
                {
                    "topic": topic,
                    "event": "phx_reply",
                    "ref": ref,
                    "payload": {"status": "ok", "response": {}},
                },
            )
        elif event == "access_token":
            pass

    async def _send(self, ws: ServerConnection, msg: dict[str, Any]) -> None:
        await ws.send(json.dumps(msg))

    async def _tail_jobs(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as c:
            await c.execute("listen tradefleet_jobs")
            while True:
                await self._emit_new_rows(c)
                with contextlib.suppress(TimeoutError):
                    async for _ in c.notifies(timeout=self.poll_s, stop_after=1):
                        pass

    async def _emit_new_rows(self, conn: psycopg.AsyncConnection[Any]) -> None:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "select id, queue, kind, payload, status, priority, run_at, attempts, max_attempts,"
            " created_at from public.jobs where id > %s order by id",
            (self._last_id,),
        )
        for row in await cur.fetchall():
            self._last_id = row["id"]
            record = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
            for sub in list(self._subs):
                ids = [
                    b.id
                    for b in sub.bindings
                    if b.event in ("INSERT", "*")
                    and b.schema == "public"
                    and b.table in ("jobs", None, "*")
                ]
                if not ids:
                    continue
                payload = {
                    "ids": ids,
                    "data": {
                        "schema": "public",
                        "table": "jobs",
                        "commit_timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                        "type": "INSERT",
                        "columns": JOB_COLUMNS,
                        "record": record,
                        "errors": None,
                    },
                }
                with contextlib.suppress(Exception):
                    await self._send(
                        sub.ws,
                        {
                            "topic": sub.topic,
                            "event": "postgres_changes",
                            "ref": None,
                            "payload": payload,
                        },
                    )
                    self.events_sent += 1
