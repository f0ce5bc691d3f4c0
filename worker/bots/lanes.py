"""Live bots' exchange calls of one candle close, run concurrently and bounded.

Within a close, each live bot's work (polling its protective orders, exits, its entry and
the stop placed with it) is a task of its own, so the HTTP round trips of different bots
overlap instead of adding up. Two bounds hold: at most ``per_account`` tasks at once per
exchange account (bots on one key share a client and the exchange's rate limit), and at
most ``total`` across the worker.

What stays as it was:

- One bot's calls run in order: one task per bot per phase, and a phase (the step, then
  the entries placed after the credit hold) starts only when the previous one finished
  for every bot.
- Results come back in the order the jobs were given, whichever task finished first, so
  the credit holds, the persisted rows and the logs are those of a run one bot after
  another: each bot's orders and trades depend only on its own calls.
- Paper bots (no network) run inline, in order, as before.
- A failure that aborts the step (the database, a failed hold) is raised only after every
  task of the phase finished: nothing still runs for a bot that is thrown away and
  reloaded.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from .model import BotState

T = TypeVar("T")


class LiveLanes:
    """Bounds on the live exchange calls running at once (see the module docstring)."""

    def __init__(self, total: int = 64, per_account: int = 4) -> None:
        if total < 1 or per_account < 1:
            raise ValueError("live concurrency bounds must be at least 1")
        self.total = total
        self.per_account = per_account
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
        slots: list[asyncio.Task[T] | T] = []
        tasks: list[asyncio.Task[T]] = []
        first_error: BaseException | None = None
        try:
            for bot, job in jobs:
                if bot.config.is_paper:
                    try:
                        slots.append(await job())
                    except Exception as e:
                        first_error = first_error or e
                        break
                else:
                    task = asyncio.create_task(self._bounded(bot, job))
                    tasks.append(task)
                    slots.append(task)
            if tasks:
                await asyncio.wait(tasks)
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        results: list[T] = []
        for slot in slots:
            if isinstance(slot, asyncio.Task):
                error = slot.exception()
                if error is not None:
                    raise error
                results.append(slot.result())
            else:
                results.append(slot)
        if first_error is not None:
            raise first_error
        return results
