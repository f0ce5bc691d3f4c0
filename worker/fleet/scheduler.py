"""The worker's clock (apscheduler 3, AsyncIOScheduler): heartbeats, sweeps, lease renewals
and the registry's periodic jobs.

Periodic jobs run once per period across the whole fleet: every worker enqueues the job
with the idempotency key ``periodic:<name>:<period number>`` (periods counted from the Unix
epoch), the database keeps the first and ignores the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from worker.fleet import queue, workers
from worker.fleet.registry import Periodic

if TYPE_CHECKING:
    from worker.fleet.runtime import Worker

log = logging.getLogger("tradefleet.scheduler")
DB_ERRORS = (psycopg.Error, OSError, PoolTimeout)


def period_key(p: Periodic, now: float | None = None) -> str:
    """The idempotency key of the current period of ``p``."""
    every = p.every.total_seconds()
    return f"periodic:{p.name}:{int((time.time() if now is None else now) // every)}"


async def enqueue_periodic(pool: AsyncConnectionPool, p: Periodic, max_attempts: int = 5) -> int:
    """Enqueue this period's run of ``p`` (a no-op if a peer already did)."""
    return await queue.enqueue(
        pool,
        p.kind,
        p.payload,
        queue=p.queue,
        max_attempts=max_attempts,
        idempotency_key=period_key(p),
    )


class FleetScheduler:
    def __init__(self, worker: Worker, pool: AsyncConnectionPool) -> None:
        self.worker = worker
        self.pool = pool
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        s = worker.settings
        self._every("heartbeat", s.heartbeat_s, self.heartbeat)
        self._every("sweep", s.sweep_interval_s, self.sweep)
        if worker.leases is not None:
            self._every("leases", s.lease_ttl_s / 3, worker.leases.sync)
        for p in worker.registry.periodic_jobs.values():
            self._every(
                f"periodic:{p.name}", p.every.total_seconds(), self._periodic(p), aligned=True
            )

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _every(
        self, name: str, seconds: float, run: Callable[[], Awaitable[object]], aligned: bool = False
    ) -> None:
        async def job() -> None:
            try:
                await run()
            except DB_ERRORS as e:
                log.warning(
                    "%s failed",
                    name,
                    extra={"action": "scheduled_failed", "task": name, "error": str(e)},
                )
            except Exception:
                log.exception(
                    "%s crashed", name, extra={"action": "scheduled_crashed", "task": name}
                )

        start = datetime.now(UTC)
        if aligned:  # period boundaries, so every worker fires at the same instants
            start = datetime.fromtimestamp(time.time() // seconds * seconds, UTC)
        self.scheduler.add_job(
            job,
            IntervalTrigger(seconds=seconds, start_date=start, timezone=UTC),
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(seconds)),
            next_run_time=datetime.now(UTC) + timedelta(milliseconds=10),
        )

    def _periodic(self, p: Periodic) -> Callable[[], Awaitable[object]]:
        kind = self.worker.registry.kinds.get(p.kind)
        return lambda: enqueue_periodic(self.pool, p, kind.max_attempts if kind else 5)

    async def heartbeat(self) -> None:
        w = self.worker
        status = await workers.heartbeat(
            self.pool, w.worker_id, w.settings.job_lock_s, w.held_job_ids()
        )
        if status is None:
            log.error(
                "worker row vanished",
                extra={"action": "heartbeat_unknown_worker", "worker_id": w.worker_id},
            )

    async def sweep(self) -> None:
        s = self.worker.settings
        dead = await workers.mark_dead(self.pool, max(s.lease_ttl_s, 3 * s.heartbeat_s))
        reclaimed = await queue.reclaim_expired(self.pool)
        if dead or reclaimed:
            log.info(
                "sweep",
                extra={"action": "sweep", "dead_workers": dead, "reclaimed_jobs": reclaimed},
            )
