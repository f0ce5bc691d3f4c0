"""Retry a coroutine on ``Retryable`` with exponential backoff."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from worker.errors import Retryable

T = TypeVar("T")

log = logging.getLogger(__name__)


def backoff_delay(
    attempt: int,
    *,
    base: float = 0.5,
    factor: float = 2.0,
    maximum: float = 30.0,
    jitter: float = 0.1,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry number ``attempt`` (1-based): ``base * factor**(attempt-1)``, capped.

    A little jitter (a fraction of the delay) keeps many bots that failed together from
    hitting the exchange together again.
    """
    delay = min(maximum, base * factor ** (attempt - 1))
    if jitter:
        delay += delay * jitter * (rng or random).random()
    return float(min(maximum, delay))


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    attempts: int = 5,
    base: float = 0.5,
    factor: float = 2.0,
    maximum: float = 30.0,
    jitter: float = 0.1,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    describe: str = "exchange call",
) -> T:
    """Run ``operation()``; on ``Retryable`` wait and try again, up to ``attempts`` tries.

    The error's ``retry_after`` (e.g. from a 429) is honoured when it is longer than the
    backoff. After the last attempt the ``Retryable`` propagates, so the job queue can
    reschedule the whole unit of work. ``Fatal`` and everything else propagate at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except Retryable as e:
            if attempt >= attempts:
                raise
            delay = backoff_delay(attempt, base=base, factor=factor, maximum=maximum, jitter=jitter)
            if e.retry_after is not None:
                delay = max(delay, min(e.retry_after, maximum))
            log.warning(
                "%s failed (attempt %d of %d), retrying in %.2fs: %s",
                describe,
                attempt,
                attempts,
                delay,
                e,
                extra={"action": "retry", "attempt": attempt},
            )
            await sleep(delay)
