"""Positions under the owner's control: manual trades, closing a position now (at market or
at a limit with a timeout) and stopping a bot with or without closing it, executed by the
worker that leases the bot through the engine's own paths, on paper and on a local fake
answering like Binance; a worker crash between a request and its fill never closes twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fakes.fake_binance import FakeBinance
from tests.integration.test_bot_live import KEYS, btc_usdt_candles, live_bot
from tests.support.bots import create_bot, grant_credits, harness, register_worker, subscribe
from tests.support.db import User, request_as
from tests.support.waiting import wait_for
from worker.bots import requests as requests_module
from worker.bots.model import BotConfig
from worker.exchanges import ExchangeCredentials
from worker.exchanges.live import LiveExchange

# A strategy that never decides anything: every trade of these bots is the owner's.
TICK = Decimal("0.000001")  # ETH/BTC's price precision on binance
QUIET = {"strategy": "rsi", "parameters": {"oversold": 0.01, "overbought": 99.99}}


async def rpc(
    conn: psycopg.AsyncConnection[Any], user: User, call: str, *args: Any, aal: str | None = None
) -> dict[str, Any]:
    async with request_as(conn, user, aal=aal) as cur:
        await cur.execute(f"select * from public.{call}", args)
        row = await cur.fetchone()
    assert row is not None
    return row


async def one(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    row = await (await conn.execute(query, args)).fetchone()
    assert row is not None
    return row


async def paper_bot(conn: psycopg.AsyncConnection[Any], user: User, **fields: Any) -> str:
    await subscribe(conn, user, credits_per_trade="0.5")
    await grant_credits(conn, user, "10")
    return await create_bot(conn, user, **{**QUIET, **fields})


def fake_factory(fake: FakeBinance) -> Any:
    def factory(cfg: BotConfig, creds: ExchangeCredentials, testnet: bool) -> LiveExchange:
        return LiveExchange(
            "binance", creds, api_base_url=fake.url, enable_rate_limit=False, timeout_ms=1500
        )

    return factory


async def test_a_manual_buy_then_a_close_at_market_on_paper(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    bot = await paper_bot(conn, alice)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(3)
        buy = await rpc(conn, alice, "manual_trade(%s, true, 'buy', null, 0.1, 'k1')", bot)
        assert buy["status"] == "pending"
        # a retried call with the same key is the same request; another entry is refused
        same = await rpc(conn, alice, "manual_trade(%s, true, 'buy', null, 0.1, 'k1')", bot)
        assert same["id"] == buy["id"]
        with pytest.raises(psycopg.errors.CheckViolation, match="opening one"):
            await rpc(conn, alice, "manual_trade(%s, true, 'buy', 0.5)", bot)
        await h.runner.requests.run()
        ((close_price,),) = await (
            await conn.execute(
                "select close from public.candles where symbol = 'ETH/BTC' and open_time = %s",
                (h.now - timedelta(minutes=5),),
            )
        ).fetchall()
        trade, status, price, side = await one(
            conn,
            "select id, status, price, side from public.trades where bot_id = %s",
            bot,
        )
        # filled at once at the latest close (to the market's tick), not at the next open
        assert (status, side) == ("open", "buy") and abs(price - close_price) <= TICK
        ((req_status, req_trade),) = await (
            await conn.execute("select status, trade_id from public.position_requests")
        ).fetchall()
        assert (req_status, req_trade) == ("done", trade)
        # the entry's credits were held and charged, as for the bot's own entries
        ((charged,),) = await (
            await conn.execute(
                "select count(*) from public.credit_transfers h join public.credit_transfers p"
                " on p.pending_id = h.id and p.phase = 'post_pending'"
                " where h.metadata ->> 'bot_id' = %s",
                (str(bot),),
            )
        ).fetchall()
        assert charged == 1

        await h.candles(2)
        close = await rpc(conn, alice, "close_position(%s, true)", trade)
        assert close["kind"] == "close" and close["order_type"] == "market"
        await h.runner.requests.run()
        await h.runner.requests.run()  # nothing left to do: executed once
    ((last_close,),) = await (
        await conn.execute(
            "select close from public.candles where symbol = 'ETH/BTC' and open_time = %s",
            (h.now - timedelta(minutes=5),),
        )
    ).fetchall()
    status, exit_price, reason = await one(
        conn, "select status, exit_price, exit_reason from public.trades where id = %s", trade
    )
    assert (status, reason) == ("closed", "manual_close") and abs(exit_price - last_close) <= TICK
    orders = await (
        await conn.execute(
            "select side, order_type, reason, status from public.orders where bot_id = %s"
            " order by created_at",
            (bot,),
        )
    ).fetchall()
    assert orders == [
        ("buy", "market", "manual", "closed"),
        ("sell", "market", "manual_close", "closed"),
    ]
    status, done = await one(
        conn,
        "select status, completed_at is not null from public.position_requests where id = %s",
        close["id"],
    )
    assert (status, done) == ("done", True)
    ((bot_status, total),) = await (
        await conn.execute("select status, total_trades from public.bots where id = %s", (bot,))
    ).fetchall()
    assert (bot_status, total) == ("running", 1)


async def test_close_and_manual_trades_refuse_what_they_must(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    alice, bob = users["alice"], users["bob"]
    bot = await paper_bot(conn, alice)
    trade = await one(
        conn,
        "insert into public.trades (bot_id, user_id, exchange, trading_pair, side, amount, price,"
        " entry_time) values (%s, %s, 'binance', 'ETH/BTC', 'buy', 1, 0.1, now()) returning id",
        bot,
        alice.id,
    )
    cases: list[tuple[User, str, tuple[Any, ...], type[Exception], str]] = [
        (bob, "close_position(%s, true)", (trade[0],), psycopg.errors.NoDataFound, "no position"),
        (alice, "close_position(%s, false)", (trade[0],), psycopg.errors.CheckViolation, "paper"),
        (
            alice,
            "close_position(%s, true, 'limit', 0)",
            (trade[0],),
            psycopg.errors.InvalidParameterValue,
            "limit price",
        ),
        (
            alice,
            "close_position(%s, true, 'limit', 1, 10000000)",
            (trade[0],),
            psycopg.errors.InvalidParameterValue,
            "timeout",
        ),
        (
            alice,
            "manual_trade(%s, true, 'sell', 1)",
            (bot,),
            psycopg.errors.CheckViolation,
            "shorts",
        ),
        (
            alice,
            "manual_trade(%s, true, 'buy', 1)",
            (bot,),
            psycopg.errors.CheckViolation,
            "holds a position",
        ),
    ]
    for user, call, args, error, words in cases:
        with pytest.raises(error, match=words):
            await rpc(conn, user, call, *args)
    await conn.execute(
        "update public.trades set status = 'closed', exit_time = now(), exit_price = 0.2"
    )
    with pytest.raises(psycopg.errors.CheckViolation, match="closed already"):
        await rpc(conn, alice, "close_position(%s, true)", trade[0])
    ((stored,),) = await (
        await conn.execute("select count(*) from public.position_requests")
    ).fetchall()
    assert stored == 0


async def test_stop_with_close_closes_then_stops_and_keep_stops_at_once(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    closing = await paper_bot(conn, alice, name="closing")
    keeping = await create_bot(conn, alice, name="keeping", **QUIET)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(2)
        for bot in (closing, keeping):
            await rpc(conn, alice, "manual_trade(%s, true, 'buy', null, 0.1)", bot)
        await h.runner.requests.run()
        await h.candles(1)

        kept = await rpc(conn, alice, "stop_bot(%s, 'keep')", keeping)
        assert (kept["status"], kept["stop_positions"]) == ("stopped", "keep")
        stopping = await rpc(conn, alice, "stop_bot(%s, 'close')", closing)
        # still running until its position is closed
        assert (stopping["status"], stopping["stop_positions"]) == ("running", "close")
        await h.runner.requests.run()
        await h.sync()
        assert closing not in h.leases.owned and keeping not in h.leases.owned
    rows = await (
        await conn.execute(
            "select b.name, b.status, b.status_reason, t.status, t.exit_reason from public.bots b"
            " join public.trades t on t.bot_id = b.id order by b.name"
        )
    ).fetchall()
    assert rows == [
        (
            "closing",
            "stopped",
            "stopped by its owner: the open position was closed",
            "closed",
            "manual_close",
        ),
        ("keeping", "stopped", "stopped by its owner: the open position is kept", "open", None),
    ]


async def test_a_limit_close_that_does_not_fill_is_cancelled_or_goes_to_market(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    cancel = await paper_bot(conn, alice, name="cancel")
    market = await create_bot(conn, alice, name="market", **QUIET)
    fills = await create_bot(conn, alice, name="fills", **QUIET)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(2)
        for bot in (cancel, market, fills):
            await rpc(conn, alice, "manual_trade(%s, true, 'buy', null, 0.1)", bot)
        await h.runner.requests.run()
        trades = {
            str(b): t
            for b, t in await (
                await conn.execute("select bot_id, id from public.trades")
            ).fetchall()
        }
        # far above the market: it never fills
        await rpc(
            conn, alice, "close_position(%s, true, 'limit', 9, 600, 'cancel')", trades[cancel]
        )
        await rpc(conn, alice, "close_position(%s, true, 'limit', 9, 600)", trades[market])
        # below the market: it fills at the next candle's open
        await rpc(conn, alice, "close_position(%s, true, 'limit', 0.0001, 600)", trades[fills])
        await h.runner.requests.run()
        await h.candles(1)  # the far limit orders rest through a candle
        await h.runner.requests.run(h.now + timedelta(seconds=60))
        working = await (
            await conn.execute(
                "select b.name, r.status from public.position_requests r join public.bots b"
                " on b.id = r.bot_id where r.kind = 'close' order by b.name"
            )
        ).fetchall()
        assert working == [("cancel", "working"), ("fills", "done"), ("market", "working")]
        await h.runner.requests.run(h.now + timedelta(seconds=601))
    rows = await (
        await conn.execute(
            "select b.name, r.status, r.status_reason, t.status from public.position_requests r"
            " join public.bots b on b.id = r.bot_id join public.trades t on t.bot_id = b.id"
            " where r.kind = 'close' order by b.name"
        )
    ).fetchall()
    assert rows == [
        (
            "cancel",
            "cancelled",
            "the limit order did not fill within 600 s: cancelled, the position stays open",
            "open",
        ),
        ("fills", "done", "the position is closed", "closed"),
        ("market", "done", "the limit order did not fill within 600 s: closed at market", "closed"),
    ]
    orders = await (
        await conn.execute(
            "select b.name, o.order_type, o.status from public.orders o join public.bots b"
            " on b.id = o.bot_id where o.side = 'sell' order by b.name, o.created_at"
        )
    ).fetchall()
    assert orders == [
        ("cancel", "limit", "canceled"),
        ("fills", "limit", "closed"),
        ("market", "limit", "canceled"),
        ("market", "market", "closed"),
    ]


async def test_live_money_needs_aal2_and_a_crash_between_close_and_record_closes_once(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = users["alice"]
    bot = await live_bot(conn, alice, **QUIET)
    candles = btc_usdt_candles(tmp_path)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="aal2"):
        await rpc(conn, alice, "manual_trade(%s, false, 'buy', 0.01)", bot)
    async with FakeBinance() as fake:
        worker = await register_worker(conn)
        async with harness(
            db_url, worker, candles=candles, keyring=KEYS, live_exchange=fake_factory(fake)
        ) as h:
            await h.sync()
            await h.candles(2)
            await rpc(conn, alice, "manual_trade(%s, false, 'buy', 0.01)", bot, aal="aal2")
            await h.runner.requests.run()
            (trade,) = await one(conn, "select id from public.trades where bot_id = %s", bot)
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="aal2"):
                await rpc(conn, alice, "close_position(%s, false)", trade)
            close = await rpc(conn, alice, "close_position(%s, false)", trade, aal="aal2")

            async def crash(*args: Any, **kwargs: Any) -> set[str]:
                raise OSError("worker killed before the close was recorded")

            # The exchange takes the close; the worker dies before the database knows.
            monkeypatch.setattr(requests_module, "persist_steps", crash)
            with pytest.raises(OSError):
                await h.runner.requests.run()
            monkeypatch.undo()
            now = h.now
        sells = [p for p in fake.order_posts() if p.params["side"] == "SELL"]
        assert len(sells) == 1
        ((status,),) = await (
            await conn.execute("select status from public.trades where id = %s", (trade,))
        ).fetchall()
        assert status == "open"
        # another worker takes the bot over and executes the request again
        await conn.execute("update public.bot_leases set worker_id = null, expires_at = now()")
        worker2 = await register_worker(conn, "second")
        async with harness(
            db_url, worker2, now, candles=candles, keyring=KEYS, live_exchange=fake_factory(fake)
        ) as h2:
            await h2.sync()
            await h2.runner.requests.run()
            await h2.candles(1)
        sells = [p for p in fake.order_posts() if p.params["side"] == "SELL"]
    assert len(sells) == 1, "the close reached the exchange once"
    status, reason, exit_price = await one(
        conn, "select status, exit_reason, exit_price from public.trades where id = %s", trade
    )
    assert (status, reason, exit_price) == ("closed", "manual_close", Decimal("43000"))
    ((req_status, cid),) = await (
        await conn.execute(
            "select status, client_order_id from public.position_requests where id = %s",
            (close["id"],),
        )
    ).fetchall()
    assert req_status == "done" and cid == sells[0].params["newClientOrderId"]


async def test_a_running_worker_executes_a_request_without_being_asked(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    bot = await paper_bot(conn, alice)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(2)
        running = asyncio.create_task(h.runner.run())
        try:
            await rpc(conn, alice, "manual_trade(%s, true, 'buy', null, 0.1)", bot)

            async def opened() -> bool:
                row = await (
                    await conn.execute("select status from public.position_requests")
                ).fetchone()
                return row is not None and row[0] == "done"

            await wait_for("the worker to open the manual trade", opened)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    ((status,),) = await (
        await conn.execute("select status from public.trades where bot_id = %s", (bot,))
    ).fetchall()
    assert status == "open"


async def test_a_live_limit_close_that_times_out_is_cancelled_then_closed_at_market(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    alice = users["alice"]
    bot = await live_bot(conn, alice, **QUIET)
    async with FakeBinance() as fake:
        worker = await register_worker(conn)
        async with harness(
            db_url,
            worker,
            candles=btc_usdt_candles(tmp_path),
            keyring=KEYS,
            live_exchange=fake_factory(fake),
        ) as h:
            await h.sync()
            await h.candles(2)
            await rpc(conn, alice, "manual_trade(%s, false, 'buy', 0.01)", bot, aal="aal2")
            await h.runner.requests.run()
            (trade,) = await one(conn, "select id from public.trades where bot_id = %s", bot)
            # far above the market: the exchange keeps it open
            await rpc(
                conn, alice, "close_position(%s, false, 'limit', 90000, 600)", trade, aal="aal2"
            )
            await h.runner.requests.run()
            await h.candles(1)
            await h.runner.requests.run(h.now + timedelta(seconds=60))
            ((working,),) = await (
                await conn.execute(
                    "select status from public.position_requests where kind = 'close'"
                )
            ).fetchall()
            assert working == "working"
            await h.runner.requests.run(h.now + timedelta(seconds=601))
        sells = [
            (p.params["type"], p.params.get("price"))
            for p in fake.order_posts()
            if p.params["side"] == "SELL"
        ]
    assert sells == [("LIMIT", "90000"), ("MARKET", None)]
    orders = await (
        await conn.execute(
            "select order_type, status from public.orders where side = 'sell' order by created_at"
        )
    ).fetchall()
    assert orders == [("limit", "canceled"), ("market", "closed")]
    status, reason = await one(
        conn, "select status, exit_reason from public.trades where id = %s", trade
    )
    assert (status, reason) == ("closed", "manual_close")


async def test_a_database_failure_mid_pass_reloads_the_bots_instead_of_forgetting_a_close(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = users["alice"]
    # requests run bot by bot in id order: the first one's close, then the second one's entry
    first, second = sorted([await paper_bot(conn, alice), await create_bot(conn, alice, **QUIET)])
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(2)
        await rpc(conn, alice, "manual_trade(%s, true, 'buy', null, 0.1)", first)
        await h.runner.requests.run()
        (trade,) = await one(conn, "select id from public.trades where bot_id = %s", first)
        await rpc(conn, alice, "close_position(%s, true)", trade)
        await rpc(conn, alice, "manual_trade(%s, true, 'buy', null, 0.1)", second)

        async def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise OSError("the database went away")

        # The first bot's close runs in memory, then the second's credit hold fails.
        monkeypatch.setattr(h.runner.credits, "hold", unavailable)
        with pytest.raises(OSError):
            await h.runner.requests.run()
        monkeypatch.undo()
        await h.candles(1)  # the bots thrown away are loaded again
        await h.runner.requests.run()
    rows = await (
        await conn.execute("select bot_id::text, status, exit_reason from public.trades")
    ).fetchall()
    assert sorted(rows) == [(first, "closed", "manual_close"), (second, "open", None)]
    statuses = await (
        await conn.execute("select status from public.position_requests order by created_at")
    ).fetchall()
    assert statuses == [("done",), ("done",), ("done",)]


async def test_a_part_of_a_position_closes_at_a_limit_or_at_market_and_the_rest_stays_open(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    at_limit = await paper_bot(conn, alice, name="limit")
    at_market = await create_bot(conn, alice, name="market", **QUIET)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(2)
        for bot in (at_limit, at_market):
            await rpc(conn, alice, "manual_trade(%s, true, 'buy', 2)", bot)
        await h.runner.requests.run()
        trades = dict(
            await (await conn.execute("select bot_id::text, id from public.trades")).fetchall()
        )
        # half of it at a limit below the market (it fills at the next open), 0.5 at market
        await rpc(
            conn,
            alice,
            "close_position(%s, true, 'limit', 0.0001, 600, 'market', null, null, null, 0.5)",
            trades[at_limit],
        )
        await rpc(
            conn,
            alice,
            "close_position(%s, true, 'market', null, null, 'market', null, null, 0.5)",
            trades[at_market],
        )
        await h.runner.requests.run()
        await h.candles(1)
        await h.runner.requests.run(h.now + timedelta(seconds=60))
        await h.runner.requests.run(h.now + timedelta(seconds=601))  # nothing more is closed
    rows = await (
        await conn.execute(
            "select b.name, t.id = r.trade_id, t.status, t.amount, t.exit_reason"
            " from public.trades t join public.bots b on b.id = t.bot_id"
            " join public.position_requests r on r.bot_id = b.id and r.kind = 'close'"
            " order by b.name, t.status desc"
        )
    ).fetchall()
    assert rows == [
        ("limit", True, "open", Decimal(1), None),  # the rest, under the position's id
        ("limit", False, "closed", Decimal(1), "manual_close"),
        ("market", True, "open", Decimal("1.5"), None),
        ("market", False, "closed", Decimal("0.5"), "manual_close"),
    ]
    requests = await (
        await conn.execute(
            "select b.name, r.status, r.amount from public.position_requests r"
            " join public.bots b on b.id = r.bot_id where r.kind = 'close' order by b.name"
        )
    ).fetchall()
    assert requests == [("limit", "done", Decimal(1)), ("market", "done", Decimal("0.5"))]
    sells = await (
        await conn.execute(
            "select b.name, o.order_type, o.amount from public.orders o join public.bots b"
            " on b.id = o.bot_id where o.side = 'sell' order by b.name"
        )
    ).fetchall()
    assert sells == [("limit", "limit", Decimal(1)), ("market", "market", Decimal("0.5"))]
