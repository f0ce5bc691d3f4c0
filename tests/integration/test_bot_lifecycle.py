"""Apps start and pause bots through PostgREST; the running runner reacts within a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psycopg

from tests.support.bots import create_bot, grant_credits, harness, register_worker
from tests.support.db import User, request_as


async def within(seconds: float, check: Callable[[], bool]) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not within {seconds}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_pausing_and_starting_a_bot_takes_effect_within_a_second(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "10")
    bot = await create_bot(conn, alice, status="stopped")
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.leases.sync()
        task = asyncio.create_task(h.runner.run())
        try:
            await asyncio.sleep(0.3)  # the runner is listening
            async with request_as(conn, alice) as cur:
                await cur.execute("update public.bots set status = 'running' where id = %s", (bot,))
            await within(1.0, lambda: bot in h.runner.bots)
            async with request_as(conn, alice) as cur:
                await cur.execute("update public.bots set status = 'paused' where id = %s", (bot,))
            await within(1.0, lambda: bot not in h.runner.bots)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
