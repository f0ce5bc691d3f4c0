"""Owners' requests still working when their bot stops running: they end with a named
reason instead of staying ``working`` until the bot runs again, while a close-and-stop the
worker finishes ends ``done`` and a stop keeping the position cancels the working close."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.integration.test_position_requests import one, paper_bot, rpc
from tests.support.bots import harness, register_worker
from tests.support.db import User


async def _working_close(conn: psycopg.AsyncConnection[Any], user: User, h: Any, bot: str) -> str:
    """A limit close far above the market: it rests, the request stays working."""
    await rpc(conn, user, "manual_trade(%s, true, 'buy', null, 0.1)", bot)
    await h.runner.requests.run()
    (trade,) = await one(
        conn, "select id from public.trades where bot_id = %s and status = 'open'", bot
    )
    close = await rpc(conn, user, "close_position(%s, true, 'limit', 9, 600)", trade)
    await h.runner.requests.run()
    (status,) = await one(
        conn, "select status from public.position_requests where id = %s", close["id"]
    )
    assert status == "working"
    return str(close["id"])


async def test_a_working_request_ends_with_the_reason_when_its_bot_stops_or_pauses(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    stopped = await paper_bot(conn, alice, name="stopped")
    paused = await paper_bot(conn, alice, name="paused")
    closing = await paper_bot(conn, alice, name="closing")
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(2)
        requests = {bot: await _working_close(conn, alice, h, bot) for bot in (stopped, paused)}
        await rpc(conn, alice, "manual_trade(%s, true, 'buy', null, 0.1)", closing)
        await h.runner.requests.run()

        await rpc(conn, alice, "stop_bot(%s, 'keep')", stopped)
        await conn.execute("update public.bots set status = 'paused' where id = %s", (paused,))
        close = await rpc(conn, alice, "stop_bot(%s, 'close')", closing)
        await h.runner.requests.run()
        await h.sync()
        await h.candles(1)
    ended = {
        paused: ("failed", "the bot stopped running (paused) before the request finished"),
        # Stopped keeping the position: the worker cancels the close before the bot stops.
        stopped: ("cancelled", "the bot was stopped keeping the position: the close was cancelled"),
    }
    for bot, want in ended.items():
        status, reason, completed = await one(
            conn,
            "select status, status_reason, completed_at from public.position_requests"
            " where id = %s",
            requests[bot],
        )
        assert (status, reason) == want
        assert completed is not None
    (stopped_status,) = await one(conn, "select status from public.bots where id = %s", stopped)
    assert stopped_status == "stopped"
    (status, reason) = await one(
        conn,
        "select status, status_reason from public.position_requests"
        " where bot_id = %s and kind = 'close'",
        closing,
    )
    assert (status, reason) == ("done", "closed at market")
    assert close["stop_positions"] == "close"
    (bot_status,) = await one(conn, "select status from public.bots where id = %s", closing)
    assert bot_status == "stopped"
