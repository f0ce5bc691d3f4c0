"""ccxt's real Binance USDⓈ-M futures client against a local fake of Binance's ``/fapi`` REST
API (no internet): leverage, client ids, reduce-only exits, rate limits and restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal as D

import pytest

from tests.fakes.fake_binance_futures import FakeBinanceFutures
from worker.errors import Fatal, Retryable
from worker.exchanges import ExchangeCredentials, OrderStatus, make_client_order_id
from worker.exchanges.live import LiveExchange

CREDS = ExchangeCredentials(api_key="test-key", secret="test-secret")
PERP = "BTC/USDT:USDT"


@asynccontextmanager
async def usdm(
    fake: FakeBinanceFutures | None = None, exchange_id: str = "binanceusdm", timeout_ms: int = 2000
) -> AsyncIterator[tuple[FakeBinanceFutures, LiveExchange]]:
    async with AsyncExitStack() as stack:
        server = fake if fake is not None else await stack.enter_async_context(FakeBinanceFutures())
        exchange = LiveExchange(
            exchange_id,
            CREDS,
            api_base_url=server.url,
            timeout_ms=timeout_ms,
            enable_rate_limit=False,
            default_type="swap" if exchange_id == "binance" else None,
        )
        stack.push_async_callback(exchange.close)
        await exchange.load_markets()
        yield server, exchange


async def test_the_perpetual_has_binances_filters_as_market_rules() -> None:
    async with usdm() as (_, ex):
        market = ex.market(PERP)
        assert market.contract and market.linear and market.settle == "USDT"
        assert (market.price_precision, market.amount_precision) == (D("0.1"), D("0.001"))
        assert (market.min_amount, market.min_cost, market.max_market_amount) == (
            D("0.001"),
            D("100"),
            D("120"),
        )
        with pytest.raises(Fatal, match=r"minimum cost 100 USDT"):
            ex.check_order(PERP, "sell", "market", D("0.002"), D("43000"))


@pytest.mark.parametrize("exchange_id", ["binanceusdm", "binance"])
async def test_a_short_entry_carries_its_client_id_and_leverage_set_once(exchange_id: str) -> None:
    async with usdm(exchange_id=exchange_id) as (fake, ex):
        fake.wallet["USDT"] = D("200")  # 0.02 BTC at 43000 = 860 USDT: needs more than 4x
        first, second = (make_client_order_id("bot-f", n, "entry") for n in ("t1", "t2"))
        order = await ex.create_order(
            PERP, "sell", "market", D("0.0204"), client_order_id=first, leverage=5
        )
        await ex.create_order(
            PERP, "sell", "market", D("0.003"), client_order_id=second, leverage=5
        )
        assert [r.params["leverage"] for r in fake.leverage_posts()] == ["5"]  # once
        [sent, _] = fake.order_posts()
        assert sent.params["newClientOrderId"] == first
        assert (sent.params["side"], sent.params["type"], sent.params["quantity"]) == (
            "SELL",
            "MARKET",
            "0.02",
        )
        assert "reduceOnly" not in sent.params
        assert fake.order_leverage(first) == 5
        assert order.client_order_id == first and order.status is OrderStatus.CLOSED
        assert order.filled == D("0.02") and order.average == D("43000")
        assert fake.position().amount == D("-0.023")
        balance = await ex.fetch_balance()
        assert balance["USDT"].used == D("0.023") * 43000 / 5  # the margin 5x needs


async def test_without_the_leverage_the_same_order_is_refused_as_insufficient_margin() -> None:
    async with usdm() as (fake, ex):
        fake.wallet["USDT"] = D("200")
        await ex.set_leverage(PERP, 1)
        with pytest.raises(Fatal, match=r"insufficient funds.*Margin is insufficient"):
            await ex.create_order(PERP, "sell", "market", D("0.02"), client_order_id="tfnomargin")
        assert fake.position().amount == 0


async def test_an_exit_is_reduce_only_and_closes_the_position() -> None:
    async with usdm() as (fake, ex):
        await ex.create_order(PERP, "sell", "market", D("0.01"), client_order_id="tfe1", leverage=3)
        fake.prices["BTCUSDT"] = D("42000")
        exit_ = await ex.create_order(
            PERP, "buy", "market", D("0.01"), client_order_id="tfx1", params={"reduceOnly": True}
        )
        assert fake.order_posts()[-1].params["reduceOnly"] == "true"
        assert exit_.status is OrderStatus.CLOSED and exit_.average == D("42000")
        assert fake.position().amount == 0
        assert fake.wallet["USDT"] > D("10000")  # the short made 10 USDT less fees
        # Nothing left to reduce: Binance rejects the order rather than opening a long.
        with pytest.raises(Fatal, match=r"rejected the order.*ReduceOnly Order is rejected"):
            await ex.create_order(
                PERP,
                "buy",
                "market",
                D("0.01"),
                client_order_id="tfx2",
                params={"reduceOnly": True},
            )


async def test_leverage_on_a_spot_market_is_still_refused() -> None:
    async with usdm(exchange_id="binance") as (fake, ex):
        with pytest.raises(Fatal, match="leverage applies to futures/swap markets only"):
            await ex.create_order("BTC/USDT", "buy", "limit", D("0.001"), D("40000"), leverage=5)
        assert fake.leverage_posts() == [] and fake.order_posts() == []


async def test_a_leverage_binance_refuses_is_fatal() -> None:
    async with usdm() as (fake, ex):
        with pytest.raises(Fatal, match=r"rejected the request as invalid.*between 1 and 125"):
            await ex.create_order(
                PERP, "sell", "market", D("0.01"), client_order_id="tfl", leverage=200
            )
        assert fake.order_posts() == []


async def test_rate_limit_429_on_a_futures_order_is_retryable() -> None:
    async with usdm() as (fake, ex):
        fake.fail_next("rate_limit", path="/fapi/v1/order")
        with pytest.raises(Retryable, match="rate limited") as info:
            await ex.create_order(PERP, "sell", "market", D("0.01"), client_order_id="tf429")
        assert info.value.retry_after is not None and info.value.retry_after > 0
        assert fake.position().amount == 0
        order = await ex.place_order_once(
            PERP, "sell", "market", D("0.01"), client_order_id="tf429"
        )
        assert order.status is OrderStatus.CLOSED and fake.position().amount == D("-0.01")


async def test_lost_response_finds_the_futures_order_instead_of_placing_a_second() -> None:
    async with usdm(timeout_ms=300) as (fake, ex):
        fake.fail_next("lost_response", path="/fapi/v1/order")
        order = await ex.create_order(
            PERP, "sell", "market", D("0.01"), client_order_id="tflostf", leverage=2
        )
        assert order.client_order_id == "tflostf" and order.status is OrderStatus.CLOSED
        assert len(fake.order_posts()) == 1 and fake.position().amount == D("-0.01")


async def test_reconcile_after_restart_finds_futures_orders_by_client_id() -> None:
    async with FakeBinanceFutures() as fake:
        cids = [make_client_order_id("bot-r", n) for n in ("entry", "take", "exit", "never")]
        async with usdm(fake) as (_, first_worker):
            entry = await first_worker.create_order(
                PERP, "sell", "market", D("0.01"), client_order_id=cids[0], leverage=4
            )
            await first_worker.create_order(
                PERP,
                "buy",
                "limit",
                D("0.01"),
                D("41000"),
                client_order_id=cids[1],
                params={"reduceOnly": True},
            )
        # The worker restarts: a new client with no memory of what it did.
        async with usdm(fake) as (_, second_worker):
            found = await second_worker.reconcile(cids, PERP)
            assert set(found) == set(cids[:2])
            assert found[cids[0]].id == entry.id and found[cids[0]].status is OrderStatus.CLOSED
            assert found[cids[1]].status is OrderStatus.OPEN
            again = await second_worker.place_order_once(
                PERP, "sell", "market", D("0.01"), client_order_id=cids[0], leverage=4
            )
            assert again.id == entry.id
            exit_ = await second_worker.place_order_once(
                PERP,
                "buy",
                "market",
                D("0.01"),
                client_order_id=cids[2],
                params={"reduceOnly": True},
            )
            assert exit_.status is OrderStatus.CLOSED
        assert len(fake.order_posts()) == 3 and fake.position().amount == 0
        # the new process set the leverage again before its (found, not re-sent) entry
        assert [r.params["leverage"] for r in fake.leverage_posts()] == ["4"]


async def test_futures_candles_come_from_fapi_and_only_closed_ones() -> None:
    async with usdm() as (fake, ex):
        candles = await ex.fetch_ohlcv(PERP, "1m", limit=5)
        assert len(candles) == 4
        assert fake.requests[-1].path == "/fapi/v1/klines"
