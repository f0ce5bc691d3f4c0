"""In-process fleet workers for the integration tests: settings, a running worker, and
waiting on a job's status."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.support.waiting import wait_for
from worker.fleet.registry import Job, Registry
from worker.fleet.runtime import Worker
from worker.fleet.settings import FleetSettings


def fleet_settings(db_url: str, **over: Any) -> FleetSettings:
    """Fast settings for a worker on the test's database (no ``.env`` is read)."""
    base: dict[str, Any] = {
        "database_url": db_url,
        "worker_name": "in-process",
        "poll_interval_s": 0.3,
        "lease_ttl_s": 3,
        "sweep_interval_s": 0.5,
        "job_lock_s": 5,
        "drain_timeout_s": 1,
        "job_backoff_base_s": 0.05,
    }
    return FleetSettings(_env_file=None, **{**base, **over})  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def worker_running(w: Worker, stop_within_s: float = 10.0) -> AsyncIterator[Worker]:
    """Run ``w`` for the block, then stop it and check it ends cleanly."""
    task = asyncio.create_task(w.run())
    try:
        yield w
    finally:
        w.request_stop()
        async with asyncio.timeout(stop_within_s):
            assert await task == 0


async def job_status(
    conn: psycopg.AsyncConnection[Any], job_id: int, status: str, limit_s: float = 5.0
) -> float:
    """Wait until job ``job_id`` has ``status``; returns the seconds it took."""

    async def reached() -> bool:
        cur = await conn.execute("select status from jobs where id = %s", (job_id,))
        return await cur.fetchone() == (status,)

    return await wait_for(f"job {job_id} to be {status}", reached, limit_s=limit_s, every_s=0.02)


async def run_queued_jobs(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, reg: Registry, prefix: str
) -> list[Any]:
    """Run queued jobs of kinds starting with ``prefix`` the way the fleet would, oldest
    first, until none is left; returns their results."""
    results: list[Any] = []
    while True:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "select id, queue, kind, payload, attempts, max_attempts from jobs "
                "where status = 'queued' and kind like %s order by id limit 1",
                (prefix + "%",),
            )
            row = await cur.fetchone()
        if row is None:
            return results
        ctx = reg.context(Job(**row), pool, "test")
        results.append(await reg.kinds[row["kind"]].handler(ctx))
        await conn.execute("update jobs set status = 'succeeded' where id = %s", (row["id"],))
