"""The last request wins (local Binance fake): a live bot paused while its close works waits
for its worker (``test_position_requests_pause``); set running meanwhile, it runs on. The
race both ways: the owner's pause and running both between two passes of the worker (the
close works on, the bot decides again), and the worker's settling write committing between
them (the close was cancelled and the stop rests again, but the bot is not paused)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.test_position_requests import one
from tests.integration.test_position_requests_pause import _resting, limit_close_resting
from tests.support.bots import Harness
from tests.support.db import User, request_as
from worker.bots import requests as requests_module


async def _set(conn: psycopg.AsyncConnection[Any], user: User, bot: str, status: str) -> str:
    async with request_as(conn, user, aal="aal2") as cur:  # a live bot runs with aal2
        await cur.execute(
            "update public.bots set status = %s where id = %s returning status", (status, bot)
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row["status"])


async def _race(
    conn: psycopg.AsyncConnection[Any],
    user: User,
    h: Harness,
    bot: str,
    race: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The owner's `running` after a stop or pause waiting for the worker: before the
    worker's pass, or committing inside it (after the worker acted, before its write)."""
    if race == "before_the_pass":
        assert await _set(conn, user, bot, "running") == "running"
    else:
        persist = requests_module.persist_steps

        async def owner_first(*args: Any, **kwargs: Any) -> Any:
            assert await _set(conn, user, bot, "running") == "running"
            return await persist(*args, **kwargs)

        monkeypatch.setattr(requests_module, "persist_steps", owner_first)
    await h.runner.requests.run()
    monkeypatch.undo()
    await h.runner.requests.run()  # the next pass: the bot decides again
    await h.sync()
    state = h.runner.bots.get(bot)
    assert state is not None, "still leased: the bot runs"
    assert not state.halted
    await h.candles(1)


async def _logs(conn: psycopg.AsyncConnection[Any], bot: str, action: str) -> list[str]:
    async with conn.cursor() as cur:
        await cur.execute(
            "select message from public.bot_logs where bot_id = %s"
            " and context ->> 'action' = %s order by created_at",
            (bot, action),
        )
        return [str(r[0]) for r in await cur.fetchall()]


async def _overrides(conn: psycopg.AsyncConnection[Any], bot: str) -> int:
    (n,) = await one(
        conn,
        "select count(*) from public.bot_logs where bot_id = %s"
        " and context ->> 'action' = 'pause_overridden'",
        bot,
    )
    return int(n)


@pytest.mark.parametrize("race", ["before_the_pass", "during_the_pass"])
async def test_setting_a_bot_running_cancels_the_pause_waiting_for_its_worker(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    race: str,
) -> None:
    alice = users["alice"]
    async with limit_close_resting(conn, alice, db_url, tmp_path) as lc:
        bot, fake, h, close = lc.bot, lc.fake, lc.h, lc.close
        assert [o["type"] for o in _resting(fake)] == ["LIMIT"]
        assert await _set(conn, alice, bot, "paused") == "running"  # the pause waits
        await _race(conn, alice, h, bot, race, monkeypatch)

    status, reason = await one(
        conn, "select status, status_reason from public.bots where id = %s", bot
    )
    assert (status, reason) == ("running", None)
    assert await _overrides(conn, bot) == 1
    req_status, req_reason, stop_after = await one(
        conn,
        "select status, status_reason, stop_after from public.position_requests where id = %s",
        close["id"],
    )
    if race == "before_the_pass":
        # the close works on, untouched: the limit sell rests on the exchange
        assert (req_status, stop_after) == ("working", False)
        assert [o["type"] for o in _resting(fake)] == ["LIMIT"]
    else:
        # the worker had cancelled the close and rested the stop: the position is protected,
        # and the request says the bot was not paused
        assert req_status == "cancelled"
        assert req_reason == (
            "the close was cancelled, the position is kept;"
            " the bot was set running again before its pause settled: it runs on"
        )
        assert [o["type"] for o in _resting(fake)] == ["STOP_LOSS_LIMIT"]
        [log] = await _logs(conn, bot, "settle_overridden")
        assert log == "the bot was set running again before its pause settled: it runs on"
    assert await _logs(conn, bot, "bot_settled") == []
    (open_trades,) = await one(
        conn, "select count(*) from public.trades where bot_id = %s and status = 'open'", bot
    )
    assert open_trades == 1


async def test_a_pause_settled_before_the_owner_sets_running_is_a_plain_resume(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    """The worker's write first: the bot pauses, and the owner's running resumes it."""
    alice = users["alice"]
    async with limit_close_resting(conn, alice, db_url, tmp_path) as lc:
        bot, fake, h = lc.bot, lc.fake, lc.h
        assert await _set(conn, alice, bot, "paused") == "running"
        await h.runner.requests.run()
        (status,) = await one(conn, "select status from public.bots where id = %s", bot)
        assert status == "paused"
        assert await _set(conn, alice, bot, "running") == "running"
        await h.sync()
        assert bot in h.runner.bots
    assert await _overrides(conn, bot) == 0
    assert [o["type"] for o in _resting(fake)] == ["STOP_LOSS_LIMIT"]
    assert await _logs(conn, bot, "bot_settled") == ["paused once its working close settled"]
