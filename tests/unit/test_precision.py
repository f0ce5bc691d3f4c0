"""Rounding and limit checks match the real exchanges' recorded market definitions."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from worker.errors import Fatal
from worker.exchanges.precision import MarketRules, read_markets_file, recorded_rules


@pytest.fixture(scope="module")
def binance() -> MarketRules:
    return recorded_rules("binance")


def test_amount_is_truncated_to_binance_step_size(binance: MarketRules) -> None:
    # BTCUSDT LOT_SIZE stepSize is 0.00001 on Binance: extra digits are cut, never rounded up.
    assert binance.amount_to_precision("BTC/USDT", D("0.123456789")) == D("0.12345")
    assert binance.market("BTC/USDT").amount_precision == D("0.00001")


def test_price_is_rounded_to_binance_tick_size(binance: MarketRules) -> None:
    assert binance.price_to_precision("BTC/USDT", D("43210.126")) == D("43210.13")
    assert binance.price_to_precision("DOGE/USDT", D("0.0812345")) == D("0.08123")


def test_step_sizes_match_the_exchange_filters(binance: MarketRules) -> None:
    raw = read_markets_file("binance")
    for symbol in ("BTC/USDT", "ETH/USDT", "ADA/USDT", "XRP/USDT"):
        filters = {f["filterType"]: f for f in raw[symbol]["info"]["filters"]}
        market = binance.market(symbol)
        assert market.amount_precision == D(filters["LOT_SIZE"]["stepSize"]).normalize()
        assert market.price_precision == D(filters["PRICE_FILTER"]["tickSize"]).normalize()


def test_whole_unit_markets_drop_fractions(binance: MarketRules) -> None:
    assert binance.amount_to_precision("XRP/USDT", D("12.99")) == D("12")


def test_tick_size_exchanges_use_their_own_steps() -> None:
    bybit = recorded_rules("bybit")
    assert bybit.amount_to_precision("BTC/USDT", D("0.1234567891")) == D("0.123456")
    kraken = recorded_rules("kraken")
    assert kraken.price_to_precision("BTC/USD", D("43210.17")) == D("43210.2")


def test_check_order_rounds_a_valid_limit_order(binance: MarketRules) -> None:
    checked = binance.check_order("BTC/USDT", "buy", "limit", D("0.0012345"), D("43210.129"))
    assert checked.amount == D("0.00123")
    assert checked.price == D("43210.13")
    assert checked.cost == D("0.00123") * D("43210.13")


def test_order_below_min_cost_is_rejected_naming_the_limit(binance: MarketRules) -> None:
    with pytest.raises(Fatal, match=r"minimum cost 5 USDT \(limits\.cost\.min\)"):
        binance.check_order("BTC/USDT", "buy", "limit", D("0.0001"), D("30000"))


def test_market_order_min_cost_uses_the_reference_price(binance: MarketRules) -> None:
    with pytest.raises(Fatal, match=r"limits\.cost\.min"):
        binance.check_order("ETH/USDT", "sell", "market", D("0.001"), D("2000"))
    checked = binance.check_order("ETH/USDT", "sell", "market", D("0.01"), D("2000"))
    assert checked.price is None and checked.amount == D("0.01")


def test_amount_below_min_amount_is_rejected(binance: MarketRules) -> None:
    with pytest.raises(Fatal, match=r"minimum amount 20 \(limits\.amount\.min\)"):
        recorded_rules("kraken").check_order("ADA/USDT", "buy", "limit", D("10"), D("0.5"))


def test_amount_that_truncates_to_zero_is_rejected(binance: MarketRules) -> None:
    with pytest.raises(Fatal, match="rounds to zero"):
        binance.check_order("BTC/USDT", "buy", "limit", D("0.000001"), D("43000"))


def test_price_outside_the_price_filter_is_rejected(binance: MarketRules) -> None:
    with pytest.raises(Fatal, match=r"limits\.price\.max"):
        binance.check_order("BTC/USDT", "sell", "limit", D("0.001"), D("2000000"))


def test_stop_limit_order_keeps_both_prices(binance: MarketRules) -> None:
    checked = binance.check_order(
        "BTC/USDT", "sell", "stop", D("0.001"), D("39000.004"), stop_price=D("39500.006")
    )
    assert (checked.price, checked.stop_price) == (D("39000.00"), D("39500.01"))


def test_amount_beyond_what_an_order_holds_is_rejected() -> None:
    # Kraken publishes no maximum amount for BTC/USD: an absurd stake at a low price would
    # pass its limits, and then no order or trade row could hold it (numeric(28, 12)).
    kraken = recorded_rules("kraken")
    assert kraken.market("BTC/USD").max_amount is None
    with pytest.raises(Fatal, match=r"more than an order holds \(below 10\^16\)"):
        kraken.check_order("BTC/USD", "buy", "limit", D("10000000000000000"), D("1"))
    checked = kraken.check_order("BTC/USD", "buy", "limit", D("9999999999999999"), D("1"))
    assert checked.amount == D("9999999999999999")


def test_unknown_symbol_is_fatal(binance: MarketRules) -> None:
    with pytest.raises(Fatal, match="no market 'FOO/BAR'"):
        binance.check_order("FOO/BAR", "buy", "market", D("1"))


def test_contract_cost_applies_contract_size() -> None:
    coinbase = recorded_rules("coinbase")
    market = coinbase.market("BTC/USD:USD-240426")
    assert market.contract_size == D("0.01")
    checked = coinbase.check_order("BTC/USD:USD-240426", "buy", "limit", D("2"), D("60002"))
    assert checked.price == D("60000")  # tick size 5
    assert checked.cost == D("2") * D("60000") * D("0.01")


def test_decimal_context_is_left_alone(binance: MarketRules) -> None:
    import decimal

    before = decimal.getcontext().rounding
    binance.amount_to_precision("BTC/USDT", D("0.123456"))
    assert decimal.getcontext().rounding == before
