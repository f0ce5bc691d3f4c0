"""The one small registry through which capabilities give the fleet their work.

Each capability package exposes ``register(registry, settings)`` and declares its job
kinds (each with the pydantic model of its payload) and periodic jobs there; the
composition root (:mod:`worker.capabilities`) builds every capability's settings and
calls every ``register``. The fleet runtime knows no capability: it only runs what was
registered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, ValidationError

from worker.fleet import queue as job_queue
from worker.fleet.logs import JobLog
from worker.fleet.queue import Job

if TYPE_CHECKING:
    from datetime import datetime

    from worker.fleet.leases import LeaseManager

__all__ = [
    "Job",
    "JobContext",
    "JobKind",
    "NoPayload",
    "Payload",
    "PayloadError",
    "Periodic",
    "Registry",
]

P = TypeVar("P", bound=BaseModel)


class Payload(BaseModel):
    """Base of job payload models: unknown fields are refused, parsed payloads are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoPayload(Payload):
    """The payload of a kind that takes no parameters: ``{}``."""


class PayloadError(ValueError):
    """A payload does not match its job kind's model (the message is pydantic's)."""


async def _no_extend(_: float) -> None:
    return None


@dataclass
class JobContext(Generic[P]):
    """What a handler gets: its job, its validated payload, the database pool and the
    worker it runs on."""

    job: Job
    payload: P
    pool: AsyncConnectionPool
    worker_id: str
    log: logging.LoggerAdapter[logging.Logger]
    extend_lock: Callable[[float], Awaitable[None]] = _no_extend


Handler = Callable[[JobContext[Any]], Awaitable[object]]
TypedHandler = Callable[[JobContext[P]], Awaitable[object]]


@dataclass(frozen=True)
class JobKind:
    kind: str
    handler: Handler
    payload: type[BaseModel]
    queue: str = "default"
    max_attempts: int = 5
    timeout_s: float = 300.0

    def parse(self, payload: BaseModel | Mapping[str, Any] | None) -> BaseModel:
        """The payload as this kind's model; raises :class:`PayloadError` if it does not fit."""
        if isinstance(payload, self.payload):
            return payload
        if isinstance(payload, BaseModel):
            raise PayloadError(
                f"{self.kind} takes a {self.payload.__name__} payload, not {type(payload).__name__}"
            )
        try:
            return self.payload.model_validate(payload or {})
        except ValidationError as e:
            raise PayloadError(str(e)) from None


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
        self,
        kind: str,
        *,
        payload: type[P],
        queue: str = "default",
        max_attempts: int = 5,
        timeout_s: float = 300.0,
    ) -> Callable[[TypedHandler[P]], TypedHandler[P]]:
        """Decorator: ``@registry.job("credits.settle", payload=Settle)`` registers the
        handler of a kind; it receives ``ctx.payload`` as a ``Settle``."""

        def decorate(handler: TypedHandler[P]) -> TypedHandler[P]:
            self.add(JobKind(kind, handler, payload, queue, max_attempts, timeout_s))
            return handler

        return decorate

    def add(self, job_kind: JobKind) -> None:
        if job_kind.kind in self.kinds:
            raise ValueError(f"job kind {job_kind.kind!r} is registered twice")
        self.kinds[job_kind.kind] = job_kind

    def kind(self, kind: str) -> JobKind:
        found = self.kinds.get(kind)
        if found is None:
            raise PayloadError(f"no job kind {kind!r} is registered")
        return found

    def context(
        self,
        job: Job,
        pool: AsyncConnectionPool,
        worker_id: str,
        log: logging.LoggerAdapter[logging.Logger] | None = None,
        extend_lock: Callable[[float], Awaitable[None]] = _no_extend,
    ) -> JobContext[Any]:
        """The context a claimed job's handler runs with; raises :class:`PayloadError` if
        the stored payload does not match the kind's model."""
        payload = self.kind(job.kind).parse(job.payload)
        adapter = log or JobLog(
            logging.getLogger("tradefleet.jobs"), {"job_id": job.id, "kind": job.kind}
        )
        return JobContext(job, payload, pool, worker_id, adapter, extend_lock)

    async def enqueue(
        self,
        pool: AsyncConnectionPool,
        kind: str,
        payload: BaseModel | Mapping[str, Any] | None = None,
        *,
        queue: str | None = None,
        run_at: datetime | None = None,
        priority: int = 0,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Validate ``payload`` against ``kind``'s model, then enqueue it (see
        :func:`worker.fleet.queue.enqueue`). A bad payload raises :class:`PayloadError`
        and writes nothing. Queue and attempts default to the kind's."""
        job_kind = self.kind(kind)
        parsed = job_kind.parse(payload)
        return await job_queue.enqueue(
            pool,
            kind,
            parsed.model_dump(mode="json", exclude_unset=True),
            queue=queue or job_kind.queue,
            run_at=run_at,
            priority=priority,
            max_attempts=max_attempts or job_kind.max_attempts,
            idempotency_key=idempotency_key,
        )

    def every(
        self,
        name: str,
        every: timedelta,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        queue: str = "default",
    ) -> None:
        """Run job ``kind`` (registered before) once per ``every`` across the whole fleet."""
        if name in self.periodic_jobs:
            raise ValueError(f"periodic job {name!r} is registered twice")
        parsed = self.kind(kind).parse(payload)
        self.periodic_jobs[name] = Periodic(
            name, kind, every, parsed.model_dump(mode="json", exclude_unset=True), queue
        )

    def unschedule(self, name: str) -> None:
        """Stop scheduling the periodic job ``name`` (its kind stays registered)."""
        if name not in self.periodic_jobs:
            raise ValueError(f"no periodic job {name!r} is registered")
        del self.periodic_jobs[name]

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
