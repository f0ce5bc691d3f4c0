"""A live position whose close is working when its bot pauses or goes to ``error`` (local
Binance fake): the close took the stop off the exchange, so the pause (or error) waits for
the worker to cancel the close and rest the stop again for what is left of the position,
as ``stop_bot(…, 'keep')`` does. And a partial close rests the stop for the rest at once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fakes.fake_binance import FakeBinance
from tests.integration.test_bot_live import KEYS, btc_usdt_candles, live_bot
from tests.integration.test_bot_protection import on_fake, protective
from tests.integration.test_position_requests import QUIET, fake_factory, one, rpc
from tests.support.bots import Harness, harness, register_worker
from tests.support.db import User, request_as

WAITING = {
    "paused": "pausing: cancelling the working close, the position is kept",
    "error": "stopping with an error: cancelling the working close, the position is kept",
}
SETTLED = {
    "paused": "the bot was paused: the close was cancelled, the position is kept",
    "error": "the bot stopped with an error: the close was cancelled, the position is kept",
}


async def _holding(conn: psycopg.AsyncConnection[Any], user: User, h: Harness, bot: str) -> str:
    """A position of 0.01 BTC bought by hand, its stop resting on the exchange."""
    await h.sync()
    await h.candles(2)
    await rpc(conn, user, "manual_trade(%s, false, 'buy', 0.01)", bot, aal="aal2")
    await h.runner.requests.run()
    await h.candles(1)  # the position's step rests its stop on the exchange
    (trade,) = await one(conn, "select id from public.trades where bot_id = %s", bot)
    return str(trade)


def _resting(fake: FakeBinance) -> list[dict[str, Any]]:
    return [o for o in fake.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")]


@dataclass
class LimitClose:
    """A live bot holding 0.01 BTC whose owner closes it with a limit sell resting on the
    exchange (its stop taken off meanwhile), and the worker's harness running it."""

    bot: str
    fake: FakeBinance
    h: Harness
    trade: str
    close: dict[str, Any]


@contextlib.asynccontextmanager
async def limit_close_resting(
    conn: psycopg.AsyncConnection[Any],
    user: User,
    db_url: str,
    tmp_path: Path,
    *,
    price: int = 90000,
    **settings: Any,
) -> AsyncIterator[LimitClose]:
    """A live bot holding a position whose owner's limit close at ``price`` rests on the
    Binance fake (``settings``: more of the bot's columns)."""
    bot = await live_bot(conn, user, stop_loss="20", **QUIET, **settings)
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
            close = await rpc(
                conn, user, f"close_position(%s, false, 'limit', {price}, 600)", trade, aal="aal2"
            )
            await h.runner.requests.run()
            yield LimitClose(bot, fake, h, trade, close)


async def _open_stops(conn: psycopg.AsyncConnection[Any], bot: str) -> list[dict[str, Any]]:
    return [p for p in await protective(conn, bot) if p["status"] == "open"]


