"""Live bots' exchange calls of one candle close, run concurrently and bounded.

Within a close, each live bot's work (polling its protective orders, exits, its entry and
the stop placed with it) is a task of its own, so the HTTP round trips of different bots
overlap instead of adding up. Two bounds hold: at most ``per_account`` tasks at once per
exchange account (bots on one key share a client and the exchange's rate limit), and at
most ``total`` across the worker. The live tasks are started before the paper bots step,
and the paper steps hand the event loop a turn every ``YIELD_S`` seconds while live tasks
run: the live requests are in flight, and each answer is read and followed by the bot's
next request, while paper bots step, instead of waiting until the last paper bot stepped.

What stays as it was:

- One bot's calls run in order: one task per bot per phase, and a phase (the step, then
  the entries placed after the credit hold) starts only when the previous one finished
  for every bot.
- Results come back in the order the jobs were given, whichever task finished first, so
  the credit holds, the persisted rows and the logs are those of a run one bot after
  another: each bot's orders and trades depend only on its own calls.
- Paper bots (no network) run inline, in order.
- A failure that aborts the step (the database, a failed hold) is raised only after every
  task of the phase finished: nothing still runs for a bot that is thrown away and
  reloaded.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from .model import BotState

T = TypeVar("T")
YIELD_S = 0.002
"""Paper steps run at most about this long before the event loop gets a turn (for the live
bots' requests and answers) while live tasks are running."""


class LiveLanes:
    """Bounds on the live exchange calls running at once (see the module docstring)."""

    def __init__(self, total: int = 64, per_account: int = 4, yield_s: float = YIELD_S) -> None:
        if total < 1 or per_account < 1:
            raise ValueError("live concurrency bounds must be at least 1")
        self.total = total
        self.per_account = per_account
        self.yield_s = yield_s
        self._total = asyncio.Semaphore(total)
        self._accounts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_account)
        )

    @staticmethod
    def account(bot: BotState) -> str:
        """The exchange account a bot trades: its key (bots without one: each its own)."""
        cfg = bot.config
        return f"{cfg.exchange}:{cfg.credential_id or cfg.id}"

    async def _bounded(self, bot: BotState, job: Callable[[], Awaitable[T]]) -> T:
        # The account first: a task waiting for its account holds no global slot.
        async with self._accounts[self.account(bot)], self._total:
            return await job()

    async def run(self, jobs: Sequence[tuple[BotState, Callable[[], Awaitable[T]]]]) -> list[T]:
        """Run each job (a bot and its work); live bots' concurrently, paper bots' inline.
        Returns the results in the order of ``jobs``; the first error (in that order) is
        raised once every job has finished."""
        slots: list[asyncio.Task[T] | None] = [
            None if bot.config.is_paper else asyncio.create_task(self._bounded(bot, job))
            for bot, job in jobs
        ]
        tasks = [t for t in slots if t is not None]
        paper: dict[int, T] = {}
        first_error: BaseException | None = None
        try:
            if tasks:
                await asyncio.sleep(0)  # the live tasks send their first requests
            turn = time.perf_counter()
            for i, (bot, job) in enumerate(jobs):
                if not bot.config.is_paper:
                    continue
                try:
                    paper[i] = await job()
                except Exception as e:
                    first_error = e
                    break
                if tasks and time.perf_counter() - turn >= self.yield_s:
                    await asyncio.sleep(0)  # the live bots' answers read, next requests sent
                    turn = time.perf_counter()
            if tasks:
                await asyncio.wait(tasks)
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        results: list[T] = []
        for i, slot in enumerate(slots):
            if slot is not None:
                error = slot.exception()
                if error is not None:
                    raise error
                results.append(slot.result())
            elif i in paper:
                results.append(paper[i])
            else:  # a paper job not run: an earlier paper job failed
                break
        if first_error is not None:
            raise first_error
        return results
