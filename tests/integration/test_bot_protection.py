"""Live positions protected on the exchange (local Binance fakes): the stop rests on the
exchange from the entry, its id is recorded, it follows the owner's settings, it is
cancelled when the bot exits otherwise, and a stop that filled while no worker ran becomes
the trade's exit once, with the exchange's own fill price, commission and time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.fakes.fake_binance import FakeBinance
from tests.fakes.fake_binance_futures import FakeBinanceFutures
from tests.integration.test_bot_live import KEYS, btc_usdt_candles, live_bot
from tests.support.bots import START, Harness, create_bot, harness, register_worker
from tests.support.db import User
from worker.bots.adoption import open_live_exchange
from worker.bots.model import BotConfig
from worker.exchanges import Exchange, ExchangeCredentials

Row = dict[str, Any]


def factory(fake: FakeBinance) -> Callable[[BotConfig, ExchangeCredentials, bool], Exchange]:
    def open_it(cfg: BotConfig, creds: ExchangeCredentials, testnet: bool) -> Exchange:
        return open_live_exchange(
            cfg, creds, testnet, api_base_url=fake.url, enable_rate_limit=False, timeout_ms=1500
        )

    return open_it


@asynccontextmanager
async def a_worker(
    conn: psycopg.AsyncConnection[Any],
    db_url: str,
    fake: FakeBinance,
    candles: Path,
    name: str,
    start: datetime = START,
) -> AsyncIterator[Harness]:
    """A worker that takes every bot over (the previous one is gone) and adopts them."""
    await conn.execute("update public.bot_leases set worker_id = null, expires_at = now()")
    worker = await register_worker(conn, name)
    async with harness(
        db_url, worker, start, candles=candles, keyring=KEYS, live_exchange=factory(fake)
    ) as h:
        await h.sync()
        yield h


async def rows(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        return await (await cur.execute(query, args)).fetchall()


async def until_open_trade(h: Harness, conn: psycopg.AsyncConnection[Any], bot: str) -> Row:
    for _ in range(300):
        await h.candles(1)
        found = await rows(
            conn, "select * from public.trades where bot_id = %s and status = 'open'", bot
        )
        if found:
            return found[0]
    raise AssertionError("the bot never opened a trade")


async def protective(conn: psycopg.AsyncConnection[Any], bot: str) -> list[Row]:
    return await rows(
        conn, "select * from public.protective_orders where bot_id = %s order by created_at", bot
    )


def on_fake(fake: FakeBinance, client_order_id: str) -> dict[str, Any]:
    [order] = [o for o in fake.orders.values() if o["clientOrderId"] == client_order_id]
    return order


async def test_a_live_entry_rests_its_stop_on_the_exchange_with_its_id_recorded(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(conn, users["alice"], stop_loss="2")
    async with FakeBinance() as fake:
        candles = btc_usdt_candles(tmp_path)
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            trade = await until_open_trade(h, conn, bot)
            [stop] = await protective(conn, bot)
    assert stop["status"] == "open" and stop["kind"] == "stop_loss"
    assert stop["trade_id"] == trade["id"] and stop["side"] == "sell"
    assert stop["amount"] == trade["amount"]
    assert stop["trigger_price"] == Decimal("42140") == trade["stop_loss_price"]  # 43000 - 2 %
    order = on_fake(fake, stop["client_order_id"])
    assert order["type"] == "STOP_LOSS_LIMIT" and order["status"] == "NEW"
    assert str(order["orderId"]) == stop["exchange_order_id"]
    assert Decimal(order["stopPrice"]) == stop["trigger_price"]
    assert Decimal(order["price"]) == stop["limit_price"] < stop["trigger_price"]
    assert Decimal(order["origQty"]) == trade["amount"]
    logs = await rows(
        conn,
        "select message from public.bot_logs where bot_id = %s and context->>'action' = 'protective_placed'",
        bot,
    )
    assert logs and "42140" in logs[0]["message"]


async def test_a_stop_filled_while_no_worker_ran_is_the_exit_once_with_the_real_fill(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(conn, users["alice"], stop_loss="2")
    async with FakeBinance() as fake:
        candles = btc_usdt_candles(tmp_path)
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            trade = await until_open_trade(h, conn, bot)
            now = h.now
        # The fleet is down; the market falls through the stop, which fills on the exchange.
        fake.set_price("BTCUSDT", Decimal("42000"))
        [stop] = await protective(conn, bot)
        assert on_fake(fake, stop["client_order_id"])["status"] == "FILLED"
        [fill] = [t for t in fake.trades if str(t["orderId"]) == stop["exchange_order_id"]]
        sells_before = len([p for p in fake.order_posts() if p.params["side"] == "SELL"])
        async with a_worker(conn, db_url, fake, candles, "second", now) as h2:
            await h2.candles(1)
            now = h2.now
        async with a_worker(conn, db_url, fake, candles, "third", now) as h3:
            await h3.candles(2)
        sells_after = len([p for p in fake.order_posts() if p.params["side"] == "SELL"])

    [closed] = await rows(conn, "select * from public.trades where id = %s", trade["id"])
    assert closed["status"] == "closed" and closed["exit_reason"] == "stop_loss"
    assert closed["exit_price"] == Decimal("42000")
    assert closed["fee"] == trade["fee"] + Decimal(fill["commission"])
    assert closed["exit_time"] == datetime.fromtimestamp(fill["time"] / 1000, UTC)
    assert closed["profit"] == (Decimal("42000") - trade["price"]) * trade["amount"] - closed["fee"]
    exits = await rows(
        conn,
        "select * from public.orders where bot_id = %s and reason = 'stop_loss'",
        bot,
    )
    assert len(exits) == 1 and exits[0]["client_order_id"] == stop["client_order_id"]
    assert exits[0]["id"] == closed["exit_order_id"] and exits[0]["status"] == "closed"
    [recorded] = [p for p in await protective(conn, bot) if p["id"] == stop["id"]]
    assert recorded["status"] == "filled" and recorded["filled_at"] == closed["exit_time"]
    assert sells_after == sells_before  # the fleet sold nothing itself: the exchange did
    [(stats,)] = await (
        await conn.execute(
            "select count(*) filter (where exit_reason = 'stop_loss') from public.trades "
            "where bot_id = %s",
            (bot,),
        )
    ).fetchall()
    assert stats == 1


async def test_editing_the_stop_loss_replaces_the_stop_on_the_exchange(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(conn, users["alice"], stop_loss="2")
    async with FakeBinance() as fake:
        candles = btc_usdt_candles(tmp_path)
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            trade = await until_open_trade(h, conn, bot)
            await conn.execute("update public.bots set stop_loss = 5 where id = %s", (bot,))
            await h.candles(1)
            still_open = await rows(
                conn, "select status from public.trades where id = %s", trade["id"]
            )
    assert still_open == [{"status": "open"}]
    old, new = await protective(conn, bot)
    assert (old["status"], old["status_reason"]) == ("canceled", "replaced")
    assert on_fake(fake, old["client_order_id"])["status"] == "CANCELED"
    assert new["status"] == "open" and new["trigger_price"] == Decimal("40850")  # 43000 - 5 %
    assert on_fake(fake, new["client_order_id"])["status"] == "NEW"
    [(stop_price,)] = await (
        await conn.execute(
            "select stop_loss_price from public.trades where id = %s", (trade["id"],)
        )
    ).fetchall()
    assert stop_price == Decimal("40850")


async def test_a_trailing_stop_moves_up_with_the_price_at_candle_close(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(conn, users["alice"], stop_loss="2", metadata={"trailing_stop": True})
    async with FakeBinance() as fake:
        fake.prices["BTCUSDT"] = Decimal("38000")  # fills below the candles' closes
        candles = btc_usdt_candles(tmp_path)
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            trade = await until_open_trade(h, conn, bot)
            await h.candles(10)
    stops = [s for s in await protective(conn, bot) if s["trade_id"] == trade["id"]]
    triggers = [s["trigger_price"] for s in stops]
    # trailed from the first close on: above the 2 % under the fill, and only ever up
    assert triggers[0] > Decimal("37240") and len(stops) > 1
    assert triggers == sorted(set(triggers))
    assert all(s["status_reason"] == "replaced" for s in stops[:-1])
    assert all(on_fake(fake, s["client_order_id"])["status"] == "CANCELED" for s in stops[:-1])
    [now] = await rows(conn, "select * from public.trades where id = %s", trade["id"])
    if now["status"] == "open":
        assert stops[-1]["status"] == "open" and now["stop_loss_price"] == triggers[-1]


async def test_an_exit_by_signal_cancels_the_stop_first(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(conn, users["alice"], stop_loss="2")
    async with FakeBinance() as fake:
        candles = btc_usdt_candles(tmp_path)
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            for _ in range(300):
                await h.candles(1)
                exits = await rows(
                    conn,
                    "select * from public.trades where bot_id = %s and exit_reason = 'signal'",
                    bot,
                )
                if exits:
                    break
    assert exits, "no exit by signal"
    stops = {s["trade_id"]: s for s in await protective(conn, bot)}
    stop = stops[exits[0]["id"]]
    assert (stop["status"], stop["status_reason"]) == ("canceled", "exit")
    assert on_fake(fake, stop["client_order_id"])["status"] == "CANCELED"
    # nothing rests on the exchange but the stop of a trade still open
    open_ids = {s["client_order_id"] for s in stops.values() if s["status"] == "open"}
    resting = {o["clientOrderId"] for o in fake.orders.values() if o["status"] == "NEW"}
    assert resting == open_ids


async def test_without_stop_orders_the_bot_says_so_and_the_candle_check_exits(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(conn, users["alice"], stop_loss="2")
    async with FakeBinance() as fake:
        [market] = [s for s in fake.symbols if s["symbol"] == "BTCUSDT"]
        market["orderTypes"] = ["LIMIT", "LIMIT_MAKER", "MARKET"]
        candles = btc_usdt_candles(tmp_path)
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            trade = await until_open_trade(h, conn, bot)
            await h.candles(1)  # the candles trade far below the fill: the stop is hit
    logs = await rows(
        conn,
        "select message from public.bot_logs where bot_id = %s "
        "and context->>'action' = 'protection_unavailable'",
        bot,
    )
    assert logs and "no stop-loss orders" in logs[0]["message"]
    assert "candle close" in logs[0]["message"]
    assert await protective(conn, bot) == []
    [closed] = await rows(conn, "select * from public.trades where id = %s", trade["id"])
    assert closed["status"] == "closed" and closed["exit_reason"] == "stop_loss"


async def test_a_futures_position_rests_a_reduce_only_stop_and_target(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(
        conn,
        users["alice"],
        trading_pair="BTC/USDT:USDT",
        leverage=2,
        stop_loss="2",
        take_profit="4",
    )
    async with FakeBinanceFutures() as fake:
        candles = btc_usdt_candles(tmp_path)
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            trade = await until_open_trade(h, conn, bot)
            now = h.now
        placed = {p["kind"]: p for p in await protective(conn, bot)}
        fake.set_price("BTCUSDT", Decimal("44800"))  # the target (44720) fills while down
        async with a_worker(conn, db_url, fake, candles, "second", now) as h2:
            await h2.candles(1)
    algos = {a["clientAlgoId"]: a for a in fake.algo_orders.values()}
    stop, take = (
        algos[placed["stop_loss"]["client_order_id"]],
        algos[placed["take_profit"]["client_order_id"]],
    )
    assert (stop["orderType"], take["orderType"]) == ("STOP_MARKET", "TAKE_PROFIT_MARKET")
    assert stop["reduceOnly"] and take["reduceOnly"]
    assert Decimal(stop["triggerPrice"]) == Decimal("42140")
    assert Decimal(take["triggerPrice"]) == Decimal("44720")
    assert (take["algoStatus"], stop["algoStatus"]) == ("FINISHED", "CANCELED")
    [fill] = [t for t in fake.user_trades if str(t["orderId"]) == take["actualOrderId"]]
    [closed] = await rows(conn, "select * from public.trades where id = %s", trade["id"])
    assert closed["exit_reason"] == "take_profit" and closed["exit_price"] == Decimal("44800")
    assert closed["fee"] == trade["fee"] + Decimal(fill["commission"])
    assert fake.position().amount == 0
    final = {p["kind"]: p["status"] for p in await protective(conn, bot)}
    assert final == {"stop_loss": "canceled", "take_profit": "filled"}


async def test_a_stop_on_the_wrong_side_of_the_price_is_refused_when_the_bot_is_saved(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    # A short's target of 100 % or more would sit at or below zero.
    with pytest.raises(psycopg.errors.CheckViolation, match="bots_take_profit_short_side"):
        await create_bot(conn, users["alice"], allow_short=True, take_profit="100")
    # A stop-loss of 100 % or more would sit at or below zero (below nothing a long can lose).
    with pytest.raises(psycopg.errors.CheckViolation, match="bots_stop_loss_percent"):
        await create_bot(conn, users["alice"], stop_loss="100")
    with pytest.raises(psycopg.errors.CheckViolation, match="bots_trailing_stop_needs_stop_loss"):
        await create_bot(conn, users["alice"], metadata={"trailing_stop": True})
    with pytest.raises(psycopg.errors.CheckViolation, match="bots_trailing_stop_needs_stop_loss"):
        await create_bot(conn, users["alice"], stop_loss="2", metadata={"trailing_stop": "abc"})
    await create_bot(conn, users["alice"], allow_short=True, take_profit="99", stop_loss="99")


async def test_a_worker_that_lost_the_bot_records_no_protective_order(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(conn, users["alice"], stop_loss="2")
    async with FakeBinance() as fake:
        async with a_worker(conn, db_url, fake, btc_usdt_candles(tmp_path), "first") as h:
            trade = await until_open_trade(h, conn, bot)
    [stop] = await protective(conn, bot)
    await conn.execute("update public.bot_leases set epoch = epoch + 1 where bot_id = %s", (bot,))
    stale = {k: str(v) if isinstance(v, Decimal) else v for k, v in stop.items()}
    stale.update(status="canceled", status_reason="exit", trade_id=str(trade["id"]))
    [(written,)] = await (
        await conn.execute(
            "select public.bot_record_protection(%s::jsonb, '[]')",
            (json.dumps([stale], default=str),),
        )
    ).fetchall()
    assert written == 0
    [again] = await protective(conn, bot)
    assert again["status"] == "open"


async def test_a_stop_the_exchange_took_but_the_database_never_recorded_is_found_not_doubled(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(conn, users["alice"], stop_loss="2")
    async with FakeBinance() as fake:
        candles = btc_usdt_candles(tmp_path)
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            await until_open_trade(h, conn, bot)
            now = h.now
        # The worker died between the exchange's answer and the commit of its step.
        [stop] = await protective(conn, bot)
        await conn.execute("delete from public.protective_orders where bot_id = %s", (bot,))
        async with a_worker(conn, db_url, fake, candles, "second", now) as h2:
            await h2.candles(1)
    resting = [o for o in fake.orders.values() if o["status"] == "NEW"]
    assert [o["clientOrderId"] for o in resting] == [stop["client_order_id"]]
    stops = [p for p in fake.order_posts() if p.params["type"] == "STOP_LOSS_LIMIT"]
    assert len(stops) == 1
    [again] = await protective(conn, bot)
    assert again["client_order_id"] == stop["client_order_id"] and again["status"] == "open"
    assert again["exchange_order_id"] == stop["exchange_order_id"]
