"""What a live close costs in exchange requests (local Binance fake), and what it must
not save: an order of a candle that closed after the worker loaded the bot is posted
without a lookup first, while one a previous owner may have placed is looked up and found,
never posted twice; one balance read per account and close serves all its bots' entries;
a cancel the exchange answers with the canceled order needs no read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from tests.fakes.fake_binance import FakeBinance
from tests.integration.test_bot_live import btc_usdt_candles
from tests.integration.test_bot_protection import a_worker
from tests.integration.test_bot_protection_survey import two_bots_on_one_key
from tests.support.db import User
from worker.bots import trades
from worker.bots.model import BotConfig, BotState
from worker.exchanges import ExchangeCredentials, OrderStatus, make_client_order_id
from worker.exchanges import protective as xp
from worker.exchanges.live import LiveExchange

ORDER = "/api/v3/order"
ACCOUNT = "/api/v3/account"
T = datetime(2018, 1, 12, 10, 0, tzinfo=UTC)  # a 5m candle's open; it closes at 10:05
CREDS = ExchangeCredentials("test-key", "test-secret")


def live_bot(ex: LiveExchange, loaded_at: datetime) -> BotState:
    cfg = BotConfig.from_row(
        {
            "id": "b0700000-0000-4000-8000-00000000000b",
            "user_id": "a11ce000-0000-4000-8000-000000000001",
            "name": "t",
            "exchange": "binance",
            "trading_pair": "BTC/USDT",
            "timeframe": "5m",
            "strategy": "sma_cross",
            "parameters": {"fast": 3, "slow": 8},
            "stake_amount": "500",
            "initial_balance": "10000",
            "is_paper_trade": False,
        }
    )
    return BotState(cfg, 1, ex, loaded_at=loaded_at)


def lookups(fake: FakeBinance, cid: str) -> int:
    return sum(
        1
        for r in fake.requests
        if r.method == "GET" and r.path == ORDER and r.params.get("origClientOrderId") == cid
    )


def posts(fake: FakeBinance, cid: str) -> int:
    return sum(1 for r in fake.order_posts() if r.params.get("newClientOrderId") == cid)


async def test_only_an_order_no_previous_owner_can_have_placed_skips_the_lookup() -> None:
    async with (
        FakeBinance() as fake,
        LiveExchange("binance", CREDS, api_base_url=fake.url, enable_rate_limit=False) as ex,
    ):
        await ex.load_markets()
        amount = Decimal("0.01")
        # Loaded before the candle closed: only this worker can have stepped it.
        bot = live_bot(ex, T + timedelta(minutes=4))
        assert trades.never_sent(bot, T)
        new = make_client_order_id("bot", T.isoformat(), "entry")
        order = await trades.place_market(bot, "buy", amount, new, opening=True, fresh=True)
        assert order.status is OrderStatus.CLOSED
        assert (posts(fake, new), lookups(fake, new)) == (1, 0)

        # A previous owner placed (and filled) the entry of the candle, then died before
        # recording it; the worker taking over loaded the bot once that candle had closed.
        taken = make_client_order_id("bot", (T + timedelta(minutes=5)).isoformat(), "entry")
        await ex.create_order("BTC/USDT", "buy", "market", amount, client_order_id=taken)
        bot = live_bot(ex, T + timedelta(minutes=10))
        fresh = trades.never_sent(bot, T + timedelta(minutes=5))
        again = await trades.place_market(bot, "buy", amount, taken, opening=True, fresh=fresh)
        assert posts(fake, taken) == 1  # found, not bought a second time
        assert again.client_order_id == taken and again.status is OrderStatus.CLOSED
        assert lookups(fake, taken) == 1
        assert not fresh
        assert not trades.never_sent(live_bot(ex, T + timedelta(minutes=5)), T)  # at the close

        # A bot loaded by no candle step (``loaded_at`` unknown) always looks first.
        unknown = live_bot(ex, T)
        unknown.loaded_at = None
        assert not trades.never_sent(unknown, T + timedelta(days=1))


async def test_a_refused_post_without_a_lookup_finds_the_order_resting() -> None:
    """A limit order resting under the id: the exchange refuses the second post and the
    bot takes the resting one."""
    async with (
        FakeBinance() as fake,
        LiveExchange("binance", CREDS, api_base_url=fake.url, enable_rate_limit=False) as ex,
    ):
        await ex.load_markets()
        cid = make_client_order_id("bot", "limit")
        price, amount = Decimal("30000"), Decimal("0.01")
        first = await ex.create_order(
            "BTC/USDT", "buy", "limit", amount, price, client_order_id=cid
        )
        assert first.is_open
        bot = live_bot(ex, T)
        again = await trades.place_market(
            bot, "buy", amount, cid, opening=True, price=price, fresh=True
        )
        assert again.id == first.id and again.is_open
        assert len([o for o in fake.orders.values() if o["clientOrderId"] == cid]) == 1


async def test_one_balance_read_per_account_and_close_for_all_its_entries(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bots = await two_bots_on_one_key(conn, users["alice"])  # the same decisions
    async with FakeBinance() as fake:
        async with a_worker(conn, db_url, fake, btc_usdt_candles(tmp_path), "first") as h:
            both = False
            for _ in range(300):
                mark = len(fake.requests)
                await h.candles(1)
                close = fake.requests[mark:]
                entries = [
                    r
                    for r in close
                    if r.method == "POST" and r.path == ORDER and "stopPrice" not in r.params
                ]
                reads = [r for r in close if r.path == ACCOUNT]
                assert len(reads) <= 1, "a balance read per bot"
                if len(entries) == 2 and all(r.params["side"] == "BUY" for r in entries):
                    assert len(reads) == 1
                    both = True
                    break
            assert both, "the two bots never entered on one close"
    [(n,)] = await (
        await conn.execute(
            "select count(distinct bot_id) from public.trades where bot_id = any(%s::uuid[])",
            (bots,),
        )
    ).fetchall()
    assert n == 2


async def test_a_canceled_stop_is_not_read_back_and_a_filled_one_is() -> None:
    async with (
        FakeBinance() as fake,
        LiveExchange("binance", CREDS, api_base_url=fake.url, enable_rate_limit=False) as ex,
    ):
        await ex.load_markets()
        amount = Decimal("0.01")
        await ex.create_order("BTC/USDT", "buy", "market", 2 * amount, client_order_id="tfin")
        ids = [make_client_order_id("bot", n) for n in ("kept", "hit")]
        for cid in ids:
            await xp.place(ex, "BTC/USDT", "stop_loss", "sell", amount, Decimal("41000"), cid)

        mark = len(fake.requests)
        canceled = await xp.cancel(ex, "BTC/USDT", ids[0])
        assert canceled is not None and canceled.status is OrderStatus.CANCELED
        assert canceled.client_order_id == ids[0] and canceled.filled == 0
        assert [(r.method, r.path) for r in fake.requests[mark:]] == [("DELETE", ORDER)]

        fake.set_price("BTCUSDT", Decimal("40900"))  # the other one fills
        mark = len(fake.requests)
        filled = await xp.cancel(ex, "BTC/USDT", ids[1])
        assert filled is not None and filled.status is OrderStatus.CLOSED
        assert filled.filled == amount
        assert [(r.method, r.path) for r in fake.requests[mark:]] == [
            ("DELETE", ORDER),
            ("GET", ORDER),
        ]
