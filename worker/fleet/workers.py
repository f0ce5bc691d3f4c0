"""Worker registration, heartbeat and death: wrappers over the SQL of
``supabase/migrations/20261122010000_fleet.sql``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

REGISTER = """
select public.register_worker(%(name)s, %(host)s, %(pid)s, %(version)s, %(queues)s,
                              %(capacity)s, %(metadata)s)::text as id
"""
HEARTBEAT = (
    "select public.worker_heartbeat(%(worker_id)s, %(lock_s)s, %(job_ids)s::bigint[]) as status"
)
SET_STATUS = "select public.set_worker_status(%(worker_id)s, %(status)s)"
MARK_DEAD = "select public.mark_dead_workers(%(stale_s)s) as n"


async def register(
    pool: AsyncConnectionPool,
    *,
    name: str,
    host: str,
    pid: int,
    version: str,
    queues: Sequence[str],
    capacity: int,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Insert this worker's row in ``public.workers``; returns its id."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            REGISTER,
            {
                "name": name,
                "host": host,
                "pid": pid,
                "version": version,
                "queues": list(queues),
                "capacity": capacity,
                "metadata": Jsonb(metadata or {}),
            },
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row[0])


async def heartbeat(
    pool: AsyncConnectionPool, worker_id: str, lock_s: float, job_ids: Sequence[int] = ()
) -> str | None:
    """Stamp the worker alive and extend the locks of ``job_ids`` (the jobs it still runs or
    reports); returns its status."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            HEARTBEAT, {"worker_id": worker_id, "lock_s": lock_s, "job_ids": list(job_ids)}
        )
        row = await cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])


async def set_status(pool: AsyncConnectionPool, worker_id: str, status: str) -> None:
    """``draining`` or ``stopped`` (which requeues its jobs and frees its leases)."""
    async with pool.connection() as conn:
        await conn.execute(SET_STATUS, {"worker_id": worker_id, "status": status})


async def mark_dead(pool: AsyncConnectionPool, stale_s: float) -> int:
    """Declare workers silent for ``stale_s`` dead; their jobs and bots move on at once."""
    async with pool.connection() as conn:
        cur = await conn.execute(MARK_DEAD, {"stale_s": stale_s})
        row = await cur.fetchone()
    return int(row[0]) if row else 0
