"""The durable job queue: thin async wrappers over the SQL functions of
``supabase/migrations/20261122010000_fleet.sql``.

Every rule (claim order, visibility timeout, backoff, dead-lettering) lives in SQL; this
module only names the calls so capabilities and the worker share one spelling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

NOTIFY_CHANNEL = "tradefleet_jobs"

ENQUEUE = """
select public.enqueue_job(%(kind)s, %(payload)s, %(queue)s, %(run_at)s, %(priority)s,
                          %(max_attempts)s, %(idempotency_key)s) as id
"""
ENQUEUE_MANY = """
select public.enqueue_jobs(%(kind)s, %(payloads)s::jsonb[], %(queue)s, %(priority)s, %(max_attempts)s) as id
"""
CLAIM = """
select id, queue, kind, payload, attempts, max_attempts
from public.claim_jobs(%(worker_id)s, %(queues)s, %(limit)s, %(lock_s)s, %(kinds)s)
"""
COMPLETE = "select public.complete_jobs(%(worker_id)s, %(ids)s, %(results)s::jsonb[]) as id"
FAIL = """
select public.fail_job(%(worker_id)s, %(job_id)s, %(error)s, %(retry)s, %(retry_after_s)s,
                       %(backoff_base_s)s) as status
"""
RELEASE = "select public.release_jobs(%(worker_id)s, %(ids)s) as n"
EXTEND = "select public.extend_job_lock(%(worker_id)s, %(job_id)s, %(lock_s)s) as ok"
RECLAIM = "select public.reclaim_expired_jobs() as n"


@dataclass(frozen=True)
class Job:
    """A claimed row of ``public.jobs``; ``payload`` is the stored JSON, unvalidated."""

    id: int
    queue: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


async def enqueue(
    pool: AsyncConnectionPool,
    kind: str,
    payload: Mapping[str, Any] | None = None,
    *,
    queue: str = "default",
    run_at: datetime | None = None,
    priority: int = 0,
    max_attempts: int = 5,
    idempotency_key: str | None = None,
) -> int:
    """Enqueue one job and wake the workers of ``queue``; returns its id.

    The payload is stored as given: :meth:`worker.fleet.registry.Registry.enqueue`
    validates it against the kind's model first.

    With an ``idempotency_key`` the same key enqueued twice yields one job (the first id).
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            ENQUEUE,
            {
                "kind": kind,
                "payload": Jsonb(dict(payload or {})),
                "queue": queue,
                "run_at": run_at,
                "priority": priority,
                "max_attempts": max_attempts,
                "idempotency_key": idempotency_key,
            },
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def enqueue_many(
    pool: AsyncConnectionPool,
    kind: str,
    payloads: Sequence[dict[str, Any]],
    *,
    queue: str = "default",
    priority: int = 0,
    max_attempts: int = 5,
) -> list[int]:
    """Enqueue many jobs of one kind in one statement and one notification."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            ENQUEUE_MANY,
            {
                "kind": kind,
                "payloads": [Jsonb(p) for p in payloads],
                "queue": queue,
                "priority": priority,
                "max_attempts": max_attempts,
            },
        )
        return [int(r[0]) for r in await cur.fetchall()]


async def claim(
    pool: AsyncConnectionPool,
    worker_id: str,
    queues: Sequence[str],
    limit: int,
    *,
    lock_s: float = 30.0,
    kinds: Sequence[str] | None = None,
) -> list[Job]:
    """Claim up to ``limit`` ready jobs (``FOR UPDATE SKIP LOCKED``) locked for ``lock_s``."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            CLAIM,
            {
                "worker_id": worker_id,
                "queues": list(queues),
                "limit": limit,
                "lock_s": lock_s,
                "kinds": list(kinds) if kinds is not None else None,
            },
        )
        rows = await cur.fetchall()
    return [
        Job(r["id"], r["queue"], r["kind"], r["payload"], r["attempts"], r["max_attempts"])
        for r in rows
    ]


async def complete(
    pool: AsyncConnectionPool,
    worker_id: str,
    ids: Sequence[int],
    results: Sequence[Any] | None = None,
) -> set[int]:
    """Mark jobs succeeded; returns the ids completed (a job whose lock was lost is not)."""
    res = [Jsonb(r) if r is not None else None for r in results] if results is not None else None
    async with pool.connection() as conn:
        cur = await conn.execute(
            COMPLETE, {"worker_id": worker_id, "ids": list(ids), "results": res}
        )
        return {int(r[0]) for r in await cur.fetchall()}


async def fail(
    pool: AsyncConnectionPool,
    worker_id: str,
    job_id: int,
    error: str,
    *,
    retry: bool = True,
    retry_after_s: float | None = None,
    backoff_base_s: float = 2.0,
) -> str | None:
    """Record a failure: back to ``queued`` after backoff, or ``dead``; returns the new status."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            FAIL,
            {
                "worker_id": worker_id,
                "job_id": job_id,
                "error": error,
                "retry": retry,
                "retry_after_s": retry_after_s,
                "backoff_base_s": backoff_base_s,
            },
        )
        row = await cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])


async def release(pool: AsyncConnectionPool, worker_id: str, ids: Sequence[int]) -> int:
    """Give claimed-but-unstarted (or interrupted) jobs back to the queue untouched."""
    async with pool.connection() as conn:
        cur = await conn.execute(RELEASE, {"worker_id": worker_id, "ids": list(ids)})
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def extend_lock(
    pool: AsyncConnectionPool, worker_id: str, job_id: int, lock_s: float
) -> bool:
    """Push one running job's visibility timeout ``lock_s`` into the future."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            EXTEND, {"worker_id": worker_id, "job_id": job_id, "lock_s": lock_s}
        )
        row = await cur.fetchone()
    return bool(row and row[0])


async def reclaim_expired(pool: AsyncConnectionPool) -> int:
    """Requeue running jobs whose lock expired (their worker crashed); returns how many."""
    async with pool.connection() as conn:
        cur = await conn.execute(RECLAIM)
        row = await cur.fetchone()
    return int(row[0]) if row else 0