@pytest.mark.parametrize("status", ["paused", "error"])
async def test_a_pause_or_error_while_a_limit_close_rests_rests_the_stop_for_the_rest(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    tmp_path: Path,
    status: str,
) -> None:
    alice = users["alice"]
    async with limit_close_resting(conn, alice, db_url, tmp_path) as lc:
        bot, fake, h, trade, close = lc.bot, lc.fake, lc.h, lc.trade, lc.close
        (limit_cid,) = await one(
            conn, "select client_order_id from public.position_requests where id = %s",
            close["id"],
        )  # fmt: skip
        assert [o["type"] for o in _resting(fake)] == ["LIMIT"]  # the stop came off
        fake.fill_part(limit_cid, Decimal("0.004"))  # the close fills in part, then:
        if status == "paused":  # the owner pauses the bot
            async with request_as(conn, alice) as cur:
                await cur.execute(
                    "update public.bots set status = 'paused' where id = %s"
                    " returning status, status_reason",
                    (bot,),
                )
                waiting = await cur.fetchone()
        else:  # the fleet sets it to error
            row = await one(
                conn,
                "update public.bots set status = 'error', error_message = 'key revoked',"
                " status_reason = 'stopped by an error' where id = %s"
                " returning status, status_reason",
                bot,
            )
            waiting = {"status": row[0], "status_reason": row[1]}
        assert waiting is not None
        assert (waiting["status"], waiting["status_reason"]) == ("running", WAITING[status])
        (req_status,) = await one(
            conn, "select status from public.position_requests where id = %s", close["id"]
        )
        assert req_status == "working"  # left to the worker, not failed
        await h.runner.requests.run()
        await h.sync()

    bot_status, reason, error = await one(
        conn, "select status, status_reason, error_message from public.bots where id = %s", bot
    )
    if status == "paused":
        assert (bot_status, reason, error) == ("paused", None, None)
    else:
        assert (bot_status, reason, error) == ("error", "stopped by an error", "key revoked")
    req_status, req_reason = await one(
        conn, "select status, status_reason from public.position_requests where id = %s",
        close["id"],
    )  # fmt: skip
    assert (req_status, req_reason) == ("cancelled", SETTLED[status])
    # What filled closed as a trade of its own; the rest stays open under the trade's id.
    closed = await one(
        conn,
        "select amount, exit_reason from public.trades where bot_id = %s and status = 'closed'",
        bot,
    )
    assert tuple(closed) == (Decimal("0.004"), "manual_close")
    (left,) = await one(conn, "select amount from public.trades where id = %s", trade)
    assert left == Decimal("0.006")
    # On the exchange: the limit sell is off, the stop rests for the 0.006 left.
    assert on_fake(fake, limit_cid)["status"] == "CANCELED"
    [stop] = _resting(fake)
    assert (stop["type"], Decimal(stop["origQty"])) == ("STOP_LOSS_LIMIT", Decimal("0.006"))
    [row] = await _open_stops(conn, bot)
    assert (row["client_order_id"], row["amount"]) == (stop["clientOrderId"], Decimal("0.006"))


