"""Apps start and pause bots through PostgREST; the running runner reacts within a second."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg

from tests.support.bots import create_bot, grant_credits, harness, register_worker
from tests.support.db import User, request_as
from tests.support.waiting import wait_for


async def within(seconds: float, what: str, check: Callable[[], bool]) -> float:
    async def holds() -> bool:
        return check()

    return await wait_for(what, holds, limit_s=seconds, every_s=0.02)


async def listening(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the runner's session has run ``listen tradefleet_bots``."""
    cur = await conn.execute(
        "select count(*) from pg_stat_activity "
        "where datname = current_database() and query = 'listen tradefleet_bots'"
    )
    return await cur.fetchone() == (1,)


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
            await wait_for("the runner to listen", lambda: listening(conn))
            async with request_as(conn, alice) as cur:
                await cur.execute("update public.bots set status = 'running' where id = %s", (bot,))
            await within(1.0, "the bot to run", lambda: bot in h.runner.bots)
            async with request_as(conn, alice) as cur:
                await cur.execute("update public.bots set status = 'paused' where id = %s", (bot,))
            await within(1.0, "the bot to pause", lambda: bot not in h.runner.bots)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
