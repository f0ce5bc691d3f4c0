"""Closing a live position whose stop rests on the exchange (local Binance fake): the stop
comes off first, so the close sells the coins the stop had locked, once, and nothing is
left resting to sell them again."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from tests.fakes.fake_binance import FakeBinance
from tests.integration.test_bot_live import KEYS, btc_usdt_candles, live_bot
from tests.integration.test_bot_protection import on_fake, protective
from tests.integration.test_position_requests import QUIET, fake_factory, one, rpc
from tests.support.bots import harness, register_worker
from tests.support.db import User


async def test_closing_a_position_takes_its_stop_off_the_exchange_first(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    alice = users["alice"]
    bot = await live_bot(conn, alice, stop_loss="20", **QUIET)
    candles = btc_usdt_candles(tmp_path)
    async with FakeBinance() as fake:
        worker = await register_worker(conn)
        async with harness(
            db_url, worker, candles=candles, keyring=KEYS, live_exchange=fake_factory(fake)
        ) as h:
            await h.sync()
            await h.candles(2)
            await rpc(conn, alice, "manual_trade(%s, false, 'buy', 0.01)", bot, aal="aal2")
            await h.runner.requests.run()
            await h.candles(1)  # the position's step rests its stop on the exchange
            [stop] = await protective(conn, bot)
            assert stop["status"] == "open"
            assert on_fake(fake, stop["client_order_id"])["status"] == "NEW"
            (trade,) = await one(conn, "select id from public.trades where bot_id = %s", bot)
            close = await rpc(conn, alice, "close_position(%s, false)", trade, aal="aal2")
            await h.runner.requests.run()
            await h.candles(1)
        sells = [p for p in fake.order_posts() if p.params["side"] == "SELL"]

    (req_status, reason) = await one(
        conn,
        "select status, status_reason from public.position_requests where id = %s",
        close["id"],
    )
    assert (req_status, reason) == ("done", "closed at market")
    status, exit_reason, exit_price = await one(
        conn, "select status, exit_reason, exit_price from public.trades where id = %s", trade
    )
    assert (status, exit_reason, exit_price) == ("closed", "manual_close", Decimal("43000"))
    assert on_fake(fake, stop["client_order_id"])["status"] == "CANCELED"
    [after] = await protective(conn, bot)
    assert after["status"] == "canceled"
    market_sells = [p for p in sells if p.params["type"] == "MARKET"]
    assert len(market_sells) == 1  # the close, once; the stop sold nothing


async def test_stopping_a_bot_keeping_its_position_while_a_limit_close_rests_rests_the_stop(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    """The limit close took the stop off; keeping the position must not leave it with no
    stop and a resting sell while no worker runs the bot."""
    alice = users["alice"]
    bot = await live_bot(conn, alice, stop_loss="20", **QUIET)
    candles = btc_usdt_candles(tmp_path)
    async with FakeBinance() as fake:
        worker = await register_worker(conn)
        async with harness(
            db_url, worker, candles=candles, keyring=KEYS, live_exchange=fake_factory(fake)
        ) as h:
            await h.sync()
            await h.candles(2)
            await rpc(conn, alice, "manual_trade(%s, false, 'buy', 0.01)", bot, aal="aal2")
            await h.runner.requests.run()
            await h.candles(1)
            (trade,) = await one(conn, "select id from public.trades where bot_id = %s", bot)
            close = await rpc(
                conn, alice, "close_position(%s, false, 'limit', 90000, 600)", trade, aal="aal2"
            )
            await h.runner.requests.run()
            (working,) = await one(
                conn, "select status from public.position_requests where id = %s", close["id"]
            )
            assert working == "working"
            stopping = await rpc(conn, alice, "stop_bot(%s, 'keep')", bot)
            await h.runner.requests.run()
            await h.sync()

    assert stopping["stop_positions"] == "keep"
    bot_status, bot_reason = await one(
        conn, "select status, status_reason from public.bots where id = %s", bot
    )
    assert (bot_status, bot_reason) == (
        "stopped",
        "stopped by its owner: the open position is kept",
    )
    (req_status, reason, limit_cid) = await one(
        conn,
        "select status, status_reason, client_order_id from public.position_requests where id = %s",
        close["id"],
    )
    assert (req_status, reason) == (
        "cancelled",
        "the bot was stopped keeping the position: the close was cancelled",
    )
    (trade_status,) = await one(conn, "select status from public.trades where id = %s", trade)
    assert trade_status == "open"
    # On the exchange: the limit sell is off, a stop-loss rests for the kept position.
    assert on_fake(fake, limit_cid)["status"] == "CANCELED"
    resting = [o for o in fake.orders.values() if o["status"] == "NEW"]
    assert [o["type"] for o in resting] == ["STOP_LOSS_LIMIT"]
    stops = [p for p in await protective(conn, bot) if p["status"] == "open"]
    assert [s["client_order_id"] for s in stops] == [resting[0]["clientOrderId"]]
