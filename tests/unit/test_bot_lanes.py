"""The live bots' exchange calls of a close overlap the paper bots' steps (``lanes``): a live
bot's requests go out before the paper bots step and its answers are followed by its next
request while they step, and the results still come back in the order of the bots."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import cast

import pytest

from worker.bots.lanes import LiveLanes
from worker.bots.model import BotState


def bot(n: int, *, paper: bool) -> BotState:
    config = SimpleNamespace(is_paper=paper, exchange="binance", credential_id=None, id=f"bot {n}")
    return cast(BotState, SimpleNamespace(config=config))


async def test_a_live_bots_round_trips_go_on_while_the_paper_bots_step() -> None:
    loop = asyncio.get_running_loop()
    answers: list[asyncio.Future[None]] = [loop.create_future() for _ in range(2)]
    sent: list[int] = []  # the live bot's requests, in order
    seen: list[int] = []  # how many of them each paper step saw sent

    async def live() -> str:
        for i, answer in enumerate(answers):
            sent.append(i)
            await answer  # the exchange's answer
        return "live"

    def paper(i: int) -> Callable[[], Awaitable[str]]:
        async def step() -> str:
            seen.append(len(sent))
            if i == 2:
                answers[0].set_result(None)  # the first answer arrives during this step
            if i == 4:
                answers[1].set_result(None)
            return f"paper {i}"

        return step

    jobs: list[tuple[BotState, Callable[[], Awaitable[str]]]] = [
        (bot(i, paper=True), paper(i)) for i in range(5)
    ]
    jobs.insert(2, (bot(9, paper=False), live))
    got = await LiveLanes(yield_s=0).run(jobs)

    # the first request was out before the first paper step; the second followed the
    # first answer before the paper steps ended
    assert seen == [1, 1, 1, 2, 2]
    assert got == ["paper 0", "paper 1", "live", "paper 2", "paper 3", "paper 4"]


async def test_a_failed_paper_step_is_raised_once_the_live_bots_work_is_done() -> None:
    done: list[str] = []

    async def live() -> str:
        for _ in range(3):
            await asyncio.sleep(0)
        done.append("live")
        return "live"

    async def fails() -> str:
        raise RuntimeError("the database went away")

    async def never() -> str:
        done.append("paper after the failure")
        return "paper"

    jobs: list[tuple[BotState, Callable[[], Awaitable[str]]]] = [
        (bot(0, paper=True), fails),
        (bot(1, paper=False), live),
        (bot(2, paper=True), never),
    ]
    with pytest.raises(RuntimeError, match="went away"):
        await LiveLanes(yield_s=0).run(jobs)
    assert done == ["live"]
