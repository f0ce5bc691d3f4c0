"""A live bot on each supported exchange, end to end against that exchange's local fake: the
fleet loads the exchange's markets into the cache, the save rules check the bot against
them, and the engine trades it through ccxt with every order recorded as the exchange has it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_bot_live import KEYS, btc_usdt_candles
from tests.integration.venues import VENUES, Venue
from tests.support.bots import create_bot, grant_credits, harness, register_worker, subscribe
from tests.support.db import User
from worker.bots.adoption import open_live_exchange
from worker.bots.market_catalog import MarketSource, refresh_markets
from worker.bots.model import BotConfig
from worker.exchanges import Exchange, ExchangeCredentials
from worker.exchanges.live import LiveExchange

pytestmark = pytest.mark.parametrize("venue", VENUES, ids=[v.name for v in VENUES])


async def _credential(
    conn: psycopg.AsyncConnection[Any], user: User, venue: Venue, *, testnet: bool = False
) -> str:
    await subscribe(conn, user, live_trading=True)
    await grant_credits(conn, user, "100")
    ((cred,),) = await (
        await conn.execute(
            "insert into public.exchange_credentials (user_id, exchange, sealed_secret, key_id,"
            " is_testnet) values (%s, %s, %s, 'k1', %s) returning id",
            (user.id, venue.exchange_id, venue.credentials.seal(KEYS), testnet),
        )
    ).fetchall()
    return str(cred)


async def _live_bot(
    conn: psycopg.AsyncConnection[Any], user: User, venue: Venue, cred: str, **fields: Any
) -> str:
    return await create_bot(
        conn,
        user,
        aal="aal2",
        **{
            "exchange": venue.exchange_id,
            "trading_pair": venue.symbol,
            "initial_balance": "10000",
            "stake_amount": "500",
            "is_paper_trade": False,
            "exchange_credential_id": cred,
            **({"leverage": 3} if venue.contract else {}),
            **fields,
        },
    )


async def test_a_live_bot_is_saved_against_the_exchange_markets_and_trades_through_it(
    venue: Venue,
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    pool: AsyncConnectionPool,
    tmp_path: Path,
) -> None:
    alice = users["alice"]
    async with venue.fake() as fake:

        def connect(exchange_id: str) -> MarketSource:
            return LiveExchange(exchange_id, api_base_url=fake.url, enable_rate_limit=False)

        loaded = await refresh_markets(pool, connect, [venue.exchange_id])
        assert isinstance(loaded[venue.exchange_id], int) and loaded[venue.exchange_id] >= 2

        cred = await _credential(conn, alice, venue)
        with pytest.raises(psycopg.errors.CheckViolation, match="does not list the market"):
            await _live_bot(conn, alice, venue, cred, trading_pair="NOPE/USDT")
        bot = await _live_bot(conn, alice, venue, cred)

        def factory(cfg: BotConfig, creds: ExchangeCredentials, testnet: bool) -> Exchange:
            return open_live_exchange(
                cfg, creds, testnet, api_base_url=fake.url, enable_rate_limit=False, timeout_ms=3000
            )

        worker = await register_worker(conn)
        async with harness(
            db_url, worker, candles=btc_usdt_candles(tmp_path), keyring=KEYS, live_exchange=factory
        ) as h:
            await h.sync()
            await h.candles(80)

    status, message = (
        await (
            await conn.execute(
                "select status, error_message from public.bots where id = %s", (bot,)
            )
        ).fetchone()
    ) or (None, None)
    assert (status, message) == ("running", None)
    rows = await (
        await conn.execute(
            "select exchange_order_id, side, filled, status from public.orders "
            "where bot_id = %s and not is_paper_trade",
            (bot,),
        )
    ).fetchall()
    assert {side for _, side, _, _ in rows} == {"buy", "sell"}
    # every order the bot recorded is the exchange's, filled as the exchange filled it
    for order_id, side, filled, order_status in rows:
        sent = fake.orders[str(order_id)]
        assert sent.side == side and order_status == "closed"
        assert sent.filled * sent_size(fake, sent.symbol) == Decimal(filled)
    assert len(fake.orders) == len(rows)


def sent_size(fake: Any, instrument_id: str) -> Decimal:
    size: Decimal = fake.instruments[instrument_id].contract_size
    return size


async def test_a_testnet_key_trades_the_exchange_sandbox_or_says_there_is_none(
    venue: Venue,
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    tmp_path: Path,
) -> None:
    alice = users["alice"]
    bot = await _live_bot(conn, alice, venue, await _credential(conn, alice, venue, testnet=True))
    async with venue.fake() as fake:

        def factory(cfg: BotConfig, creds: ExchangeCredentials, testnet: bool) -> Exchange:
            assert testnet
            return open_live_exchange(
                cfg, creds, testnet, api_base_url=fake.url, enable_rate_limit=False, timeout_ms=3000
            )

        worker = await register_worker(conn)
        async with harness(
            db_url, worker, candles=btc_usdt_candles(tmp_path), keyring=KEYS, live_exchange=factory
        ) as h:
            await h.sync()
            await h.candles(40)
    status, message = (
        await (
            await conn.execute(
                "select status, error_message from public.bots where id = %s", (bot,)
            )
        ).fetchone()
    ) or (None, None)
    if venue.sandbox is None:
        assert status == "error"
        assert message == f"{venue.exchange_id} has no testnet or sandbox: trade it with a live key"
        assert fake.requests == []
    else:
        assert (status, message) == ("running", None)
        assert fake.orders and fake.sandbox_requests() > 0
