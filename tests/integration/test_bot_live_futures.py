"""A live allow_short bot on a Binance USDⓈ-M perpetual (a local fake of ``/fapi``): it
shorts with the leverage it has, exits only with reduce-only orders, sizes its stake from
the futures wallet, and never places an order twice across a lost response."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from tests.fakes.fake_binance_futures import FakeBinanceFutures
from tests.integration.test_bot_live import KEYS, btc_usdt_candles, live_bot
from tests.support.bots import harness, register_worker
from tests.support.db import User
from worker.bots.adoption import open_live_exchange
from worker.bots.model import BotConfig
from worker.exchanges import Exchange, ExchangeCredentials


async def test_a_live_allow_short_futures_bot_shorts_with_its_leverage_and_exits_reduce_only(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(
        conn,
        users["alice"],
        allow_short=True,
        leverage=3,
        trading_pair="BTC/USDT:USDT",
        stop_loss="0.3",
        take_profit="0.3",
    )
    async with FakeBinanceFutures() as fake:
        fake.balances["USDT"] = [Decimal(0), Decimal(0)]  # everything is in the futures wallet

        def factory(cfg: BotConfig, creds: ExchangeCredentials, testnet: bool) -> Exchange:
            return open_live_exchange(
                cfg, creds, testnet, api_base_url=fake.url, enable_rate_limit=False, timeout_ms=1500
            )

        worker = await register_worker(conn)
        async with harness(
            db_url, worker, candles=btc_usdt_candles(tmp_path), keyring=KEYS, live_exchange=factory
        ) as h:
            await h.sync()
            await h.candles(80)
            fake.fail_next("lost_response", path="/fapi/v1/order")
            await h.candles(120)
            assert not fake._failures, "the lost response was never exercised"

    posts = fake.order_posts()
    cids = [p.params["newClientOrderId"] for p in posts]
    assert len(cids) == len(set(cids))  # every decision reached the exchange once
    orders = dict(
        await (
            await conn.execute(
                "select client_order_id, side from public.orders where bot_id = %s", (bot,)
            )
        ).fetchall()
    )
    assert sorted(cids) == sorted(orders)
    trades = await (
        await conn.execute(
            "select direction, status, amount, entry_order_id, exit_order_id from public.trades "
            "where bot_id = %s order by entry_time",
            (bot,),
        )
    ).fetchall()
    assert {"short", "long"} <= {t[0] for t in trades}, trades
    # exits reduce only; entries carry the bot's leverage, set on the account before them
    legs = dict(
        await (
            await conn.execute(
                "select o.client_order_id, 'entry' from public.trades t join public.orders o on o.id = t.entry_order_id"
                " where t.bot_id = %(bot)s union all "
                "select o.client_order_id, 'exit' from public.trades t join public.orders o on o.id = t.exit_order_id"
                " where t.bot_id = %(bot)s",
                {"bot": bot},
            )
        ).fetchall()
    )
    exits = [p for p in posts if legs.get(p.params["newClientOrderId"]) == "exit"]
    entries = [p for p in posts if legs.get(p.params["newClientOrderId"]) == "entry"]
    assert len(exits) + len(entries) == len(posts) and exits and entries
    assert all(p.params.get("reduceOnly") == "true" for p in exits)
    assert all("reduceOnly" not in p.params for p in entries)
    assert all(fake.order_leverage(p.params["newClientOrderId"]) == 3 for p in entries)
    assert [r.params["leverage"] for r in fake.leverage_posts()] == ["3"]
    short_entries = [p for p in entries if p.params["side"] == "SELL"]
    assert short_entries
    # the position on the exchange is the bot's open trade, if any
    open_trades = [t for t in trades if t[1] == "open"]
    expected = sum(
        (Decimal(t[2]) * (-1 if t[0] == "short" else 1) for t in open_trades), Decimal(0)
    )
    assert fake.position().amount == expected
    ((status, error),) = await (
        await conn.execute("select status, error_message from public.bots where id = %s", (bot,))
    ).fetchall()
    assert (status, error) == ("running", None)
