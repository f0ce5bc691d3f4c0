"""Job kinds the fleet's end-to-end tests drive, loaded into a real worker with
``WORKER_EXTRA_CAPABILITIES=tests.support.fleet_kinds``.

- ``fleet.record``: notes the run in ``fleet_test_runs`` (made by the test), sleeps, notes the end
- ``fleet.fail``: fails the way its payload says
- ``fleet.lease_probe``: a lease task, so the worker takes part in bot leasing
- ``fleet.tick``: a periodic ``fleet.record`` every ``FLEET_TEST_TICK_S`` seconds, if set
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.errors import Fatal, Retryable
from worker.fleet.leases import LeaseManager
from worker.fleet.registry import JobContext, Payload, Registry

RECORD_START = """
insert into public.fleet_test_runs (job_id, worker_id, attempt, tag)
values (%(job_id)s, %(worker_id)s, %(attempt)s, %(tag)s) returning id
"""
RECORD_FINISH = (
    "update public.fleet_test_runs set finished_at = clock_timestamp() where id = %(id)s"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    fleet_test_tick_s: float | None = Field(
        default=None, gt=0, description="Enqueue the periodic fleet.tick this often."
    )


class Record(Payload):
    tag: str | None = None
    sleep_s: float = Field(default=0.0, ge=0)


class Fail(Payload):
    mode: Literal["retryable", "fatal", "crash"]
    retry_after: float = 0.05


async def record(ctx: JobContext[Record]) -> dict[str, str]:
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(
            RECORD_START,
            {
                "job_id": ctx.job.id,
                "worker_id": ctx.worker_id,
                "attempt": ctx.job.attempts,
                "tag": ctx.payload.tag,
            },
        )
        row = await cur.fetchone()
    assert row is not None
    await asyncio.sleep(ctx.payload.sleep_s)
    async with ctx.pool.connection() as conn:
        await conn.execute(RECORD_FINISH, {"id": row[0]})
    return {"worker_id": ctx.worker_id}


async def fail(ctx: JobContext[Fail]) -> None:
    if ctx.payload.mode == "retryable":
        raise Retryable("exchange busy", retry_after=ctx.payload.retry_after)
    if ctx.payload.mode == "fatal":
        raise Fatal("invalid parameters")
    raise ZeroDivisionError("handler bug")


async def lease_probe(leases: LeaseManager) -> None:
    """Takes part in leasing; the changes are logged by the manager."""
    async for _ in leases.changes():
        pass


def register(registry: Registry, settings: Settings) -> None:
    registry.job("fleet.record", payload=Record)(record)
    registry.job("fleet.fail", payload=Fail, max_attempts=3)(fail)
    registry.lease_task("fleet.lease_probe", lease_probe)
    if settings.fleet_test_tick_s:
        registry.every(
            "fleet.tick",
            timedelta(seconds=settings.fleet_test_tick_s),
            "fleet.record",
            {"tag": "tick"},
        )
