"""One worker process: claims and runs jobs, heartbeats, keeps bot leases, drains on SIGTERM.

Life of a worker::

    register -> [event source, claim loop, outcome writer, scheduler, side/lease tasks]
    SIGTERM  -> draining: stop claiming, let running jobs finish for DRAIN_TIMEOUT_S,
                release the rest (they run again elsewhere), release bot leases, stopped.
    SIGKILL  -> nothing is lost: peers mark the silent worker dead and requeue its jobs;
                locks that were not reclaimed expire (visibility timeout).

Claims and outcomes are written on a small pool of their own with asynchronous commit:
a PostgreSQL crash can lose the last few of them, which only means a job runs again (its
lock is no longer extended by heartbeats, expires and is reclaimed). Enqueues, leases and
everything handlers write stay synchronous.

A failing handler never stops the worker: ``Retryable`` retries with backoff, ``Fatal``
and ``Bug`` send the job to ``dead`` at once, anything else (``CancelledError`` raised by
the handler itself, ``SystemExit`` and ``KeyboardInterrupt`` included) retries until
max_attempts. A payload that does not match its kind's model goes to ``dead`` at once.
Database outages (PostgreSQL restarts) are waited out: every loop retries with backoff
and the pool checks connections before handing them out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from worker.db import open_pool
from worker.errors import Bug, Fatal, Retryable
from worker.fleet import queue, workers
from worker.fleet.events import EventSource, ListenNotifySource, RealtimeSource
from worker.fleet.leases import LeaseManager
from worker.fleet.logs import JobLog
from worker.fleet.metrics import METRICS
from worker.fleet.probes import ProbeServer
from worker.fleet.registry import Job, PayloadError, Registry
from worker.fleet.scheduler import FleetScheduler, Tick
from worker.fleet.settings import FleetSettings

log = logging.getLogger("tradefleet.worker")
DB_ERRORS = (psycopg.Error, OSError, PoolTimeout)
VERSION = "0.1.0"
T = TypeVar("T")


def pool_size(concurrency: int) -> int:
    """Connections a worker's pool holds at most: one per job it runs at once, a few for the
    fleet's own loops, at most 40 (the database's connections are shared by every worker)."""
    return min(concurrency + 4, 40)


@dataclass
class _Outcome:
    job: Job
    ok: bool
    result: Any = None
    error: str = ""
    retry: bool = True
    retry_after_s: float | None = None
    release: bool = False


def make_event_source(settings: FleetSettings) -> EventSource:
    if settings.event_source == "realtime":
        if not settings.supabase_url or not settings.supabase_service_role_key:
            raise ValueError(
                "EVENT_SOURCE=realtime needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"
            )
        return RealtimeSource(
            settings.supabase_url, settings.supabase_service_role_key.get_secret_value()
        )
    return ListenNotifySource(settings.database_url.get_secret_value())


class Worker:
    """A fleet worker; ``await Worker(settings, registry).run()`` until stopped."""

    def __init__(
        self,
        settings: FleetSettings,
        registry: Registry,
        *,
        event_source: EventSource | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.event_source = event_source or make_event_source(settings)
        self.worker_id = ""
        self.pool: AsyncConnectionPool | None = None
        self.leases: LeaseManager | None = None
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._outcomes: asyncio.Queue[_Outcome] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._book: AsyncConnectionPool | None = None
        self._unwritten: set[int] = set()

    def request_stop(self) -> None:
        """Begin draining (what SIGTERM and SIGINT do)."""
        if not self._stopping.is_set():
            log.info(
                "stop requested; draining",
                extra={"action": "drain_start", "worker_id": self.worker_id},
            )
        self._stopping.set()
        # Wake the claim loop whatever it waits for (a wake-up or a free slot).
        self._wakeup.set()
        self._slot_freed.set()

    @property
    def draining(self) -> bool:
        return self._stopping.is_set()

    def pools(self) -> dict[str, AsyncConnectionPool | None]:
        return {"main": self.pool, "queue": self._book}

    def queues(self) -> list[str]:
        return list(self.settings.worker_queues)

    def bots_leased(self) -> int:
        return 0 if self.leases is None else len(self.leases.owned)

    def wake(self, queue_name: str | None) -> None:
        if queue_name is None or queue_name in self.settings.worker_queues:
            self._wakeup.set()

    async def run(self) -> int:
        s = self.settings
        probes = None
        if s.metrics_port is not None:
            probes = ProbeServer(self, METRICS, s.metrics_port, s.metrics_host)
            await probes.start()
        try:
            return await self._run_with_pools()
        finally:
            if probes is not None:
                await probes.stop()

    async def _run_with_pools(self) -> int:
        s = self.settings
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        url = s.database_url.get_secret_value()
        self.pool = await open_pool(
            url,
            role=s.worker_db_role,
            min_size=2,
            max_size=pool_size(s.worker_concurrency),
            name=f"tradefleet-{s.worker_name}"[:60],
            idle_in_transaction_s=s.db_idle_in_transaction_s,
        )
        try:
            self._book = await open_pool(
                url,
                role=s.worker_db_role,
                min_size=1,
                max_size=3,
                async_commit=s.queue_async_commit,
                name=f"tradefleet-queue-{s.worker_name}"[:60],
                idle_in_transaction_s=s.db_idle_in_transaction_s,
            )
            try:
                return await self._run(self.pool)
            finally:
                await self._book.close()
        finally:
            await self.pool.close()

    def held_job_ids(self) -> list[int]:
        """Jobs whose locks heartbeats keep: running, or finished with the outcome unwritten."""
        return sorted({*self._running, *self._unwritten})

    async def _run(self, pool: AsyncConnectionPool) -> int:
        s = self.settings
        use_leases = bool(self.registry.lease_tasks)
        self.worker_id = await self._until_ok(
            "register",
            lambda: workers.register(
                pool,
                name=s.worker_name,
                host=socket.gethostname(),
                pid=os.getpid(),
                version=VERSION,
                queues=s.worker_queues,
                capacity=s.worker_capacity,
                metadata={
                    "leases": use_leases,
                    "kinds": sorted(self.registry.kinds),
                    "events": self.event_source.name,
                },
            ),
        )
        log.info(
            "worker started",
            extra={
                "action": "worker_started",
                "worker_id": self.worker_id,
                "worker_name": s.worker_name,
                "queues": s.worker_queues,
                "kinds": sorted(self.registry.kinds),
                "events": self.event_source.name,
            },
        )
        if use_leases:
            self.leases = LeaseManager(pool, self.worker_id, ttl_s=s.lease_ttl_s)
        scheduler = self._scheduler(pool)
        self._spawn("events", self.event_source.run(self.wake))
        self._spawn("outcomes", self._outcome_writer(self._book or pool))
        for name, side in self.registry.side_tasks.items():
            self._spawn(name, self._supervise(name, functools.partial(side, pool, self.worker_id)))
        leases = self.leases
        if leases is not None:
            await leases.sync()
            for name, lease_task in self.registry.lease_tasks.items():
                self._spawn(name, self._supervise(name, functools.partial(lease_task, leases)))
        scheduler.start()
        try:
            await self._claim_loop(pool)
        finally:
            await self._drain(pool, scheduler)
        return 0

    # --- the clock -------------------------------------------------------------------

    def _scheduler(self, pool: AsyncConnectionPool) -> FleetScheduler:
        s = self.settings
        ticks = [
            Tick("heartbeat", s.heartbeat_s, functools.partial(self._heartbeat, pool)),
            Tick("sweep", s.sweep_interval_s, functools.partial(self._sweep, pool)),
        ]
        if self.leases is not None:
            ticks.append(Tick("leases", s.lease_ttl_s / 3, self.leases.sync))
        periodic = [
            (p, self.registry.kinds[p.kind].max_attempts)
            for p in self.registry.periodic_jobs.values()
        ]
        return FleetScheduler(pool, ticks, periodic)

    async def _heartbeat(self, pool: AsyncConnectionPool) -> None:
        status = await workers.heartbeat(
            pool, self.worker_id, self.settings.job_lock_s, self.held_job_ids()
        )
        if status is None:
            log.error(
                "worker row vanished",
                extra={"action": "heartbeat_unknown_worker", "worker_id": self.worker_id},
            )

    async def _sweep(self, pool: AsyncConnectionPool) -> None:
        s = self.settings
        dead = await workers.mark_dead(pool, max(s.lease_ttl_s, 3 * s.heartbeat_s))
        reclaimed = await queue.reclaim_expired(pool)
        if dead or reclaimed:
            log.info(
                "sweep",
                extra={"action": "sweep", "dead_workers": dead, "reclaimed_jobs": reclaimed},
            )

    # --- claiming and running ---------------------------------------------------------

    async def _claim_loop(self, pool: AsyncConnectionPool) -> None:
        s = self.settings
        kinds = sorted(self.registry.kinds)
        delay = 0.1
        while not self._stopping.is_set():
            free = s.worker_concurrency - len(self._running)
            # Claim in batches: with jobs running, wait until half a batch of slots is free
            # rather than paying a round trip per freed slot.
            if free <= 0 or (
                self._running and free < min(s.worker_claim_batch, s.worker_concurrency) // 2
            ):
                self._slot_freed.clear()
                await self._wait(self._slot_freed, s.poll_interval_s)
                continue
            self._wakeup.clear()
            try:
                jobs = await queue.claim(
                    self._book or pool,
                    self.worker_id,
                    s.worker_queues,
                    min(free, s.worker_claim_batch),
                    lock_s=s.job_lock_s,
                    kinds=kinds,
                )
                delay = 0.1
            except DB_ERRORS as e:
                log.warning(
                    "claim failed; retrying", extra={"action": "claim_failed", "error": str(e)}
                )
                await self._wait(self._stopping, delay)
                delay = min(delay * 2, 5.0)
                continue
            for job in jobs:
                METRICS.jobs_claimed.labels(job.kind).inc()
                self._running[job.id] = asyncio.create_task(
                    self._run_job(pool, job), name=f"job-{job.id}"
                )
            if len(jobs) < min(free, s.worker_claim_batch):
                await self._wait(self._wakeup, s.poll_interval_s)

    async def _run_job(self, pool: AsyncConnectionPool, job: Job) -> None:
        kind = self.registry.kinds[job.kind]
        adapter = JobLog(log, {"job_id": job.id, "kind": job.kind, "attempt": job.attempts})

        async def extend_lock(seconds: float) -> None:
            await queue.extend_lock(pool, self.worker_id, job.id, seconds)

        started = time.perf_counter()
        try:
            try:
                ctx = self.registry.context(job, pool, self.worker_id, adapter, extend_lock)
            except PayloadError as e:
                # Retrying cannot fix a payload: it was enqueued by SQL or by hand.
                outcome = _Outcome(job, False, error=f"invalid payload: {e}", retry=False)
            else:
                async with asyncio.timeout(kind.timeout_s):
                    result = await kind.handler(ctx)
                outcome = _Outcome(job, True, result=_jsonable(result))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not (self._stopping.is_set() or (task is not None and task.cancelling())):
                # The handler raised it (or awaited something someone else cancelled):
                # a failure like any other, not a shutdown.
                outcome = _Outcome(job, False, error="CancelledError: the handler was cancelled")
            else:
                self._unwritten.add(job.id)
                self._outcomes.put_nowait(
                    _Outcome(job, False, error="interrupted by shutdown", release=True)
                )
                raise
        except Retryable as e:
            outcome = _Outcome(job, False, error=f"Retryable: {e}", retry_after_s=e.retry_after)
        except (Fatal, Bug) as e:
            outcome = _Outcome(job, False, error=f"{type(e).__name__}: {e}", retry=False)
        except TimeoutError:
            outcome = _Outcome(job, False, error=f"timed out after {kind.timeout_s}s")
        except (Exception, SystemExit, KeyboardInterrupt) as e:
            # SystemExit and KeyboardInterrupt raised by a handler end its job, not the worker.
            adapter.exception("job handler crashed", extra={"action": "job_crashed"})
            outcome = _Outcome(job, False, error=f"{type(e).__name__}: {e}")
        finally:
            self._running.pop(job.id, None)
            self._slot_freed.set()
            METRICS.job_duration.labels(job.kind).observe(time.perf_counter() - started)
        if not outcome.ok:
            adapter.warning("job failed", extra={"action": "job_failed", "error": outcome.error})
        self._unwritten.add(job.id)
        self._outcomes.put_nowait(outcome)

    async def _outcome_writer(self, pool: AsyncConnectionPool) -> None:
        """Write outcomes in batches (one round trip for many completions); retry through
        outages: an outcome is never dropped while the process lives."""
        while True:
            batch = [await self._outcomes.get()]
            while not self._outcomes.empty() and len(batch) < 500:
                batch.append(self._outcomes.get_nowait())
            done = [o for o in batch if o.ok]
            if done:
                completed = await self._until_ok(
                    "complete",
                    functools.partial(
                        queue.complete,
                        pool,
                        self.worker_id,
                        [o.job.id for o in done],
                        [o.result for o in done],
                    ),
                )
                for o in done:
                    if o.job.id in completed:
                        METRICS.jobs_succeeded.labels(o.job.kind).inc()
            released = [o.job.id for o in batch if o.release]
            if released:
                await self._until_ok(
                    "release", functools.partial(queue.release, pool, self.worker_id, released)
                )
            for o in batch:
                if not o.ok and not o.release:
                    status = await self._until_ok(
                        "fail",
                        functools.partial(
                            queue.fail,
                            pool,
                            self.worker_id,
                            o.job.id,
                            o.error,
                            retry=o.retry,
                            retry_after_s=o.retry_after_s,
                            backoff_base_s=self.settings.job_backoff_base_s,
                        ),
                    )
                    if status is not None:
                        METRICS.count_outcome(o.job.kind, status)
            for o in batch:
                self._unwritten.discard(o.job.id)
                self._outcomes.task_done()

    # --- shutdown --------------------------------------------------------------------

    async def _drain(self, pool: AsyncConnectionPool, scheduler: FleetScheduler) -> None:
        s = self.settings
        if self.leases is not None:
            await self.leases.quiesce()  # before "draining" gives the leases up at a sync
        with contextlib.suppress(*DB_ERRORS):
            await workers.set_status(pool, self.worker_id, "draining")
        if self._running:
            log.info(
                "waiting for running jobs",
                extra={"action": "drain_wait", "running": len(self._running)},
            )
            _, pending = await asyncio.wait(list(self._running.values()), timeout=s.drain_timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        scheduler.shutdown()
        if self.leases is not None:
            await self.leases.close()
        await self._flush_outcomes(5.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(*DB_ERRORS):
            await workers.set_status(pool, self.worker_id, "stopped")
        log.info("worker stopped", extra={"action": "worker_stopped", "worker_id": self.worker_id})

    async def _flush_outcomes(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._outcomes.join()

    # --- helpers ---------------------------------------------------------------------

    def _spawn(self, name: str, coro: Awaitable[None]) -> None:
        async def wrapped() -> None:
            await coro

        self._tasks.append(asyncio.create_task(wrapped(), name=name))

    async def _supervise(self, name: str, start: Callable[[], Awaitable[None]]) -> None:
        """Run a side task; if it crashes, log and restart it: it never stops the worker."""
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await start()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "side task crashed; restarting",
                    extra={"action": "side_task_crashed", "task": name},
                )
                await self._wait(self._stopping, delay)
                delay = min(delay * 2, 30.0)

    async def _until_ok(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Retry a database call through outages (PostgreSQL restarts) with backoff."""
        delay = 0.1
        while True:
            try:
                return await call()
            except DB_ERRORS as e:
                log.warning(
                    "%s failed; retrying", what, extra={"action": f"{what}_failed", "error": str(e)}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    @staticmethod
    async def _wait(event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return {"repr": repr(value)[:1000]}
    return value
