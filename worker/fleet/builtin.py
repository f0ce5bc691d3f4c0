"""The fleet's own job kind ``fleet.noop`` (benchmarks, smoke tests); the fleet's history
cleanup ``fleet.prune`` lives in :mod:`worker.fleet.retention`."""

from __future__ import annotations

from pydantic import ConfigDict

from worker.fleet.registry import JobContext, Payload, Registry


class Noop(Payload):
    """``fleet.noop`` takes anything (benchmarks and smoke tests fill it as they like)."""

    model_config = ConfigDict(extra="allow", frozen=True)


async def noop(ctx: JobContext[Noop]) -> None:
    return None


def register(registry: Registry) -> None:
    registry.job("fleet.noop", payload=Noop, timeout_s=60)(noop)
