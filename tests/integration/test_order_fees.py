"""Fees come from the fills: a market order that fills at once is recorded with the
commission the exchange charged, on every venue's fake, spot and futures alike (where the
order response carries none, the account's trades of that order give it), so a live bot's
trades never show a fee of 0 for a fill that paid one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes.fake_binance_futures import TAKER_FEE, FakeBinanceFutures
from tests.fakes.fake_venue import FEE_RATE
from tests.integration.venues import VENUES, Venue
from worker.exchanges import ExchangeCredentials
from worker.exchanges.base import make_client_order_id
from worker.exchanges.live import LiveExchange

AMOUNT = Decimal("0.01")


@pytest.mark.parametrize("venue", VENUES, ids=[v.name for v in VENUES])
async def test_a_filled_market_order_carries_the_fee_it_paid(venue: Venue) -> None:
    cid = make_client_order_id("fees", venue.name)
    async with venue.fake() as fake, venue.open(fake) as ex:
        placed = await ex.create_order(venue.symbol, "buy", "market", AMOUNT, client_order_id=cid)
        found = await ex.fetch_order_by_client_id(cid, venue.symbol)
    (sent,) = [o for o in fake.orders.values() if o.id == placed.id]
    assert sent.fee > 0
    expected = AMOUNT * placed.average * FEE_RATE if placed.average else None
    for order in (placed, found):
        assert order is not None and order.fee is not None, venue.name
        assert order.fee.cost == sent.fee == expected
        assert order.fee.currency == "USDT"


async def test_a_binance_futures_market_order_carries_its_commission() -> None:
    symbol = "BTC/USDT:USDT"
    cid = make_client_order_id("fees", "binance-usdm")
    async with FakeBinanceFutures() as fake:
        fake.balances["USDT"] = [Decimal(100000), Decimal(0)]
        async with LiveExchange(
            "binance",
            ExchangeCredentials("test-key", "test-secret"),
            api_base_url=fake.url,
            enable_rate_limit=False,
            default_type="swap",
            options={"defaultSubType": "linear"},
        ) as ex:
            placed = await ex.create_order(symbol, "buy", "market", AMOUNT, client_order_id=cid)
    assert placed.average is not None and placed.fee is not None
    assert placed.fee.cost == AMOUNT * placed.average * TAKER_FEE > 0
