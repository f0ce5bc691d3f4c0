"""A live spot long's stop-loss and take-profit on Binance rest together as one OCO order list
(local Binance fake, ``POST /api/v3/orderList/oco``): placed at the entry, replaced as a list
when a level moves, and when one leg fills while no worker runs, that fill is the trade's
exit (real price, commission, time) and the other leg is gone with it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from tests.fakes.fake_binance import FakeBinance
from tests.integration.test_bot_live import btc_usdt_candles, live_bot
from tests.integration.test_bot_protection import a_worker, on_fake, protective, rows
from tests.integration.test_position_requests import QUIET, rpc
from tests.support.db import User

AMOUNT = Decimal("0.01")


def _lists(fake: FakeBinance) -> list[Any]:
    return [r for r in fake.requests if r.path == "/api/v3/orderList/oco"]


async def test_a_spot_stop_and_target_rest_as_one_oco_list_and_one_leg_is_the_exit(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    alice = users["alice"]
    bot = await live_bot(conn, alice, stop_loss="20", take_profit="10", **QUIET)
    candles = btc_usdt_candles(tmp_path)
    async with FakeBinance() as fake:
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            await h.candles(2)
            await rpc(conn, alice, "manual_trade(%s, false, 'buy', %s)", bot, AMOUNT, aal="aal2")
            await h.runner.requests.run()
            await h.candles(1)
            [trade] = await rows(conn, "select * from public.trades where bot_id = %s", bot)
            legs = {p["kind"]: p for p in await protective(conn, bot)}
            assert {k: p["status"] for k, p in legs.items()} == {
                "stop_loss": "open",
                "take_profit": "open",
            }
            stop, take = (
                on_fake(fake, legs["stop_loss"]["client_order_id"]),
                on_fake(fake, legs["take_profit"]["client_order_id"]),
            )
            assert (stop["type"], take["type"]) == ("STOP_LOSS_LIMIT", "LIMIT_MAKER")
            assert stop["orderListId"] == take["orderListId"] != -1
            assert Decimal(stop["stopPrice"]) == Decimal("34400")  # 43000 - 20 %
            assert Decimal(take["price"]) == Decimal("47300")  # 43000 + 10 %
            assert legs["take_profit"]["limit_price"] == Decimal("47300")
            assert len(_lists(fake)) == 1
            assert not [p for p in fake.order_posts() if p.params["type"] != "MARKET"]
            assert fake.balances["BTC"][1] == AMOUNT  # the coins are locked once

            await conn.execute("update public.bots set take_profit = 12 where id = %s", (bot,))
            await h.candles(1)
            now = h.now
        assert {stop["status"], take["status"]} == {"CANCELED"}  # the old list, as a whole
        placed = [p for p in await protective(conn, bot) if p["status"] == "open"]
        new = {p["kind"]: p for p in placed}
        assert new["take_profit"]["trigger_price"] == Decimal("48160")  # 43000 + 12 %
        assert new["stop_loss"]["trigger_price"] == Decimal("34400")
        assert len(_lists(fake)) == 2

        # The fleet is down; the market rises through the target, whose leg fills.
        fake.set_price("BTCUSDT", Decimal("48500"))
        target = on_fake(fake, new["take_profit"]["client_order_id"])
        assert target["status"] == "FILLED"
        assert on_fake(fake, new["stop_loss"]["client_order_id"])["status"] == "EXPIRED"
        [fill] = [t for t in fake.trades if t["orderId"] == target["orderId"]]
        async with a_worker(conn, db_url, fake, candles, "second", now) as h2:
            await h2.candles(1)
            now = h2.now
        async with a_worker(conn, db_url, fake, candles, "third", now) as h3:
            await h3.candles(2)

    [closed] = await rows(conn, "select * from public.trades where id = %s", trade["id"])
    assert (closed["status"], closed["exit_reason"]) == ("closed", "take_profit")
    assert closed["exit_price"] == Decimal("48160")  # the resting limit's own price
    assert closed["fee"] == trade["fee"] + Decimal(fill["commission"])
    assert closed["exit_time"] == datetime.fromtimestamp(fill["time"] / 1000, UTC)
    exits = await rows(
        conn, "select * from public.orders where bot_id = %s and reason = 'take_profit'", bot
    )
    assert len(exits) == 1 and exits[0]["id"] == closed["exit_order_id"]
    final = {p["client_order_id"]: p for p in await protective(conn, bot)}
    assert final[new["take_profit"]["client_order_id"]]["status"] == "filled"
    assert final[new["stop_loss"]["client_order_id"]]["status"] == "canceled"
    assert not [p for p in fake.order_posts() if p.params["side"] == "SELL"]
    assert len(_lists(fake)) == 2  # nothing placed again after the exit
    assert fake.balances["BTC"] == [Decimal("1"), Decimal(0)]  # bought 0.01, sold 0.01


async def test_a_list_the_exchange_took_but_the_database_never_recorded_is_found_not_doubled(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    alice = users["alice"]
    bot = await live_bot(conn, alice, stop_loss="20", take_profit="10", **QUIET)
    candles = btc_usdt_candles(tmp_path)
    async with FakeBinance() as fake:
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            await h.candles(2)
            await rpc(conn, alice, "manual_trade(%s, false, 'buy', %s)", bot, AMOUNT, aal="aal2")
            await h.runner.requests.run()
            await h.candles(1)
            now = h.now
        # The worker died between the exchange's answer and the commit of its step.
        before = {p["client_order_id"]: p for p in await protective(conn, bot)}
        await conn.execute("delete from public.protective_orders where bot_id = %s", (bot,))
        async with a_worker(conn, db_url, fake, candles, "second", now) as h2:
            await h2.candles(1)
        close = await rows(conn, "select id from public.trades where bot_id = %s", bot)
        async with a_worker(conn, db_url, fake, candles, "third", h2.now) as h3:
            await rpc(conn, alice, "close_position(%s, false)", close[0]["id"], aal="aal2")
            await h3.runner.requests.run()
            await h3.candles(1)
    assert len(_lists(fake)) == 1
    after = {p["client_order_id"]: p for p in await protective(conn, bot)}
    assert set(after) == set(before)
    assert {p["exchange_order_id"] for p in after.values()} == {
        p["exchange_order_id"] for p in before.values()
    }
    # the owner's close took the list off first, then sold once at market
    assert {p["status"] for p in after.values()} == {"canceled"}
    assert {o["status"] for o in fake.orders.values() if o["orderListId"] != -1} == {"CANCELED"}
    assert len([p for p in fake.order_posts() if p.params["side"] == "SELL"]) == 1
