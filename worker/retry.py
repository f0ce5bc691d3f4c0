"""The worker's one retry policy: exponential backoff with a little jitter, honouring a
server's ``retry_after``, built on tenacity. The first attempt, which nearly always
succeeds, runs bare and costs one call (a paper bot places thousands of orders per candle
close through it); tenacity takes over from the first failure.

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

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

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
    # The first try runs bare: it is the hot path (a paper order, a notification) and most
    # calls succeed, so only a failed one pays for tenacity's machinery, which then runs
    # the policy from that failure on (its attempt 1 re-raises it).
    try:
        return await operation()
    except retry_on as error:
        if attempts == 1:
            raise
        failed: list[BaseException] = [error]

    def wait(state: RetryCallState) -> float:
        delay = backoff_delay(
            state.attempt_number, base=base, factor=factor, maximum=maximum, jitter=jitter
        )
        error = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float):
            delay = max(delay, min(float(retry_after), maximum))
        return delay

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s failed (attempt %d of %d), retrying in %.2fs: %s",
            describe,
            state.attempt_number,
            attempts,
            delay,
            error,
            extra={"action": "retry", "attempt": state.attempt_number},
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait,
        retry=retry_if_exception_type(retry_on),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )

    async def call() -> T:
        # tenacity awaits only coroutine functions; ``operation`` may be a lambda.
        if failed:
            raise failed.pop()
        return await operation()

    return await retrying(call)
