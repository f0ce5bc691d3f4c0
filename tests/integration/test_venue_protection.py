"""Protective stops in a live bot's flows on Bybit, OKX, Kraken and Bitget (spot and contracts),
against each exchange's local fake over HTTP through ccxt, as on Binance
(``test_bot_protection.py``): the stop rests from the entry, follows the owner's settings, is
cancelled before the owner's close, stays on the exchange when the bot stops keeping its
position, and a stop that filled while no worker ran is the trade's exit with the
exchange's own fill price, commission and time."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.fakes.fake_venue import FakeVenue, VenueOrder
from tests.integration.test_bot_live import btc_usdt_candles
from tests.integration.test_bot_protection import a_worker, protective, rows
from tests.integration.test_position_requests import QUIET, one, rpc
from tests.integration.test_venue_bots import _credential, _live_bot
from tests.integration.venues import VENUES, Venue
from tests.support.db import User
from worker.bots.market_catalog import MarketSource, refresh_markets
from worker.exchanges.live import LiveExchange

PROTECTED = [v for v in VENUES if v.stop is not None]
pytestmark = pytest.mark.parametrize("venue", PROTECTED, ids=[v.name for v in PROTECTED])

AMOUNT = Decimal("0.01")


async def _bot(
    venue: Venue,
    fake: FakeVenue,
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    user: User,
) -> str:
    def connect(exchange_id: str) -> MarketSource:
        return LiveExchange(exchange_id, api_base_url=fake.url, enable_rate_limit=False)

    await refresh_markets(pool, connect, [venue.exchange_id])
    cred = await _credential(conn, user, venue)
    return await _live_bot(conn, user, venue, cred, stop_loss="20", **QUIET)


async def _enter(conn: psycopg.AsyncConnection[Any], user: User, bot: str, h: Any) -> Any:
    """The owner buys; the position's next step rests its stop on the exchange."""
    await h.candles(2)
    await rpc(conn, user, "manual_trade(%s, false, 'buy', %s)", bot, AMOUNT, aal="aal2")
    await h.runner.requests.run()
    await h.candles(1)
    [trade] = await rows(
        conn, "select * from public.trades where bot_id = %s and status = 'open'", bot
    )
    return trade


def _resting(fake: FakeVenue, stop: dict[str, Any]) -> VenueOrder:
    order = fake.orders[str(stop["exchange_order_id"])]
    assert order.trigger == stop["trigger_price"] and order.side == "sell"
    return order


def _sells(fake: FakeVenue) -> list[VenueOrder]:
    """Sells the fleet sent itself (not protective orders, nor orders they placed)."""
    return [
        o
        for o in fake.orders.values()
        if o.side == "sell" and o.trigger is None and "algoId" not in o.extra
    ]


async def test_the_stop_rests_follows_the_settings_and_is_the_exit_once_it_fills_while_down(
    venue: Venue,
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    pool: AsyncConnectionPool,
    tmp_path: Path,
) -> None:
    alice = users["alice"]
    candles = btc_usdt_candles(tmp_path)
    async with venue.fake() as fake:
        bot = await _bot(venue, fake, conn, pool, alice)
        async with a_worker(conn, db_url, fake, candles, "first") as h:  # type: ignore[arg-type]
            trade = await _enter(conn, alice, bot, h)
            [first] = await protective(conn, bot)
            assert (first["status"], first["kind"]) == ("open", "stop_loss")
            assert first["trade_id"] == trade["id"] and first["amount"] == trade["amount"]
            # far under the candles: only the exchange, not the fleet's own check, sells
            assert first["trigger_price"] == Decimal("34400")  # 43000 - 20 %
            resting = _resting(fake, first)
            assert resting.status == "untriggered"
            if venue.exchange_id == "kraken":  # AddOrder as documented: a stop-limit
                [sent] = [
                    r.params
                    for r in fake.calls("POST", venue.create_path)
                    if r.params.get("ordertype") == "stop-loss-limit"
                ]
                assert (sent["price"], sent["price2"]) == ("34400", "34228")
            assert resting.reduce_only or not venue.contract

            await conn.execute("update public.bots set stop_loss = 25 where id = %s", (bot,))
            await h.candles(1)
            now = h.now
        old, new = await protective(conn, bot)
        assert (old["status"], old["status_reason"]) == ("canceled", "replaced")
        assert fake.orders[str(old["exchange_order_id"])].status == "canceled"
        assert new["status"] == "open" and new["trigger_price"] == Decimal("32250")  # 25 %
        assert _resting(fake, new).status == "untriggered"

        # The fleet is down; the market falls through the stop (not through a spot stop's
        # limit, half a percent under it), which fills on the exchange.
        fake.set_price(fake.price_key(resting.symbol), Decimal("32200"))
        [fill] = [f for f in fake.fills if f.order.side == "sell"]
        async with a_worker(conn, db_url, fake, candles, "second", now) as h2:  # type: ignore[arg-type]
            await h2.candles(1)
            now = h2.now
        async with a_worker(conn, db_url, fake, candles, "third", now) as h3:  # type: ignore[arg-type]
            await h3.candles(2)
        sold_by_fleet = _sells(fake)

    [closed] = await rows(conn, "select * from public.trades where id = %s", trade["id"])
    assert (closed["status"], closed["exit_reason"]) == ("closed", "stop_loss")
    assert closed["exit_price"] == Decimal("32200")
    assert closed["fee"] == trade["fee"] + fill.fee
    assert closed["exit_time"].timestamp() * 1000 == fill.time
    assert closed["profit"] == (Decimal("32200") - trade["price"]) * AMOUNT - closed["fee"]
    exits = await rows(
        conn, "select * from public.orders where bot_id = %s and reason = 'stop_loss'", bot
    )
    assert len(exits) == 1 and exits[0]["id"] == closed["exit_order_id"]
    assert exits[0]["client_order_id"] == new["client_order_id"]
    [recorded] = [p for p in await protective(conn, bot) if p["id"] == new["id"]]
    assert recorded["status"] == "filled" and recorded["filled_at"] == closed["exit_time"]
    assert sold_by_fleet == []  # the exchange sold, once; the fleet sold nothing itself


