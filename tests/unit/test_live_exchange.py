"""ccxt's real Binance client against a local fake of Binance's REST API (no internet)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal as D

import pytest

from tests.fakes.fake_binance import FakeBinance, default_klines
from worker.errors import Fatal, Retryable
from worker.exchanges import ExchangeCredentials, OrderStatus, make_client_order_id
from worker.exchanges.live import LiveExchange
from worker.retry import retry

CREDS = ExchangeCredentials(api_key="test-key", secret="test-secret")


@asynccontextmanager
async def binance(
    fake: FakeBinance | None = None, creds: ExchangeCredentials = CREDS, timeout_ms: int = 2000
) -> AsyncIterator[tuple[FakeBinance, LiveExchange]]:
    async with AsyncExitStack() as stack:
        server = fake if fake is not None else await stack.enter_async_context(FakeBinance())
        exchange = LiveExchange(
            "binance",
            creds,
            api_base_url=server.url,
            timeout_ms=timeout_ms,
            enable_rate_limit=False,
        )
        stack.push_async_callback(exchange.close)
        await exchange.load_markets()
        yield server, exchange


async def test_order_is_rounded_to_the_binance_step_and_carries_the_client_id() -> None:
    async with binance() as (fake, ex):
        cid = make_client_order_id("bot-1", "2024-01-01T00:05", "entry")
        order = await ex.create_order(
            "BTC/USDT", "buy", "limit", D("0.0123456"), D("40000.129"), client_order_id=cid
        )
        [sent] = fake.order_posts()
        assert sent.params["quantity"] == "0.01234"  # LOT_SIZE step 0.00001, truncated
        assert sent.params["price"] == "40000.13"  # tick 0.01
        assert sent.params["newClientOrderId"] == cid
        assert order.client_order_id == cid and order.status is OrderStatus.OPEN
        assert order.amount == D("0.01234") and order.price == D("40000.13")


async def test_order_below_min_cost_never_reaches_the_exchange() -> None:
    async with binance() as (fake, ex):
        with pytest.raises(Fatal, match=r"minimum cost 5 USDT \(limits\.cost\.min\)"):
            await ex.create_order("BTC/USDT", "buy", "limit", D("0.0001"), D("40000"))
        assert fake.order_posts() == []


async def test_market_order_fill_has_decimal_fee() -> None:
    async with binance() as (_, ex):
        order = await ex.create_order(
            "BTC/USDT", "sell", "market", D("0.01"), client_order_id="tfm1"
        )
        assert order.status is OrderStatus.CLOSED
        assert order.average == D("43000") and order.cost == D("430")
        assert (
            order.fee is not None and order.fee.cost == D("0.43") and order.fee.currency == "USDT"
        )


async def test_rate_limit_429_becomes_retryable() -> None:
    async with binance() as (fake, ex):
        fake.fail_next("rate_limit", path="/api/v3/order")
        with pytest.raises(Retryable, match="rate limited") as info:
            await ex.create_order("BTC/USDT", "buy", "limit", D("0.001"), D("40000"))
        assert info.value.retry_after is not None and info.value.retry_after > 0
        assert isinstance(info.value.__cause__, Exception)


async def test_exchange_busy_503_and_timeouts_are_retryable() -> None:
    async with binance(timeout_ms=300) as (fake, ex):
        fake.fail_next("unavailable", path="/api/v3/account")
        with pytest.raises(Retryable, match="unavailable or busy"):
            await ex.fetch_balance()
        fake.fail_next("timeout", path="/api/v3/account")
        with pytest.raises(Retryable, match="timed out"):
            await ex.fetch_balance()


async def test_invalid_api_key_2015_is_fatal_with_a_readable_message() -> None:
    async with FakeBinance() as fake:
        ex = LiveExchange(
            "binance",
            ExchangeCredentials("wrong-key", "x"),
            api_base_url=fake.url,
            enable_rate_limit=False,
        )
        try:
            with pytest.raises(Fatal, match=r"rejected the API key.*Invalid API-key.*-2015"):
                await ex.load_markets()  # ccxt's first signed call (currencies) already fails
            with pytest.raises(Fatal, match="rejected the API key"):
                await ex.fetch_balance()
        finally:
            await ex.close()


async def test_key_revoked_after_working_is_still_fatal() -> None:
    # ccxt reports a -2015 after a successful call as DDoSProtection; a revoked key is fatal.
    async with binance() as (fake, ex):
        await ex.fetch_balance()
        fake.fail_next("auth", path="/api/v3/order")
        with pytest.raises(Fatal, match="rejected the API key"):
            await ex.create_order("BTC/USDT", "buy", "limit", D("0.001"), D("40000"))


async def test_insufficient_balance_2010_is_fatal() -> None:
    async with binance() as (_, ex):
        with pytest.raises(Fatal, match="insufficient funds"):
            await ex.create_order("BTC/USDT", "buy", "limit", D("1"), D("40000"))


async def test_retry_helper_gets_through_a_429_with_one_order() -> None:
    async with binance() as (fake, ex):
        fake.fail_next("rate_limit", path="/api/v3/order")
        delays: list[float] = []

        async def no_sleep(seconds: float) -> None:
            delays.append(seconds)

        cid = make_client_order_id("bot-2", "decision")
        order = await retry(
            lambda: ex.place_order_once(
                "BTC/USDT", "buy", "limit", D("0.001"), D("40000"), client_order_id=cid
            ),
            sleep=no_sleep,
        )
        assert order.client_order_id == cid
        assert len(delays) == 1 and delays[0] >= 2.0  # honours the rate-limit wait
        assert [o.client_order_id for o in await ex.fetch_open_orders("BTC/USDT")] == [cid]


async def test_lost_response_finds_the_order_instead_of_placing_a_second() -> None:
    async with binance(timeout_ms=300) as (fake, ex):
        fake.fail_next("lost_response", path="/api/v3/order")
        order = await ex.create_order(
            "BTC/USDT", "buy", "limit", D("0.001"), D("40000"), client_order_id="tflost1"
        )
        assert order.client_order_id == "tflost1"
        assert len(fake.order_posts()) == 1


async def test_reconcile_after_restart_finds_the_existing_order() -> None:
    async with FakeBinance() as fake:
        cids = [make_client_order_id("bot-3", n) for n in ("entry", "stop", "never-placed")]
        async with binance(fake) as (_, first_worker):
            await first_worker.create_order(
                "BTC/USDT", "buy", "limit", D("0.001"), D("40000"), client_order_id=cids[0]
            )
            filled = await first_worker.create_order(
                "BTC/USDT", "sell", "market", D("0.001"), client_order_id=cids[1]
            )
        # The worker restarts: a new client with no memory of what it did.
        async with binance(fake) as (_, second_worker):
            found = await second_worker.reconcile(cids, "BTC/USDT")
            assert set(found) == set(cids[:2])
            assert found[cids[0]].status is OrderStatus.OPEN
            assert found[cids[1]].id == filled.id and found[cids[1]].status is OrderStatus.CLOSED
            again = await second_worker.place_order_once(
                "BTC/USDT", "buy", "limit", D("0.001"), D("40000"), client_order_id=cids[0]
            )
            assert again.id == found[cids[0]].id
        assert len(fake.order_posts()) == 2


async def test_cancel_is_final_even_when_repeated() -> None:
    async with binance() as (_, ex):
        order = await ex.create_order("BTC/USDT", "buy", "limit", D("0.001"), D("40000"))
        assert (await ex.cancel_order(order.id, "BTC/USDT")).status is OrderStatus.CANCELED
        assert (await ex.cancel_order(order.id, "BTC/USDT")).status is OrderStatus.CANCELED
        assert await ex.fetch_open_orders("BTC/USDT") == []


async def test_stop_order_is_sent_as_binance_stop_loss_limit() -> None:
    async with binance() as (fake, ex):
        order = await ex.create_order(
            "BTC/USDT", "sell", "stop", D("0.001"), D("39000"), stop_price=D("39500.004")
        )
        sent = fake.order_posts()[-1].params
        assert (sent["type"], sent["stopPrice"], sent["price"]) == (
            "STOP_LOSS_LIMIT",
            "39500",
            "39000",
        )
        assert order.type == "stop" and order.stop_price == D("39500")


async def test_fetch_ohlcv_returns_only_closed_candles() -> None:
    async with binance() as (fake, ex):
        fake.klines["BTCUSDT"] = default_klines("1m", count=5)
        candles = await ex.fetch_ohlcv("BTC/USDT", "1m", limit=5)
        assert len(candles) == 4  # the forming candle is dropped
        assert candles[-1].close == D("43005")


async def test_balances_are_decimal() -> None:
    async with binance() as (_, ex):
        balance = await ex.fetch_balance()
        assert balance["USDT"].free == D("10000") and balance["BTC"].total == D("1")


async def test_sandbox_mode_points_at_the_testnet() -> None:
    ex = LiveExchange("binance", CREDS, sandbox=True)
    try:
        assert ex.client.urls["api"]["public"].startswith("https://testnet.binance.vision")
    finally:
        await ex.close()


async def test_unknown_exchange_is_fatal() -> None:
    with pytest.raises(Fatal, match="not a ccxt exchange id"):
        LiveExchange("nosuchexchange")


async def test_leverage_on_a_spot_market_is_refused_before_any_order() -> None:
    async with binance() as (fake, ex):
        with pytest.raises(Fatal, match="leverage applies to futures/swap markets only"):
            await ex.create_order("BTC/USDT", "buy", "limit", D("0.001"), D("40000"), leverage=5)
        assert fake.order_posts() == []
