"""Live bots on one exchange key share one client: one connection pool and one rate limit
for the account, however many bots trade it; the client closes with the last of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from tests.fakes.fake_binance import FakeBinance
from tests.integration.test_bot_live import KEYS, btc_usdt_candles, live_bot
from tests.support.bots import create_bot, harness, register_worker
from tests.support.db import User
from worker.bots.model import BotConfig
from worker.exchanges import ExchangeCredentials
from worker.exchanges.live import LiveExchange


async def test_live_bots_on_one_key_trade_through_one_client(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    first = await live_bot(conn, users["alice"])
    ((cred,),) = await (
        await conn.execute("select exchange_credential_id from bots where id = %s", (first,))
    ).fetchall()
    others = [
        await create_bot(
            conn,
            users["alice"],
            aal="aal2",
            name=f"bot {i}",
            trading_pair="BTC/USDT",
            initial_balance="10000",
            stake_amount="500",
            is_paper_trade=False,
            exchange_credential_id=str(cred),
            parameters={"fast": 3 + i, "slow": 8 + i},
        )
        for i in range(2)
    ]
    opened: list[LiveExchange] = []
    async with FakeBinance() as fake:

        def factory(cfg: BotConfig, creds: ExchangeCredentials, testnet: bool) -> LiveExchange:
            ex = LiveExchange(
                "binance", creds, api_base_url=fake.url, enable_rate_limit=False, timeout_ms=1500
            )
            opened.append(ex)
            return ex

        worker = await register_worker(conn)
        async with harness(
            db_url, worker, candles=btc_usdt_candles(tmp_path), keyring=KEYS, live_exchange=factory
        ) as h:
            await h.sync()
            assert len(h.runner.bots) == 3
            await h.candles(60)
            assert len(opened) == 1 and not opened[0].closed
            await h.runner.drop(first)
            assert not opened[0].closed  # the other two still trade through it
        assert opened[0].closed
    bots = await (
        await conn.execute(
            "select count(distinct bot_id) from orders where bot_id = any(%s::uuid[])",
            ([first, *others],),
        )
    ).fetchall()
    assert bots == [(3,)]