async def test_the_owner_s_close_takes_the_stop_off_and_a_kept_position_keeps_it(
    venue: Venue,
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    pool: AsyncConnectionPool,
    tmp_path: Path,
) -> None:
    alice = users["alice"]
    candles = btc_usdt_candles(tmp_path)
    async with venue.fake() as fake:
        closing = await _bot(venue, fake, conn, pool, alice)
        async with a_worker(conn, db_url, fake, candles, "first") as h:  # type: ignore[arg-type]
            trade = await _enter(conn, alice, closing, h)
            [stop] = await protective(conn, closing)
            close = await rpc(conn, alice, "close_position(%s, false)", trade["id"], aal="aal2")
            await h.runner.requests.run()
            await h.candles(1)
            (status, reason) = await one(
                conn,
                "select status, status_reason from public.position_requests where id = %s",
                close["id"],
            )
            assert (status, reason) == ("done", "closed at market")
            assert fake.orders[str(stop["exchange_order_id"])].status == "canceled"
            [after] = await protective(conn, closing)
            assert after["status"] == "canceled"
            assert len(_sells(fake)) == 1  # the close, once; the stop sold nothing
            assert fake.open_orders() == []

            # A second position, kept when its owner stops the bot: its stop stays resting.
            trade = await _enter(conn, alice, closing, h)
            kept = await rpc(conn, alice, "stop_bot(%s, 'keep')", closing)
            assert kept["status"] == "stopped"
            await h.sync()
            await h.candles(1)
    [held] = await rows(conn, "select status from public.trades where id = %s", trade["id"])
    assert held["status"] == "open"
    [stop] = [p for p in await protective(conn, closing) if p["status"] == "open"]
    assert stop["trade_id"] == trade["id"]
    assert _resting(fake, stop).status == "untriggered"
    assert [o.id for o in fake.open_orders()] == [str(stop["exchange_order_id"])]


async def test_a_contract_position_rests_a_reduce_only_stop_and_target(
    venue: Venue,
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    pool: AsyncConnectionPool,
    tmp_path: Path,
) -> None:
    if not venue.contract:
        pytest.skip("on spot the target is checked by the fleet (both would sell the coins)")
    alice = users["alice"]
    candles = btc_usdt_candles(tmp_path)
    async with venue.fake() as fake:
        bot = await _bot(venue, fake, conn, pool, alice)
        await conn.execute("update public.bots set take_profit = 20 where id = %s", (bot,))
        async with a_worker(conn, db_url, fake, candles, "first") as h:  # type: ignore[arg-type]
            trade = await _enter(conn, alice, bot, h)
            now = h.now
        placed = {p["kind"]: p for p in await protective(conn, bot)}
        stop, take = (
            _resting(fake, placed["stop_loss"]),
            fake.orders[str(placed["take_profit"]["exchange_order_id"])],
        )
        assert take.trigger == Decimal("51600") == placed["take_profit"]["trigger_price"]
        assert stop.reduce_only and take.reduce_only
        # The fleet is down; the market rises through the target, which fills.
        fake.set_price(fake.price_key(take.symbol), Decimal("51700"))
        [fill] = [f for f in fake.fills if f.order.side == "sell"]
        async with a_worker(conn, db_url, fake, candles, "second", now) as h2:  # type: ignore[arg-type]
            await h2.candles(1)
    [closed] = await rows(conn, "select * from public.trades where id = %s", trade["id"])
    assert (closed["exit_reason"], closed["exit_price"]) == ("take_profit", Decimal("51700"))
    assert closed["fee"] == trade["fee"] + fill.fee
    assert fake.positions[take.symbol] == 0
    assert stop.status == "canceled"  # the other leg comes off once the position is gone
    final = {p["kind"]: p["status"] for p in await protective(conn, bot)}
    assert final == {"stop_loss": "canceled", "take_profit": "filled"}
