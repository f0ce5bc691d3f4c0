"""The worker's one retry policy: which errors are retried, how long it waits, when it stops."""

from __future__ import annotations

import pytest

from worker.errors import Fatal, Retryable
from worker.retry import backoff_delay, retry


async def test_retry_gives_up_after_the_last_attempt_and_fatal_is_not_retried() -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        raise Retryable("busy")

    async def no_sleep(_: float) -> None:
        return None

    with pytest.raises(Retryable):
        await retry(flaky, attempts=3, sleep=no_sleep)
    assert calls == 3

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise Fatal("bad key")

    calls = 0
    with pytest.raises(Fatal):
        await retry(broken, sleep=no_sleep)
    assert calls == 1


def test_backoff_grows_exponentially_and_is_capped() -> None:
    delays = [backoff_delay(n, base=0.5, jitter=0) for n in range(1, 8)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] == 30.0  # 0.5 * 2**6 = 32 is capped


async def test_a_server_asking_for_longer_than_the_backoff_is_waited_out_as_asked() -> None:
    delays: list[float] = []
    answers = iter([Retryable("rate limited", retry_after=7.0), Retryable("busy"), None])

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    async def call() -> str:
        error = next(answers)
        if error is not None:
            raise error
        return "done"

    assert await retry(call, base=1.0, jitter=0, maximum=5.0, sleep=sleep) == "done"
    assert delays == [5.0, 2.0]  # 7 s asked, capped at the maximum; then the plain backoff


async def test_only_the_named_errors_are_retried() -> None:
    class Busy(Retryable):
        pass

    calls: list[str] = []

    async def call() -> None:
        calls.append("call")
        raise Retryable("a 5xx: left to the job queue")

    async def no_sleep(_: float) -> None:
        raise AssertionError("nothing to wait for")

    with pytest.raises(Retryable, match="left to the job queue"):
        await retry(call, retry_on=Busy, sleep=no_sleep)
    assert calls == ["call"]


def test_jitter_only_lengthens_the_delay_and_never_past_the_cap() -> None:
    import random

    rng = random.Random(7)
    for attempt in range(1, 10):
        plain = backoff_delay(attempt, jitter=0)
        jittered = backoff_delay(attempt, jitter=0.1, rng=rng)
        assert plain <= jittered <= min(30.0, plain * 1.1)
