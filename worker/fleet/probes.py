"""The worker's HTTP probes (aiohttp), on ``METRICS_PORT`` when it is set:

- ``GET /healthz``: 200 while the process's event loop answers (liveness);
- ``GET /readyz``: 200 when the worker is registered, its database answers and says it is
  running, and it is not draining; 503 otherwise, with the reason as the body (readiness);
- ``GET /metrics``: :mod:`worker.fleet.metrics` in Prometheus' text format.

The server starts before the worker connects, so a worker waiting for its database is
alive but not ready, and stops after the worker has drained.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from psycopg_pool import AsyncConnectionPool

from worker.errors import ConfigError
from worker.fleet.metrics import FleetMetrics

log = logging.getLogger("tradefleet.probes")
WORKER_STATUS = "select status from public.workers where id = %(id)s"


class Probed(Protocol):
    """What the probes read of a worker."""

    worker_id: str
    pool: AsyncConnectionPool | None

    @property
    def draining(self) -> bool: ...

    def pools(self) -> dict[str, AsyncConnectionPool | None]: ...

    def queues(self) -> list[str]: ...

    def bots_leased(self) -> int: ...


async def readiness(worker: Probed, timeout_s: float = 2.0) -> str | None:
    """Why ``worker`` is not ready, or None when it is."""
    if worker.draining:
        return "draining"
    pool = worker.pool
    if not worker.worker_id or pool is None:
        return "not registered yet"
    try:
        async with asyncio.timeout(timeout_s):
            async with pool.connection(timeout=timeout_s) as conn:
                cur = await conn.execute(WORKER_STATUS, {"id": worker.worker_id})
                row = await cur.fetchone()
    except Exception as e:
        return f"database unreachable: {type(e).__name__}"
    status = None if row is None else row[0]
    if status != "running":
        return f"worker is {status or 'unknown to the database'}"
    return None


class ProbeServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` of one worker."""

    def __init__(
        self, worker: Probed, metrics: FleetMetrics, port: int, host: str = "0.0.0.0"
    ) -> None:
        self.worker = worker
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self.app = app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as e:
            await self.stop()
            raise ConfigError(
                f"METRICS_PORT={self.port} cannot be served on {self.host}: "
                f"{os.strerror(e.errno) if e.errno else e}; choose a free port for each worker"
            ) from None
        log.info(
            "probes listening",
            extra={"action": "probes_started", "host": self.host, "port": self.port},
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return _json(200, {"status": "alive", "worker_id": self.worker.worker_id or None})

    async def _readyz(self, request: web.Request) -> web.Response:
        reason = await readiness(self.worker)
        if reason is None:
            return _json(200, {"status": "ready", "worker_id": self.worker.worker_id})
        return _json(503, {"status": "not ready", "reason": reason})

    async def _metrics(self, request: web.Request) -> web.Response:
        w = self.worker
        await self.metrics.refresh(w.pools(), w.queues(), w.bots_leased())
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def _json(status: int, body: dict[str, object]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")
