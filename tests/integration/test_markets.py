"""The markets cache: filled from the exchange by ccxt (a local fake of Binance's REST API),
read by paper bots, refreshed at most once per interval on a missing market; a market that
turns inactive stops new entries with a clear error while the open position is managed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.fakes.fake_binance import FakeBinance
from tests.fakes.fake_binance_futures import FakeBinanceFutures
from tests.integration.test_bot_live import KEYS, btc_usdt_candles, live_bot
from tests.support.bots import CANDLES, create_bot, grant_credits, harness, register_worker
from tests.support.db import User, request_as
from worker.bots.market_catalog import MarketCatalog, MarketSource, refresh_markets
from worker.bots.markets import offline_markets
from worker.bots.model import BotConfig
from worker.db import open_pool
from worker.exchanges import ExchangeCredentials
from worker.exchanges.live import LiveExchange
from worker.exchanges.market_cache import store_markets


def connect_to(fake: FakeBinance) -> Any:
    def connect(exchange_id: str) -> MarketSource:
        return LiveExchange(exchange_id, api_base_url=fake.url, enable_rate_limit=False)

    return connect


def market_loads(fake: FakeBinance) -> int:
    return sum(1 for r in fake.requests if r.path == "/api/v3/exchangeInfo")


async def one(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    row = await (await conn.execute(query, args)).fetchone()
    return None if row is None else row[0] if len(row) == 1 else row


async def test_refresh_stores_spot_and_swap_markets_that_users_can_read_but_not_write(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], pool: AsyncConnectionPool
) -> None:
    await create_bot(conn, users["alice"], trading_pair="BTC/USDT", stake_amount="20")
    async with FakeBinanceFutures() as fake:
        result = await refresh_markets(pool, connect_to(fake))
    assert isinstance(result["binance"], int) and result["binance"] >= 8
    async with request_as(conn, users["bob"]) as cur:
        await cur.execute(
            "select symbol, type, active, min_cost, min_amount, amount_precision, taker, "
            "contract, linear, settle, max_leverage from public.exchange_markets "
            "where exchange = 'binance' and symbol in ('BTC/USDT', 'BTC/USDT:USDT') order by symbol"
        )
        spot, swap = await cur.fetchall()
    assert (spot["type"], spot["active"], spot["contract"]) == ("spot", True, False)
    assert spot["min_cost"] == Decimal(5) and spot["amount_precision"] == Decimal("0.00001")
    assert spot["taker"] == Decimal("0.001")
    assert (swap["type"], swap["contract"], swap["linear"], swap["settle"]) == (
        "swap",
        True,
        True,
        "USDT",
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, users["bob"]) as cur:
            await cur.execute("delete from public.exchange_markets")


async def test_a_missing_market_refreshes_once_per_interval_then_stops_the_bot_by_name(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    pool: AsyncConnectionPool,
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "10")
    # Saved before the exchange was loaded: nothing could be refused then.
    first = await create_bot(conn, alice, name="first", trading_pair="ETH/BTC")
    second = await create_bot(conn, alice, name="second", trading_pair="LTC/BTC")
    worker = await register_worker(conn)
    async with FakeBinanceFutures() as fake:
        await refresh_markets(pool, connect_to(fake), ["binance"])
        assert market_loads(fake) == 1
        await conn.execute(  # loaded an hour ago
            "update public.exchange_market_loads set refresh_started_at = now() - interval '1 hour'"
        )
        async with harness(db_url, worker) as h:
            h.runner.builder.catalog = MarketCatalog(pool, connect_to(fake), min_refresh_s=300)
            await h.sync()
            await h.candles(1)
        # One refresh for the first missing market; the second finds it started too recently.
        assert market_loads(fake) == 2
    for bot, pair in ((first, "ETH/BTC"), (second, "LTC/BTC")):
        status, message = await one(
            conn, "select status, error_message from public.bots where id = %s", bot
        )
        assert status == "error"
        assert message == f"binance does not list the market {pair}"


async def test_an_inactive_market_stops_new_entries_and_the_open_position_is_still_closed(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    pool: AsyncConnectionPool,
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "50")
    bot = await create_bot(conn, alice)  # ETH/BTC, sma_cross 3/8: trades often
    markets = offline_markets("binance")
    await store_markets(pool, "binance", markets)
    worker = await register_worker(conn)
    open_trade = "select count(*) from public.trades where bot_id = %s and status = 'open'"
    async with harness(db_url, worker) as h:
        catalog = MarketCatalog(pool)
        h.runner.builder.catalog = catalog
        await h.sync()
        for _ in range(300):
            await h.candles(1)
            if await one(conn, open_trade, bot):
                break
        assert await one(conn, open_trade, bot) == 1

        await store_markets(
            pool, "binance", {**markets, "ETH/BTC": {**markets["ETH/BTC"], "active": False}}
        )
        status, message = await one(
            conn, "select status, error_message from public.bots where id = %s", bot
        )
        assert status == "running"
        assert message == (
            "the market ETH/BTC on binance is not active: no new entries; "
            "the open position is still managed"
        )
        await catalog.poll()
        for _ in range(600):
            await h.candles(1)
            if await one(conn, "select status from public.bots where id = %s", bot) == "error":
                break
    assert await one(conn, open_trade, bot) == 0
    assert (
        await one(
            conn, "select count(*) from public.trades where bot_id = %s and status = 'closed'", bot
        )
        >= 1
    )
    status, message = await one(
        conn, "select status, error_message from public.bots where id = %s", bot
    )
    assert status == "error"
    assert message.startswith("market ETH/BTC on binance is not active: no new entries")


async def test_a_market_the_exchange_no_longer_lists_stops_idle_bots_at_once(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], pool: AsyncConnectionPool
) -> None:
    bot = await create_bot(conn, users["alice"], trading_pair="BTC/USDT", stake_amount="20")
    async with FakeBinanceFutures() as fake:
        await refresh_markets(pool, connect_to(fake), ["binance"])
        fake.symbols = [s for s in fake.symbols if s["symbol"] != "BTCUSDT"]
        await refresh_markets(pool, connect_to(fake), ["binance"])
    status, message = await one(
        conn, "select status, error_message from public.bots where id = %s", bot
    )
    assert status == "error"
    assert message == "the market BTC/USDT is no longer listed on binance: no new entries"
    active, delisted = await one(
        conn,
        "select active, delisted_at is not null from public.exchange_markets "
        "where exchange = 'binance' and symbol = 'BTC/USDT'",
    )
    assert (active, delisted) == (False, True)


async def test_a_live_bot_takes_its_markets_from_the_cache_not_from_the_exchange(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(conn, users["alice"])
    async with FakeBinance() as fake:
        pool = await open_pool(db_url, max_size=2)
        try:
            await refresh_markets(pool, connect_to(fake), ["binance"])
            loads = market_loads(fake)

            def factory(cfg: BotConfig, creds: ExchangeCredentials, testnet: bool) -> LiveExchange:
                return LiveExchange(
                    "binance", creds, api_base_url=fake.url, enable_rate_limit=False
                )

            worker = await register_worker(conn)
            async with harness(
                db_url,
                worker,
                candles=btc_usdt_candles(tmp_path),
                keyring=KEYS,
                live_exchange=factory,
            ) as h:
                h.runner.builder.catalog = MarketCatalog(pool)
                await h.sync()
                await h.candles(60)
        finally:
            await pool.close()
        assert market_loads(fake) == loads  # no market download per bot
    status = await one(conn, "select status, error_message from public.bots where id = %s", bot)
    assert status == ("running", None), status[1]
    assert fake.order_posts(), "the bot traded"


def sol_usdt_candles(tmp: Path) -> Path:
    """Real ETH/BTC candle shapes scaled to SOL/USDT prices (no SOL/USDT candles are recorded)."""
    src = (CANDLES / "ETH_BTC-5m.csv").read_text().splitlines()
    out = [src[0]]
    for line in src[1:]:
        d, *nums = line.split(",")
        out.append(",".join([d, *(f"{float(x) * 1500:.4f}" for x in nums[:4]), nums[4]]))
    (tmp / "SOL_USDT-5m.csv").write_text("\n".join(out) + "\n")
    return tmp


async def test_a_paper_bot_on_a_pair_beyond_the_recorded_markets_trades_once_the_exchange_lists_it(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "50")
    bot = await create_bot(
        conn, alice, trading_pair="SOL/USDT", initial_balance="1000", stake_amount="100"
    )
    async with FakeBinance() as fake:
        btc = next(s for s in fake.symbols if s["symbol"] == "BTCUSDT")
        fake.symbols.append({**btc, "symbol": "SOLUSDT", "baseAsset": "SOL"})
        worker = await register_worker(conn)
        pool = await open_pool(db_url, max_size=2)
        try:
            async with harness(db_url, worker, candles=sol_usdt_candles(tmp_path)) as h:
                h.runner.builder.catalog = MarketCatalog(pool, connect_to(fake))
                await h.sync()
                await h.candles(150)
        finally:
            await pool.close()
        assert market_loads(fake) == 1  # loaded once, when the first bot on binance needed it
    status = await one(conn, "select status, error_message from public.bots where id = %s", bot)
    assert status == ("running", None), status[1]
    assert await one(conn, "select count(*) from public.trades where bot_id = %s", bot) > 0
    assert await one(
        conn,
        "select active from public.exchange_markets where exchange = 'binance' and symbol = 'SOL/USDT'",
    )
