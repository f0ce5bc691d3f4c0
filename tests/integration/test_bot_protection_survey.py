"""Resting stops watched at the cost of one open-orders query per exchange account and
close (local Binance fake): no per-stop lookups while the stops rest, none before a stop's
first placement, and a stop that leaves the open list is still found filled and becomes
the exit with the exchange's own fill."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from tests.fakes.fake_binance import FakeBinance
from tests.fakes.fake_binance_futures import FakeBinanceFutures
from tests.integration.test_bot_live import btc_usdt_candles, live_bot
from tests.integration.test_bot_protection import a_worker, on_fake, protective, rows
from tests.support.bots import create_bot
from tests.support.db import User
from worker.exchanges import ExchangeCredentials, make_client_order_id
from worker.exchanges import protective as xp
from worker.exchanges.live import LiveExchange

ORDER = "/api/v3/order"
OPEN_ORDERS = "/api/v3/openOrders"


async def two_bots_on_one_key(conn: psycopg.AsyncConnection[Any], user: User) -> list[str]:
    first = await live_bot(conn, user, stop_loss="2")
    [(cred,)] = await (
        await conn.execute("select exchange_credential_id from public.bots where id = %s", (first,))
    ).fetchall()
    second = await create_bot(
        conn,
        user,
        aal="aal2",
        trading_pair="BTC/USDT",
        initial_balance="10000",
        stake_amount="500",
        is_paper_trade=False,
        exchange_credential_id=str(cred),
        stop_loss="2",
    )
    return [first, second]


async def open_stops(conn: psycopg.AsyncConnection[Any], bots: list[str]) -> list[dict[str, Any]]:
    found = []
    for bot in bots:
        found += [p for p in await protective(conn, bot) if p["status"] == "open"]
    return found


async def test_resting_stops_cost_one_open_orders_query_per_account_and_close(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bots = await two_bots_on_one_key(conn, users["alice"])
    async with FakeBinance() as fake:
        candles = btc_usdt_candles(tmp_path)
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            for _ in range(300):
                await h.candles(1)
                if len(await open_stops(conn, bots)) == 2:
                    break
            stops = await open_stops(conn, bots)
            assert len(stops) == 2
            # Each stop went on the exchange without a lookup before it.
            stop_ids = {s["client_order_id"] for s in stops}
            asked = [
                r
                for r in fake.requests
                if r.method == "GET" and r.path == ORDER and r.params.get("origClientOrderId")
            ]
            assert not stop_ids & {r.params["origClientOrderId"] for r in asked}

            mark = len(fake.requests)
            await h.candles(3)
            watched = fake.requests[mark:]
            assert len(await open_stops(conn, bots)) == 2  # still resting
            assert [r for r in watched if r.method == "GET" and r.path == ORDER] == []
            assert len([r for r in watched if r.path == OPEN_ORDERS]) == 3  # one per close

            # The market falls through both stops between two closes: they leave the open
            # list, and each is read once and recorded as its trade's exit.
            fake.set_price("BTCUSDT", Decimal("42000"))
            await h.candles(1)

    for bot, stop in zip(
        bots, [s for b in bots for s in stops if str(s["bot_id"]) == b], strict=True
    ):
        assert on_fake(fake, stop["client_order_id"])["status"] == "FILLED"
        [trade] = await rows(conn, "select * from public.trades where bot_id = %s", bot)
        assert trade["status"] == "closed" and trade["exit_reason"] == "stop_loss"
        assert trade["exit_price"] == Decimal("42000")
        [recorded] = [p for p in await protective(conn, bot) if p["id"] == stop["id"]]
        assert recorded["status"] == "filled"


async def test_binance_lists_resting_stops_in_one_query_on_spot_and_futures() -> None:
    """Binance spot lists stop-limit orders among its open orders; USDⓈ-M lists its
    conditional (algo) orders apart: one query each, as a close makes it."""
    creds = ExchangeCredentials("test-key", "test-secret")
    for fake_type, exchange_id, symbol, path in (
        (FakeBinance, "binance", "BTC/USDT", OPEN_ORDERS),
        (FakeBinanceFutures, "binanceusdm", "BTC/USDT:USDT", "/fapi/v1/openAlgoOrders"),
    ):
        async with (
            fake_type() as fake,
            LiveExchange(exchange_id, creds, api_base_url=fake.url, enable_rate_limit=False) as ex,
        ):
            await ex.load_markets()
            amount = Decimal("0.01")
            await ex.create_order(symbol, "buy", "market", amount, client_order_id="tfin")
            ids = [make_client_order_id("bot", n) for n in ("stop", "gone")]
            stop = await xp.place(ex, symbol, "stop_loss", "sell", amount, Decimal("41000"), ids[0])
            assert stop.is_open
            mark = len(fake.requests)
            assert await xp.open_protective(ex, [symbol], ids) == {ids[0]}
            assert [r.path for r in fake.requests[mark:]] == [path]
            await xp.cancel(ex, symbol, ids[0])
            assert await xp.open_protective(ex, [symbol], ids) == set()


async def test_a_stop_placed_again_without_a_lookup_is_found_not_doubled() -> None:
    """A placement whose answer was lost is sent again under the same client id: the
    exchange refuses the second open order and the fleet finds the first one."""
    creds = ExchangeCredentials("test-key", "test-secret")
    async with (
        FakeBinance() as fake,
        LiveExchange("binance", creds, api_base_url=fake.url, enable_rate_limit=False) as ex,
    ):
        await ex.load_markets()
        amount, trigger = Decimal("0.01"), Decimal("41000")
        await ex.create_order("BTC/USDT", "buy", "market", amount, client_order_id="tfin")
        cid = make_client_order_id("bot", "stop")
        first = await xp.place(
            ex, "BTC/USDT", "stop_loss", "sell", amount, trigger, cid, look_first=False
        )
        again = await xp.place(
            ex, "BTC/USDT", "stop_loss", "sell", amount, trigger, cid, look_first=False
        )
    assert again.id == first.id and again.is_open
    assert len([o for o in fake.orders.values() if o["clientOrderId"] == cid]) == 1
