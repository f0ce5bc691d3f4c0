"""The one small registry through which capabilities give the fleet their work.

Each capability package exposes ``register(registry)`` and declares its job kinds and
periodic jobs there; the composition root (``worker.cli``) calls every ``register``. The
fleet runtime knows no capability: it only runs what was registered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from psycopg_pool import AsyncConnectionPool

if TYPE_CHECKING:
    from worker.fleet.leases import LeaseManager


@dataclass(frozen=True)
class Job:
    """A claimed row of ``public.jobs``."""

    id: int
    queue: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


@dataclass
class JobContext:
    """What a handler gets: its job, the database pool and the worker it runs on."""

    job: Job
    pool: AsyncConnectionPool
    worker_id: str
    log: logging.LoggerAdapter[logging.Logger]
    extend_lock: Callable[[float], Awaitable[None]]


Handler = Callable[[JobContext], Awaitable[Any]]


@dataclass(frozen=True)
class JobKind:
    kind: str
    handler: Handler
    queue: str = "default"
    max_attempts: int = 5
    timeout_s: float = 300.0


@dataclass(frozen=True)
class Periodic:
    """A job enqueued once per period by whichever worker gets there first."""

    name: str
    kind: str
    every: timedelta
    payload: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"


class Registry:
    def __init__(self) -> None:
        self.kinds: dict[str, JobKind] = {}
        self.periodic_jobs: dict[str, Periodic] = {}
        self.side_tasks: dict[str, Callable[[AsyncConnectionPool, str], Awaitable[None]]] = {}
        self.lease_tasks: dict[str, Callable[[LeaseManager], Awaitable[None]]] = {}

    def job(
        self, kind: str, *, queue: str = "default", max_attempts: int = 5, timeout_s: float = 300.0
    ) -> Callable[[Handler], Handler]:
        """Decorator: ``@registry.job("credits.settle")`` registers the handler for a kind."""

        def decorate(handler: Handler) -> Handler:
            self.add(JobKind(kind, handler, queue, max_attempts, timeout_s))
            return handler

        return decorate

    def add(self, job_kind: JobKind) -> None:
        if job_kind.kind in self.kinds:
            raise ValueError(f"job kind {job_kind.kind!r} is registered twice")
        self.kinds[job_kind.kind] = job_kind

    def every(
        self,
        name: str,
        every: timedelta,
        kind: str,
        payload: dict[str, Any] | None = None,
        queue: str = "default",
    ) -> None:
        """Run job ``kind`` once per ``every`` across the whole fleet."""
        if name in self.periodic_jobs:
            raise ValueError(f"periodic job {name!r} is registered twice")
        self.periodic_jobs[name] = Periodic(name, kind, every, payload or {}, queue)

    def side_task(
        self, name: str, run: Callable[[AsyncConnectionPool, str], Awaitable[None]]
    ) -> None:
        """A long-running task of the worker (e.g. the bot runner), started with it and
        cancelled on shutdown; receives the pool and the worker id."""
        if name in self.side_tasks:
            raise ValueError(f"side task {name!r} is registered twice")
        self.side_tasks[name] = run

    def lease_task(self, name: str, run: Callable[[LeaseManager], Awaitable[None]]) -> None:
        """A long-running task that runs leased bots (the bot runner). Registering one makes
        the worker take part in bot leasing; ``run`` receives the worker's
        :class:`~worker.fleet.leases.LeaseManager` (see its module docstring)."""
        if name in self.lease_tasks or name in self.side_tasks:
            raise ValueError(f"lease task {name!r} is registered twice")
        self.lease_tasks[name] = run
