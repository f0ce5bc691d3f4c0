"""The worker's clock (apscheduler 3, AsyncIOScheduler): the ticks the worker hands it
(heartbeats, sweeps, lease renewals) and the registry's periodic jobs.

Periodic jobs run once per period across the whole fleet: every worker enqueues the job
with the idempotency key ``periodic:<name>:<period number>`` (periods counted from the Unix
epoch), the database keeps the first and ignores the rest.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from worker.fleet import queue
from worker.fleet.registry import Periodic

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


@dataclass(frozen=True)
class Tick:
    """Something the worker does every ``seconds`` (heartbeat, sweep, lease renewal)."""

    name: str
    seconds: float
    run: Callable[[], Awaitable[object]]


class FleetScheduler:
    """Runs the worker's ticks and enqueues the registry's periodic jobs (each with its
    kind's ``max_attempts``); a failing run is logged, never fatal."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        ticks: Iterable[Tick],
        periodic: Iterable[tuple[Periodic, int]] = (),
    ) -> None:
        self.pool = pool
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        for tick in ticks:
            self._every(tick.name, tick.seconds, tick.run)
        for p, max_attempts in periodic:
            self._every(
                f"periodic:{p.name}",
                p.every.total_seconds(),
                functools.partial(enqueue_periodic, pool, p, max_attempts),
                aligned=True,
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
