"""Multi-pair paper bots run by the real runner: a pair that cannot trade is named on the bot
while its other pairs trade on; credits are held per entry; the owner closes one position
of several by its trade."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from tests.fakes.fake_binance import FakeBinance
from tests.fakes.fake_binance_futures import BTCUSDT_PERPETUAL, FakeBinanceFutures
from tests.integration.test_bot_live import live_bot
from tests.integration.test_bot_protection import a_worker, on_fake, protective, rows
from tests.integration.test_position_requests import rpc
from tests.support.bots import (
    CANDLES,
    bot_status,
    create_bot,
    grant_credits,
    harness,
    register_worker,
    subscribe,
)
from tests.support.db import User

START = datetime(2018, 1, 14, 0, 0, tzinfo=UTC)
PARAMS = {"fast": 10, "slow": 20}


async def test_a_pair_that_cannot_trade_is_named_and_the_others_trade_on(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    alice = users["alice"]
    await subscribe(conn, alice, credits_per_trade="0.5")
    await grant_credits(conn, alice, "100")
    # FOO/BTC: a pair the exchange's markets lack (its candles, for this test only, are
    # ETH/BTC's recorded ones under that name, so its strategy wants entries).
    for name in ("ETH_BTC-5m.csv", "LTC_BTC-5m.csv"):
        (tmp_path / name).symlink_to(CANDLES / name)
    (tmp_path / "FOO_BTC-5m.csv").symlink_to(CANDLES / "ETH_BTC-5m.csv")
    bot = await create_bot(
        conn,
        alice,
        trading_pair="FOO/BTC",
        pairs=["FOO/BTC", "ETH/BTC", "LTC/BTC"],
        parameters=PARAMS,
        initial_balance="1",
        stake_amount="0.1",
        max_open_trades=2,
    )
    worker = await register_worker(conn, f"multi-{uuid.uuid4().hex[:6]}")
    async with harness(db_url, worker, START, candles=tmp_path) as h:
        await h.sync()
        await h.candles(300)
    status, error = await bot_status(conn, bot)
    assert (status, error) == ("running", None)
    notes = await (
        await conn.execute(
            "select title, body from notifications where user_id = %s and data ->> 'pair' = 'FOO/BTC'",
            (alice.id,),
        )
    ).fetchall()
    assert len(notes) == 1 and notes[0][1].startswith("FOO/BTC: ")
    per_pair = dict(
        await (
            await conn.execute(
                "select trading_pair, count(*) from trades where bot_id = %s group by 1", (bot,)
            )
        ).fetchall()
    )
    assert "FOO/BTC" not in per_pair
    assert per_pair.get("ETH/BTC", 0) >= 5 and per_pair.get("LTC/BTC", 0) >= 5
    ((logged,),) = await (
        await conn.execute(
            "select count(*) from bot_logs where bot_id = %s and context ->> 'action' = 'pair_error'"
            " and context ->> 'pair' = 'FOO/BTC'",
            (bot,),
        )
    ).fetchall()
    assert logged >= 1
    # one credit hold per entry order, posted when it filled
    ((entries,),) = await (
        await conn.execute(
            "select count(*) from orders where bot_id = %s and client_order_id in "
            "(select o.client_order_id from orders o join trades t on t.entry_order_id = o.id"
            " where t.bot_id = %s)",
            (bot, bot),
        )
    ).fetchall()
    ((posted,),) = await (
        await conn.execute(
            "select count(*) from public.credit_transfers h join public.credit_transfers p"
            " on p.pending_id = h.id and p.phase = 'post_pending'"
            " where h.metadata ->> 'bot_id' = %s",
            (bot,),
        )
    ).fetchall()
    assert entries == sum(per_pair.values()) and posted == entries


async def test_the_owner_closes_one_position_of_a_multi_pair_bot(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "100")
    bot = await create_bot(
        conn,
        alice,
        trading_pair="ETH/BTC",
        pairs=["ETH/BTC", "LTC/BTC", "XMR/BTC"],
        parameters=PARAMS,
        initial_balance="1",
        stake_amount="0.1",
        max_open_trades=3,
    )
    worker = await register_worker(conn, f"multi-{uuid.uuid4().hex[:6]}")
    async with harness(db_url, worker, START) as h:
        await h.sync()
        for _ in range(600):
            await h.candles(1)
            legs = h.runner.bots[bot].legs
            held = [g for g in legs if g.position is not None and not g.in_flight]
            if len(held) >= 2:
                break
        assert len(held) >= 2, "two positions open at once"
        target, other = held[0], held[1]
        trade = str(target.position.trade_id)  # type: ignore[union-attr]
        kept = str(other.position.trade_id)  # type: ignore[union-attr]
        await rpc(conn, alice, "close_position(%s, true)", trade)
        await h.runner.requests.run()
    rows = dict(
        await (
            await conn.execute(
                "select id::text, (status, exit_reason, trading_pair) from trades"
                " where id = any(%s::uuid[])",
                ([trade, kept],),
            )
        ).fetchall()
    )
    assert rows[trade] == ("closed", "manual_close", target.config.symbol)
    assert rows[kept] == ("open", None, other.config.symbol)


def usdt_candles(tmp: Path) -> Path:
    """Real 2018 candle shapes scaled to BTC/USDT and ETH/USDT prices (the fake exchange's)."""
    for pair, source, scale in (("BTC_USDT", "ETH_BTC", 450_000), ("ETH_USDT", "LTC_BTC", 140_000)):
        src = (CANDLES / f"{source}-5m.csv").read_text().splitlines()
        out = [src[0]]
        for line in src[1:]:
            d, *nums = line.split(",")
            out.append(",".join([d, *(f"{float(x) * scale:.2f}" for x in nums[:4]), nums[4]]))
        (tmp / f"{pair}-5m.csv").write_text("\n".join(out) + "\n")
    return tmp


async def test_a_live_multi_pair_bot_rests_a_stop_per_position_and_survives_a_takeover(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(
        conn,
        users["alice"],
        trading_pair="BTC/USDT",
        pairs=["BTC/USDT", "ETH/USDT"],
        stop_loss="2",
        max_open_trades=2,
    )
    candles = usdt_candles(tmp_path)
    prices = {"BTCUSDT": Decimal("43000.00"), "ETHUSDT": Decimal("2500.00")}
    async with FakeBinance(prices=prices) as fake:
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            for _ in range(400):
                await h.candles(1)
                legs = h.runner.bots[bot].legs
                if all(g.position is not None and not g.in_flight for g in legs):
                    break
            assert all(g.position is not None for g in h.runner.bots[bot].legs)
            now = h.now
        async with a_worker(conn, db_url, fake, candles, "second", now) as h2:
            assert [g.position is not None for g in h2.runner.bots[bot].legs] == [True, True]
            await h2.candles(3)
    open_trades = await rows(
        conn, "select * from public.trades where bot_id = %s and status = 'open'", bot
    )
    stops = [p for p in await protective(conn, bot) if p["status"] == "open"]
    # one stop resting on the exchange per open position, on its own pair
    assert sorted((s["trade_id"], s["kind"]) for s in stops) == sorted(
        (t["id"], "stop_loss") for t in open_trades
    )
    for s in stops:
        order = on_fake(fake, s["client_order_id"])
        trade = next(t for t in open_trades if t["id"] == s["trade_id"])
        assert order["symbol"] == trade["trading_pair"].replace("/", "")
        assert Decimal(order["origQty"]) == trade["amount"]
    cids = [p.params["newClientOrderId"] for p in fake.order_posts()]
    assert len(cids) == len(set(cids)), "no client order id posted twice"
    ((epoch,),) = await (
        await conn.execute("select max(lease_epoch) from public.orders where bot_id = %s", (bot,))
    ).fetchall()
    assert epoch >= 1


async def test_a_live_multi_pair_futures_bot_shorts_and_rests_a_stop_per_position(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    """On Binance USD-M perpetuals each pair holds a long or a short under the one cap; every
    open position rests its own reduce-only stop on the exchange, on the right side, and a
    second worker takes the bot over with all of it in place."""
    bot = await live_bot(
        conn,
        users["alice"],
        trading_pair="BTC/USDT:USDT",
        pairs=["BTC/USDT:USDT", "ETH/USDT:USDT"],
        allow_short=True,
        stop_loss="2",
        max_open_trades=2,
    )
    candles = usdt_candles(tmp_path)
    async with FakeBinanceFutures() as fake:
        fake.futures_symbols.append(
            {**BTCUSDT_PERPETUAL, "symbol": "ETHUSDT", "pair": "ETHUSDT", "baseAsset": "ETH"}
        )
        fake.prices["ETHUSDT"] = Decimal("2500.00")
        async with a_worker(conn, db_url, fake, candles, "first") as h:
            for _ in range(500):
                await h.candles(1)
                legs = h.runner.bots[bot].legs
                held = [g.position for g in legs if g.position is not None and not g.in_flight]
                if len(held) == 2 and any(not p.long for p in held):
                    break
            assert len(held) == 2 and any(not p.long for p in held), "a short among two"
            now = h.now
        async with a_worker(conn, db_url, fake, candles, "second", now) as h2:
            assert [g.position is not None for g in h2.runner.bots[bot].legs] == [True, True]
            await h2.candles(2)
    trades = await rows(conn, "select * from public.trades where bot_id = %s", bot)
    assert {t["direction"] for t in trades} == {"long", "short"}
    open_trades = [t for t in trades if t["status"] == "open"]
    stops = [p for p in await protective(conn, bot) if p["status"] == "open"]
    assert sorted((s["trade_id"], s["kind"]) for s in stops) == sorted(
        (t["id"], "stop_loss") for t in open_trades
    )
    algos = {a["clientAlgoId"]: a for a in fake.algo_orders.values()}
    for s in stops:
        trade = next(t for t in open_trades if t["id"] == s["trade_id"])
        algo = algos[s["client_order_id"]]
        short = trade["direction"] == "short"
        assert algo["symbol"] == trade["trading_pair"].split(":")[0].replace("/", "")
        assert algo["orderType"] == "STOP_MARKET" and algo["reduceOnly"]
        assert algo["side"] == ("BUY" if short else "SELL")
        # a short's stop is above its entry, a long's below
        assert (Decimal(algo["triggerPrice"]) > trade["price"]) == short
    # the exchange's positions are the bot's open trades, pair by pair
    for symbol, pair in (("BTCUSDT", "BTC/USDT:USDT"), ("ETHUSDT", "ETH/USDT:USDT")):
        signed = sum(
            (
                t["amount"] * (-1 if t["direction"] == "short" else 1)
                for t in open_trades
                if t["trading_pair"] == pair
            ),
            Decimal(0),
        )
        assert fake.position(symbol).amount == signed, pair
    cids = [p.params["newClientOrderId"] for p in fake.order_posts()]
    assert len(cids) == len(set(cids)), "no client order id posted twice"
    status, error = await bot_status(conn, bot)
    assert (status, error) == ("running", None)


async def test_a_manual_trade_on_a_multi_pair_bot_trades_the_pair_it_names(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "100")
    bot = await create_bot(
        conn,
        alice,
        trading_pair="ETH/BTC",
        pairs=["ETH/BTC", "LTC/BTC", "XMR/BTC"],
        parameters=PARAMS,
        initial_balance="1",
        stake_amount="0.1",
        max_open_trades=3,
    )
    worker = await register_worker(conn, f"multi-{uuid.uuid4().hex[:6]}")
    async with harness(db_url, worker, START) as h:
        await h.sync()
        await h.candles(1)
        req = await rpc(
            conn, alice, "manual_trade(%s, true, 'buy', null, 0.05, null, 'XMR/BTC')", bot
        )
        await h.runner.requests.run()
    ((status, trade_id, pair),) = await (
        await conn.execute(
            "select r.status, r.trade_id, t.trading_pair from position_requests r"
            " left join trades t on t.id = r.trade_id where r.id = %s",
            (req["id"],),
        )
    ).fetchall()
    assert (status, pair) == ("done", "XMR/BTC") and trade_id is not None
