"""Coalescing of concurrent calls: one batch for what arrives while a call is in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from worker.holdings.batching import Coalescer


async def test_calls_arriving_during_a_batch_go_together_in_the_next_and_failures_stay_per_item() -> (
    None
):
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def run_many(items: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(items))
        if len(batches) == 1:
            await release.wait()
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]

    c: Coalescer[int, int] = Coalescer(run_many)
    first = asyncio.create_task(c.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert batches == [[1]]  # a lone call does not wait for company
    rest = [asyncio.create_task(c.submit(i)) for i in (2, -3, 4)]
    await asyncio.sleep(0)
    release.set()
    assert await first == 10
    assert [await rest[0], await rest[2]] == [20, 40]
    with pytest.raises(ValueError, match="bad -3"):
        await rest[1]
    assert batches == [[1], [2, -3, 4]]


async def test_a_failing_batch_fails_each_of_its_callers() -> None:
    async def run_many(items: Sequence[int]) -> list[int | BaseException]:
        raise ConnectionError("database went away")

    c: Coalescer[int, int] = Coalescer(run_many)
    results = await asyncio.gather(c.submit(1), c.submit(2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await asyncio.gather(c.submit(3), return_exceptions=True)  # and it keeps working
