"""The fleet's own job kinds: ``fleet.noop`` (benchmarks, smoke tests), ``fleet.prune``
(daily history cleanup) and, with ``TRADEFLEET_TEST_KINDS=1``, kinds the e2e tests drive."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Any

from worker.errors import Fatal, Retryable
from worker.fleet import queue
from worker.fleet.leases import LeaseManager
from worker.fleet.registry import JobContext, Registry

RECORD_START = """
insert into public.fleet_test_runs (job_id, worker_id, attempt, tag)
values (%(job_id)s, %(worker_id)s, %(attempt)s, %(tag)s) returning id
"""
RECORD_FINISH = (
    "update public.fleet_test_runs set finished_at = clock_timestamp() where id = %(id)s"
)


async def noop(ctx: JobContext) -> None:
    return None


async def prune(ctx: JobContext) -> dict[str, int]:
    keep_s = float(ctx.job.payload.get("keep_s", 7 * 86400))
    return {"deleted": await queue.prune(ctx.pool, keep_s)}


async def record(ctx: JobContext) -> dict[str, Any]:
    """Test kind: note the run in ``fleet_test_runs`` (made by the test), sleep, note the end."""
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(
            RECORD_START,
            {
                "job_id": ctx.job.id,
                "worker_id": ctx.worker_id,
                "attempt": ctx.job.attempts,
                "tag": ctx.job.payload.get("tag"),
            },
        )
        row = await cur.fetchone()
    assert row is not None
    await asyncio.sleep(float(ctx.job.payload.get("sleep_s", 0)))
    async with ctx.pool.connection() as conn:
        await conn.execute(RECORD_FINISH, {"id": row[0]})
    return {"worker_id": ctx.worker_id}


async def fail(ctx: JobContext) -> None:
    """Test kind: fail the way the payload says."""
    mode = ctx.job.payload.get("mode")
    if mode == "retryable":
        raise Retryable(
            "exchange busy", retry_after=float(ctx.job.payload.get("retry_after", 0.05))
        )
    if mode == "fatal":
        raise Fatal("invalid parameters")
    raise ZeroDivisionError("handler bug")


async def lease_probe(leases: LeaseManager) -> None:
    """Test lease task: takes part in leasing; the changes are logged by the manager."""
    async for _ in leases.changes():
        pass


def register(registry: Registry) -> None:
    registry.job("fleet.noop", timeout_s=60)(noop)
    registry.job("fleet.prune", max_attempts=3)(prune)
    registry.every("fleet.prune", timedelta(days=1), "fleet.prune")
    if os.environ.get("TRADEFLEET_TEST_KINDS", "").lower() in ("1", "true", "yes"):
        registry.job("fleet.record")(record)
        registry.job("fleet.fail", max_attempts=3)(fail)
        registry.lease_task("fleet.lease_probe", lease_probe)
        tick = os.environ.get("TRADEFLEET_TEST_TICK_S")
        if tick:
            registry.every(
                "fleet.tick", timedelta(seconds=float(tick)), "fleet.record", {"tag": "tick"}
            )