async def test_a_second_pause_while_the_first_waits_still_waits_for_the_worker(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    alice = users["alice"]
    async with limit_close_resting(conn, alice, db_url, tmp_path) as lc:
        bot, fake, h, close = lc.bot, lc.fake, lc.h, lc.close
        for _ in range(2):
            async with request_as(conn, alice) as cur:
                await cur.execute(
                    "update public.bots set status = 'paused' where id = %s returning status",
                    (bot,),
                )
                row = await cur.fetchone()
            assert row is not None and row["status"] == "running"
        await h.runner.requests.run()
        await h.sync()
    (bot_status,) = await one(conn, "select status from public.bots where id = %s", bot)
    assert bot_status == "paused"
    (req_status,) = await one(
        conn, "select status from public.position_requests where id = %s", close["id"]
    )
    assert req_status == "cancelled"
    assert [o["type"] for o in _resting(fake)] == ["STOP_LOSS_LIMIT"]


async def test_a_paper_bot_pauses_at_once_while_its_close_works(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    """Paper stops are the fleet's own check: nothing rests anywhere, nothing to wait for."""
    from tests.integration.test_position_requests import paper_bot

    alice = users["alice"]
    bot = await paper_bot(conn, alice)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(2)
        await rpc(conn, alice, "manual_trade(%s, true, 'buy', null, 0.1)", bot)
        await h.runner.requests.run()
        (trade,) = await one(conn, "select id from public.trades where bot_id = %s", bot)
        close = await rpc(conn, alice, "close_position(%s, true, 'limit', 9, 600)", trade)
        await h.runner.requests.run()
        (status,) = await one(
            conn, "update public.bots set status = 'paused' where id = %s returning status", bot
        )
        assert status == "paused"
    (req_status,) = await one(
        conn, "select status from public.position_requests where id = %s", close["id"]
    )
    assert req_status == "failed"


async def test_a_partial_close_rests_the_stop_for_the_rest_at_once(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    """Half closed at market, then a part at a limit that fills in part and times out: each
    time the stop rests for what is left in the same pass, with no candle close between."""
    alice = users["alice"]
    bot = await live_bot(conn, alice, stop_loss="20", **QUIET)
    async with FakeBinance() as fake:
        worker = await register_worker(conn)
        async with harness(
            db_url,
            worker,
            candles=btc_usdt_candles(tmp_path),
            keyring=KEYS,
            live_exchange=fake_factory(fake),
        ) as h:
            trade = await _holding(conn, alice, h, bot)
            await rpc(
                conn, alice, "close_position(%s, false, p_fraction => 0.5)", trade, aal="aal2"
            )
            await h.runner.requests.run()
            [stop] = _resting(fake)
            assert (stop["type"], Decimal(stop["origQty"])) == ("STOP_LOSS_LIMIT", Decimal("0.005"))
            [row] = await _open_stops(conn, bot)
            assert (row["client_order_id"], row["amount"]) == (
                stop["clientOrderId"],
                Decimal("0.005"),
            )

            part = await rpc(
                conn,
                alice,
                "close_position(%s, false, 'limit', 90000, 5, 'cancel', p_amount => 0.003)",
                trade,
                aal="aal2",
            )
            await h.runner.requests.run()
            (cid,) = await one(
                conn, "select client_order_id from public.position_requests where id = %s",
                part["id"],
            )  # fmt: skip
            assert [o["type"] for o in _resting(fake)] == ["LIMIT"]  # the stop came off
            fake.fill_part(cid, Decimal("0.001"))
            await h.runner.requests.run(h.runner.clock.now() + timedelta(seconds=10))
            [stop] = _resting(fake)
            assert (stop["type"], Decimal(stop["origQty"])) == ("STOP_LOSS_LIMIT", Decimal("0.004"))
            [row] = await _open_stops(conn, bot)
            assert (row["client_order_id"], row["amount"]) == (
                stop["clientOrderId"],
                Decimal("0.004"),
            )
    (left,) = await one(conn, "select amount from public.trades where id = %s", trade)
    assert left == Decimal("0.004")


async def test_a_daily_loss_pause_while_a_close_works_keeps_its_cause(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    """The owner's limit close fills at a loss that reaches the bot's daily loss limit: the
    bot's step pauses it while the database still has the close working, so the pause waits
    for the worker to settle it. It waits, and then holds, as the platform's pause
    (``pause_cause`` ``daily_loss``, until the next UTC day) like any daily loss pause: the
    owner cannot set the bot running past its limit meanwhile."""
    alice = users["alice"]
    # below the entry (43000): the fake rests it until told to fill
    async with limit_close_resting(
        conn, alice, db_url, tmp_path, price=40000, daily_loss_limit="1"
    ) as lc:
        bot, fake, h, close = lc.bot, lc.fake, lc.h, lc.close
        (cid,) = await one(
            conn, "select client_order_id from public.position_requests where id = %s",
            close["id"],
        )  # fmt: skip
        fake.fill_part(cid, Decimal("0.01"))  # all of it: a loss of 30 USDT and fees
        # The bot's step records the exit and its daily loss is reached, while the
        # request is still working for the database.
        await h.candles(1)
        status, reason, cause = await one(
            conn, "select status, status_reason, pause_cause from public.bots where id = %s",
            bot,
        )  # fmt: skip
        assert (status, reason, cause) == ("running", WAITING["paused"], "daily_loss")
        with pytest.raises(psycopg.errors.CheckViolation, match="paused by the platform"):
            async with request_as(conn, alice, aal="aal2") as cur:  # not past its limit
                await cur.execute("update public.bots set status = 'running' where id = %s", (bot,))
        await h.runner.requests.run()
        await h.sync()
    status, reason, cause, until = await one(
        conn,
        "select status, status_reason, pause_cause, pause_until from public.bots where id = %s",
        bot,
    )
    assert (status, cause) == ("paused", "daily_loss")
    assert reason.startswith("daily loss limit reached: lost ")
    assert until is not None
    (req_status,) = await one(
        conn, "select status from public.position_requests where id = %s", close["id"]
    )
    assert req_status == "done"
    with pytest.raises(psycopg.errors.CheckViolation, match="paused by the platform"):
        async with request_as(conn, alice, aal="aal2") as cur:
            await cur.execute("update public.bots set status = 'running' where id = %s", (bot,))
