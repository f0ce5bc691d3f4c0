"""Signals end to end on the real database: a provider publishes, the fleet copies the
signal onto subscribers' paper bots, notifies everyone (in the app and on Telegram), and
closes the copies when the signal closes."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import respx
from psycopg_pool import AsyncConnectionPool

from tests.support.db import User, create_user, request_as
from tests.support.fleet import run_queued_jobs
from worker import notify, signals
from worker.fleet.registry import Registry
from worker.notify.channels import DiscordChannel, TelegramChannel
from worker.signals import SignalsSettings

TOKEN = "123:abc"


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def registry() -> AsyncIterator[Registry]:
    async with httpx.AsyncClient() as http:
        reg = Registry()
        signals.register(reg, SignalsSettings())
        notify.register(
            reg,
            {
                "telegram": TelegramChannel(http, TOKEN, sleep=_no_sleep),
                "discord": DiscordChannel(http, sleep=_no_sleep),
            },
        )
        yield reg


async def one(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    row = await (await conn.execute(query, args)).fetchone()
    assert row is not None
    return row[0]


async def running_paper_bot(
    conn: psycopg.AsyncConnection[Any], user: User, **extra: Any
) -> uuid.UUID:
    bot = uuid.uuid4()
    cols = {"stake_amount": 100, "max_open_trades": 3, "allow_short": False, **extra}
    await conn.execute(
        "insert into bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, "
        "current_balance, stake_amount, max_open_trades, allow_short, status) "
        "values (%s, %s, 'copy', 'binance', 'BTC/USDT', '1h', 'rules', 1000, 1000, %s, %s, %s, 'running')",
        (bot, user.id, cols["stake_amount"], cols["max_open_trades"], cols["allow_short"]),
    )
    # The worker that runs the bot holds its lease (epoch 7).
    await conn.execute(
        "insert into bot_leases (bot_id, epoch, expires_at) values (%s, 7, now() + interval '1 minute')",
        (bot,),
    )
    return bot


@pytest.fixture
async def market(conn: psycopg.AsyncConnection[Any], users: dict[str, User]) -> uuid.UUID:
    strategy = uuid.uuid4()
    await conn.execute(
        "insert into strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price) "
        "values (%s, %s, 'Pat Momentum', 'marketplace', true, true, 10)",
        (strategy, users["provider"].id),
    )
    return strategy


async def subscribe(
    conn: psycopg.AsyncConnection[Any],
    user: User,
    strategy: uuid.UUID,
    bot: uuid.UUID | None = None,
    sizing: dict[str, Any] | None = None,
) -> None:
    async with request_as(conn, user) as cur:
        await cur.execute(
            "select public.subscribe_to_strategy(%s, %s, %s, %s)",
            (strategy, bot is not None, bot, json.dumps(sizing or {})),
        )


async def grant(conn: psycopg.AsyncConnection[Any], user: User, amount: int) -> None:
    await conn.execute("select public.credit_grant(%s, %s, %s)", (uuid.uuid4(), user.id, amount))


async def publish(
    conn: psycopg.AsyncConnection[Any], provider: User, strategy: uuid.UUID, **fields: Any
) -> uuid.UUID:
    row = {
        "pair": "BTC/USDT",
        "side": "long",
        "entry_price": 100,
        "stop_loss": 90,
        "take_profit": 120,
        **fields,
    }
    async with request_as(conn, provider) as cur:
        await cur.execute(
            "insert into signals (strategy_id, pair, side, entry_price, stop_loss, take_profit) "
            "values (%s, %s, %s, %s, %s, %s) returning id",
            (
                strategy,
                row["pair"],
                row["side"],
                row["entry_price"],
                row["stop_loss"],
                row["take_profit"],
            ),
        )
        got = await cur.fetchone()
    assert got is not None
    return uuid.UUID(str(got["id"]))


async def test_a_signal_is_copied_onto_subscribers_bots_and_closed_with_them(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
    market: uuid.UUID,
) -> None:
    alice, bob, pat = users["alice"], users["bob"], users["provider"]
    carol = await create_user(conn, "carol@test.local")
    dave = await create_user(conn, "dave@test.local")
    for u in (alice, bob, carol):
        await grant(conn, u, 50)
    alice_bot = await running_paper_bot(conn, alice)
    carol_bot = await running_paper_bot(conn, carol, max_open_trades=1)
    await subscribe(conn, alice, market, alice_bot, {"mode": "fixed_quote", "amount": 250})
    await subscribe(conn, bob, market)  # follows without copying
    await subscribe(conn, carol, market, carol_bot)
    await grant(conn, dave, 10)
    dave_bot = await running_paper_bot(conn, dave)
    await subscribe(conn, dave, market, dave_bot)  # pays the month with his last 10 credits
    # carol's only slot is taken by a trade of her own.
    await conn.execute(
        "insert into trades (bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time, lease_epoch) "
        "values (%s, %s, 'binance', 'ETH/USDT', 'buy', 1, 10, now(), 7)",
        (carol_bot, carol.id),
    )

    signal = await publish(conn, pat, market)
    [opened] = await run_queued_jobs(conn, pool, registry, "signals.")
    assert opened == {"executed": 1, "skipped": 2, "notified": 4, "charged": 1, "rejected": 0}

    async with request_as(conn, alice) as cur:
        await cur.execute(
            "select symbol, side, amount, average_price, status, lease_epoch from orders"
        )
        assert await cur.fetchall() == [
            {
                "symbol": "BTC/USDT",
                "side": "buy",
                "amount": Decimal("2.5"),
                "average_price": Decimal("100"),
                "status": "closed",
                "lease_epoch": 7,
            }
        ]
        await cur.execute("select status, stop_loss_price, take_profit_price from trades")
        assert await cur.fetchall() == [
            {
                "status": "open",
                "stop_loss_price": Decimal("90"),
                "take_profit_price": Decimal("120"),
            }
        ]
        await cur.execute("select kind, title from notifications where kind <> 'payment'")
        assert await cur.fetchall() == [
            {"kind": "fill", "title": "Copied: Pat Momentum LONG BTC/USDT"}
        ]
    skipped = {
        r[0]: r[1]
        for r in await (
            await conn.execute(
                "select subscriber_id, reason from signal_executions where status = 'skipped'"
            )
        ).fetchall()
    }
    assert skipped == {carol.id: "max_open_trades", dave.id: "insufficient_credits"}
    assert (
        await one(
            conn,
            "select kind from notifications where user_id = %s order by created_at desc limit 1",
            dave.id,
        )
        == "low_credits"
    )
    assert (
        await one(
            conn,
            "select kind from notifications where user_id = %s order by created_at desc limit 1",
            bob.id,
        )
        == "signal"
    )
    # 50 - 10 (the month) - 1 (credits_per_trade of the Free plan)
    assert await one(
        conn, "select balance from credit_accounts where user_id = %s and kind = 'user'", alice.id
    ) == Decimal("39")

    # Running the fan-out again (a retried job) changes nothing.
    assert await signals.fan_out(pool, signal) == {
        "executed": 0,
        "skipped": 0,
        "notified": 0,
        "charged": 0,
        "rejected": 0,
    }
    assert await one(conn, "select count(*) from orders") == 1

    # The provider's exit must lie within what the market traded, so the fleet holds prices.
    await conn.execute(
        "insert into candles (exchange, symbol, timeframe, open_time, open, high, low, close) "
        "values ('binance', 'BTC/USDT', '1h', date_trunc('hour', now()) - interval '1 hour', "
        "104, 112, 103, 110)"
    )
    async with request_as(conn, pat) as cur:
        await cur.execute(
            "update signals set action = 'close', exit_price = 110 where id = %s", (signal,)
        )
    [closed] = await run_queued_jobs(conn, pool, registry, "signals.")
    assert closed["executed"] == 1
    async with request_as(conn, alice) as cur:
        await cur.execute("select status, exit_price, exit_reason, profit from trades")
        [trade] = await cur.fetchall()
    assert (trade["status"], trade["exit_price"], trade["exit_reason"]) == (
        "closed",
        Decimal("110"),
        "signal_closed",
    )
    assert trade["profit"] == Decimal("24.475")  # 2.5 * 10 minus 0.1% fees on both fills
    assert await one(conn, "select winning_trades from bots where id = %s", alice_bot) == 1
    assert (
        await one(conn, "select performance ->> 'win_rate' from strategies where id = %s", market)
        == "100.00"
    )


async def test_subscribers_can_read_only_what_they_subscribe_to(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    market: uuid.UUID,
) -> None:
    await grant(conn, users["alice"], 20)
    await publish(conn, users["provider"], market)
    await subscribe(conn, users["alice"], market)
    for who, seen in ((users["alice"], 1), (users["bob"], 0), (users["provider"], 1)):
        async with request_as(conn, who) as cur:
            await cur.execute("select count(*) as n from signals")
            assert (await cur.fetchone() or {})["n"] == seen


@respx.mock
async def test_opted_in_users_get_the_signal_on_telegram_too(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
    market: uuid.UUID,
) -> None:
    send = respx.post(f"https://api.telegram.org/bot{TOKEN}/sendMessage").mock(
        side_effect=[httpx.Response(500), httpx.Response(200, json={"ok": True})]
    )
    bob = users["bob"]
    await grant(conn, bob, 20)
    await subscribe(conn, bob, market)
    async with request_as(conn, bob) as cur:
        await cur.execute("update profiles set telegram_chat_id = '4242' where id = %s", (bob.id,))
    await publish(conn, users["provider"], market)
    await run_queued_jobs(conn, pool, registry, "signals.")
    results = await run_queued_jobs(conn, pool, registry, "notify.")
    assert results == [{"sent": 1, "failed": 0, "retry": 0}]
    assert send.call_count == 2
    assert b'"chat_id":"4242"' in send.calls.last.request.read()
    channels = await one(
        conn, "select channels from notifications where user_id = %s and kind = 'signal'", bob.id
    )
    assert channels["telegram"]["status"] == "sent"
