"""A live bot: its sealed key is opened only in the worker's memory, orders reach the
exchange (a local fake answering like Binance) under deterministic client ids, a lost
response or a takeover never places an order twice, and plan and aal2 rules hold."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fakes.fake_binance import FakeBinance
from tests.support.bots import (
    CANDLES,
    create_bot,
    grant_credits,
    harness,
    register_worker,
    subscribe,
)
from tests.support.db import User
from worker.bots.model import BotConfig
from worker.exchanges import ExchangeCredentials
from worker.exchanges.live import LiveExchange
from worker.sealing import Keyring

KEYS = Keyring.parse(f"k1:{base64.b64encode(os.urandom(32)).decode()}")


def btc_usdt_candles(tmp: Path) -> Path:
    """Real ETH/BTC candle shapes scaled to BTC/USDT prices."""
    src = (CANDLES / "ETH_BTC-5m.csv").read_text().splitlines()
    out = [src[0]]
    for line in src[1:]:
        d, *nums = line.split(",")
        out.append(",".join([d, *(f"{float(x) * 450000:.2f}" for x in nums[:4]), nums[4]]))
    (tmp / "BTC_USDT-5m.csv").write_text("\n".join(out) + "\n")
    return tmp


async def live_bot(conn: psycopg.AsyncConnection[Any], user: User, **fields: Any) -> str:
    await subscribe(conn, user, live_trading=True)
    await grant_credits(conn, user, "100")
    ((cred,),) = await (
        await conn.execute(
            "insert into public.exchange_credentials (user_id, exchange, sealed_secret, key_id, api_key_hint) "
            "values (%s, 'binance', %s, 'k1', '****-key') returning id",
            (user.id, ExchangeCredentials("test-key", "test-secret").seal(KEYS)),
        )
    ).fetchall()
    return await create_bot(
        conn,
        user,
        aal="aal2",
        **{
            "trading_pair": "BTC/USDT",
            "initial_balance": "10000",
            "stake_amount": "500",
            "is_paper_trade": False,
            "exchange_credential_id": str(cred),
            **fields,
        },
    )


async def test_a_live_bot_trades_once_per_decision_across_lost_responses_and_takeovers(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(conn, users["alice"])
    opened: list[str] = []
    async with FakeBinance() as fake:

        def factory(cfg: BotConfig, creds: ExchangeCredentials, testnet: bool) -> LiveExchange:
            opened.append(creds.api_key)
            return LiveExchange(
                "binance", creds, api_base_url=fake.url, enable_rate_limit=False, timeout_ms=1500
            )

        worker = await register_worker(conn)
        candles = btc_usdt_candles(tmp_path)
        async with harness(
            db_url, worker, candles=candles, keyring=KEYS, live_exchange=factory
        ) as h:
            await h.sync()
            await h.candles(60)
            fake.fail_next("lost_response", path="/api/v3/order")
            await h.candles(60)
            assert not fake._failures, "the lost response was never exercised"
            now = h.now
        # an order the database thinks is open but the exchange never kept
        await conn.execute(
            "insert into public.orders (bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount,"
            " status, is_paper_trade, lease_epoch) select id, user_id, 'tf-vanished', 'binance', 'BTC/USDT', 'buy',"
            " 'market', 0.01, 'open', false, 1 from public.bots where id = %s",
            (bot,),
        )
        # another worker takes over (new epoch) and reconciles before trading
        await conn.execute("update public.bot_leases set worker_id = null, expires_at = now()")
        worker2 = await register_worker(conn, "second")
        async with harness(
            db_url, worker2, now, candles=candles, keyring=KEYS, live_exchange=factory
        ) as h2:
            await h2.sync()
            await h2.candles(60)

    assert opened == ["test-key", "test-key"]
    orders = await (
        await conn.execute(
            "select client_order_id, is_paper_trade, status from public.orders where bot_id = %s",
            (bot,),
        )
    ).fetchall()
    assert len(orders) >= 4 and not any(o[1] for o in orders)
    cids = [p.params["newClientOrderId"] for p in fake.order_posts()]
    # every decision reached the exchange once: a retried post after the lost response
    # found the order by its client id instead of posting again
    assert ("tf-vanished", False, "expired") in orders
    orders = [o for o in orders if o[0] != "tf-vanished"]
    assert sorted(set(cids)) == sorted(o[0] for o in orders)
    assert len(cids) == len(set(cids))
    ((status, epoch_trades),) = await (
        await conn.execute(
            "select b.status, count(t.*) filter (where t.lease_epoch = 2) from public.bots b "
            "left join public.trades t on t.bot_id = b.id where b.id = %s group by b.status",
            (bot,),
        )
    ).fetchall()
    assert status == "running" and epoch_trades > 0


async def test_live_needs_two_factor_and_a_plan_with_live_trading(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    bob = users["bob"]
    ((cred,),) = await (
        await conn.execute(
            "insert into public.exchange_credentials (user_id, exchange, sealed_secret, key_id) "
            "values (%s, 'binance', %s, 'k1') returning id",
            (bob.id, ExchangeCredentials("test-key", "test-secret").seal(KEYS)),
        )
    ).fetchall()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="aal2"):
        await create_bot(conn, bob, is_paper_trade=False, exchange_credential_id=str(cred))
    bot = await create_bot(
        conn, bob, aal="aal2", is_paper_trade=False, exchange_credential_id=str(cred)
    )
    worker = await register_worker(conn)
    async with harness(db_url, worker, keyring=KEYS) as h:
        await h.sync()
    ((status, message),) = await (
        await conn.execute("select status, error_message from public.bots where id = %s", (bot,))
    ).fetchall()
    assert status == "error" and "plan" in message


async def test_a_live_allow_short_bot_on_a_spot_market_skips_short_entries_and_says_so(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    # Stops close trades often, so the bot is flat when the averages cross down: a short entry.
    # The fake's price stands still, so the stops are the fleet's candle checks: the market
    # lists no stop orders to rest on the exchange.
    bot = await live_bot(conn, users["alice"], allow_short=True, stop_loss="0.3", take_profit="0.3")
    async with FakeBinance() as fake:
        [market] = [s for s in fake.symbols if s["symbol"] == "BTCUSDT"]
        market["orderTypes"] = ["LIMIT", "LIMIT_MAKER", "MARKET"]

        def factory(cfg: BotConfig, creds: ExchangeCredentials, testnet: bool) -> LiveExchange:
            return LiveExchange(
                "binance", creds, api_base_url=fake.url, enable_rate_limit=False, timeout_ms=1500
            )

        worker = await register_worker(conn)
        async with harness(
            db_url, worker, candles=btc_usdt_candles(tmp_path), keyring=KEYS, live_exchange=factory
        ) as h:
            await h.sync()
            await h.candles(200)
    logs = await (
        await conn.execute(
            "select message from public.bot_logs where bot_id = %s and context ->> 'action' = 'short_skipped'",
            (bot,),
        )
    ).fetchall()
    assert logs and "spot market" in logs[0][0]
    trades = await (
        await conn.execute("select distinct direction from public.trades where bot_id = %s", (bot,))
    ).fetchall()
    assert trades == [("long",)]
    ((status,),) = await (
        await conn.execute("select status from public.bots where id = %s", (bot,))
    ).fetchall()
    assert status == "running"
