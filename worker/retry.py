"""The worker's one retry policy: exponential backoff with a little jitter, honouring a
server's ``retry_after``. A plain loop: the first attempt, which nearly always succeeds,
costs one call (a paper bot places thousands of orders per candle close through it).

Exchanges, brokerage providers and notification channels all retry through
:func:`retry`; what counts as worth another try is the exception type they raise
(``Retryable`` by default). After the last attempt the error propagates, so the job queue
can reschedule the whole unit of work.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from worker.errors import Retryable

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

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

    A little jitter (a fraction of the delay) keeps many callers that failed together from
    hitting the same server together again.
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
    sleep: Sleep = asyncio.sleep,
    describe: str = "exchange call",
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Retryable,
) -> T:
    """Run ``operation()``; on ``retry_on`` wait and try again, up to ``attempts`` tries.

    An error's ``retry_after`` (e.g. from a 429) is honoured when it is longer than the
    backoff (never past ``maximum``). After the last attempt the error propagates;
    anything else (``Fatal``, bugs) propagates at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    attempt = 1
    while True:
        try:
            return await operation()
        except retry_on as error:
            if attempt >= attempts:
                raise
            delay = backoff_delay(attempt, base=base, factor=factor, maximum=maximum, jitter=jitter)
            retry_after = getattr(error, "retry_after", None)
            if isinstance(retry_after, int | float):
                delay = max(delay, min(float(retry_after), maximum))
            log.warning(
                "%s failed (attempt %d of %d), retrying in %.2fs: %s",
                describe,
                attempt,
                attempts,
                delay,
                error,
                extra={"action": "retry", "attempt": attempt},
            )
            await sleep(delay)
            attempt += 1
