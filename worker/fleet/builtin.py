"""The fleet's own job kinds: ``fleet.noop`` (benchmarks, smoke tests) and ``fleet.prune``
(daily history cleanup of finished jobs)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.fleet import queue
from worker.fleet.registry import JobContext, Payload, Registry

WEEK_S = 7 * 86400.0


class Settings(BaseSettings):
    """Settings of the fleet's own job kinds."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    jobs_keep_s: float = Field(
        default=WEEK_S, gt=0, description="fleet.prune deletes finished jobs older than this."
    )


class Noop(Payload):
    """``fleet.noop`` takes anything (benchmarks and smoke tests fill it as they like)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Prune(Payload):
    keep_s: float | None = Field(default=None, gt=0)


async def noop(ctx: JobContext[Noop]) -> None:
    return None


def register(registry: Registry, settings: Settings) -> None:
    async def prune(ctx: JobContext[Prune]) -> dict[str, int]:
        keep_s = ctx.payload.keep_s or settings.jobs_keep_s
        return {"deleted": await queue.prune(ctx.pool, keep_s)}

    registry.job("fleet.noop", payload=Noop, timeout_s=60)(noop)
    registry.job("fleet.prune", payload=Prune, max_attempts=3)(prune)
    registry.every("fleet.prune", timedelta(days=1), "fleet.prune")
