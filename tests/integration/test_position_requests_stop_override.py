"""The last request wins for stops too (local Binance fake): an owner who stops a live bot
(closing its position, or keeping it while a close of it works) and sets it running before
its worker settled the stop cancels the stop; the close works on and the bot runs on. The
race both ways: the owner's two updates between two passes of the worker, and the owner's
`running` committing inside the worker's pass (after it acted, before its write). What the
user reads on the request and the bot says what happened."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fakes.fake_binance import FakeBinance
from tests.integration.test_bot_live import KEYS, btc_usdt_candles, live_bot
from tests.integration.test_position_requests import QUIET, fake_factory, one, rpc
from tests.integration.test_position_requests_override import _logs, _race, _set
from tests.integration.test_position_requests_pause import _holding, _resting
from tests.support.bots import Harness, harness, register_worker
from tests.support.db import User

RUNS_ON = "the bot was set running again before its stop settled: it runs on"


@contextlib.asynccontextmanager
async def _live_holding(
    conn: psycopg.AsyncConnection[Any], user: User, db_url: str, tmp_path: Path
) -> AsyncIterator[tuple[str, FakeBinance, Harness, str]]:
    """A live bot holding 0.01 BTC, its stop resting on the exchange."""
    bot = await live_bot(conn, user, stop_loss="20", **QUIET)
    async with FakeBinance() as fake:
        worker = await register_worker(conn)
        async with harness(
            db_url,
            worker,
            candles=btc_usdt_candles(tmp_path),
            keyring=KEYS,
            live_exchange=fake_factory(fake),
        ) as h:
            trade = await _holding(conn, user, h, bot)
            yield bot, fake, h, trade


@pytest.mark.parametrize("race", ["before_the_pass", "during_the_pass"])
async def test_running_cancels_a_stop_closing_the_position_the_close_works_on(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    race: str,
) -> None:
    alice = users["alice"]
    async with _live_holding(conn, alice, db_url, tmp_path) as (bot, fake, h, trade):
        stopping = await rpc(conn, alice, "stop_bot(%s, 'close')", bot, aal="aal2")
        assert (stopping["status"], stopping["stop_positions"]) == ("running", "close")
        await _race(conn, alice, h, bot, race, monkeypatch)
        assert _resting(fake) == []  # the stop came off, the position was sold

    status, reason = await one(
        conn, "select status, status_reason from public.bots where id = %s", bot
    )
    assert (status, reason) == ("running", None)
    req_status, req_reason, stop_after = await one(
        conn,
        "select status, status_reason, stop_after from public.position_requests"
        " where bot_id = %s and origin = 'stop'",
        bot,
    )
    assert (req_status, stop_after) == ("done", False)
    if race == "before_the_pass":
        assert req_reason == "closed at market"
    else:  # the close was made for the stop; the owner's running won over the stop
        assert req_reason == f"closed at market; {RUNS_ON}"
    (trade_status,) = await one(conn, "select status from public.trades where id = %s", trade)
    assert trade_status == "closed"
    [overridden] = await _logs(conn, bot, "stop_overridden")
    assert "the close works on" in overridden
    assert await _logs(conn, bot, "bot_stopped") == []
    settles = await _logs(conn, bot, "settle_overridden")
    assert len(settles) == (race == "during_the_pass")


@pytest.mark.parametrize("race", ["before_the_pass", "during_the_pass"])
async def test_running_cancels_a_stop_keeping_the_position_while_its_close_works(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    race: str,
) -> None:
    alice = users["alice"]
    async with _live_holding(conn, alice, db_url, tmp_path) as (bot, fake, h, trade):
        close = await rpc(
            conn, alice, "close_position(%s, false, 'limit', 90000, 600)", trade, aal="aal2"
        )
        await h.runner.requests.run()
        assert [o["type"] for o in _resting(fake)] == ["LIMIT"]
        stopping = await rpc(conn, alice, "stop_bot(%s, 'keep')", bot)
        assert (stopping["status"], stopping["stop_positions"]) == ("running", "keep")
        await _race(conn, alice, h, bot, race, monkeypatch)
        resting = [o["type"] for o in _resting(fake)]

    status, reason = await one(
        conn, "select status, status_reason from public.bots where id = %s", bot
    )
    assert (status, reason) == ("running", None)
    req_status, req_reason, stop_after = await one(
        conn,
        "select status, status_reason, stop_after from public.position_requests where id = %s",
        close["id"],
    )
    if race == "before_the_pass":  # the close works on, untouched: the limit sell rests
        assert (req_status, req_reason, stop_after) == ("working", "limit order at 90000 placed", False)  # fmt: skip
        assert resting == ["LIMIT"]
    else:  # the worker had cancelled the close and rested the stop: it says the bot runs on
        assert (req_status, stop_after) == ("cancelled", False)
        assert req_reason == f"the close was cancelled, the position is kept; {RUNS_ON}"
        assert resting == ["STOP_LOSS_LIMIT"]
    (open_trades,) = await one(
        conn, "select count(*) from public.trades where bot_id = %s and status = 'open'", bot
    )
    assert open_trades == 1
    assert len(await _logs(conn, bot, "stop_overridden")) == 1
    assert await _logs(conn, bot, "bot_stopped") == []


async def test_a_stop_settled_before_the_owner_sets_running_is_a_plain_resume(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    """The worker's write first: the bot stops, and the owner's running starts it again."""
    alice = users["alice"]
    async with _live_holding(conn, alice, db_url, tmp_path) as (bot, _fake, h, _trade):
        await rpc(conn, alice, "stop_bot(%s, 'close')", bot, aal="aal2")
        await h.runner.requests.run()
        status, reason = await one(
            conn, "select status, status_reason from public.bots where id = %s", bot
        )
        assert (status, reason) == ("stopped", "stopped by its owner: the open position was closed")
        assert await _logs(conn, bot, "bot_stopped") == [reason]
        assert await _set(conn, alice, bot, "running") == "running"
        await h.sync()
        assert bot in h.runner.bots
    assert await _logs(conn, bot, "stop_overridden") == []
    assert await _logs(conn, bot, "settle_overridden") == []
