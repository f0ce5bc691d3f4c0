"""Multi-pair rules (slots, stake split, order) and the multi-pair backtest."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from worker.backtest import load_csv
from worker.backtest.multipair import MultiPairSettings, run_multi_pair
from worker.candles import CandleSeries
from worker.strategies.base import Candles
from worker.strategies.slots import Entry, Skip, allocate

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"
PAIRS = ["A/USDT", "B/USDT", "C/USDT"]


def test_entries_beyond_the_cap_are_skipped_in_the_order_of_the_pairs_list() -> None:
    taken, skipped = allocate(
        ["C/USDT", "A/USDT", "B/USDT"],
        PAIRS,
        open_trades=1,
        max_open_trades=2,
        available=Decimal(1000),
        stake_amount=Decimal(100),
    )
    assert taken == [Entry("A/USDT", Decimal(100))]
    assert skipped == [Skip("B/USDT", "max_open_trades"), Skip("C/USDT", "max_open_trades")]


def test_an_unlimited_stake_splits_the_balance_over_the_free_slots() -> None:
    taken, skipped = allocate(
        PAIRS,
        PAIRS,
        open_trades=0,
        max_open_trades=4,
        available=Decimal(1200),
        stake_amount=None,
    )
    # 99 % of what is available over the free slots, one entry after the other
    assert [e.stake for e in taken] == [Decimal("297"), Decimal("297.99"), Decimal("299.47995")]
    assert skipped == []


def test_a_fixed_stake_never_stakes_more_than_is_left() -> None:
    taken, skipped = allocate(
        PAIRS,
        PAIRS,
        open_trades=0,
        max_open_trades=3,
        available=Decimal(250),
        stake_amount=Decimal(100),
    )
    assert [e.stake for e in taken] == [Decimal(100), Decimal(100), Decimal(50)]
    taken, skipped = allocate(
        ["A/USDT"],
        PAIRS,
        open_trades=0,
        max_open_trades=3,
        available=Decimal(0),
        stake_amount=Decimal(100),
    )
    assert taken == [] and skipped == [Skip("A/USDT", "no_balance")]


def _series(closes: list[float], start_ms: int = 1_600_000_000_000) -> CandleSeries:
    n = len(closes)
    c = np.array(closes, dtype=float)
    t = np.arange(n, dtype=np.int64) * 300_000 + start_ms
    return CandleSeries(Candles(t, c, c * 1.001, c * 0.999, c, np.ones(n)), 300_000, ())


def test_two_pairs_with_one_slot_trade_one_at_a_time_in_list_order() -> None:
    # Both pairs cross up on the same close; with one slot the first pair of the list
    # takes it and the second is skipped.
    up = [10.0 - i * 0.2 for i in range(25)] + [6.0 + i for i in range(15)] + [5.0] * 15
    series = {"A/USDT": _series(up), "B/USDT": _series(up)}
    result = run_multi_pair(
        series,
        ["B/USDT", "A/USDT"],
        "sma_cross",
        {"fast": 3, "slow": 6},
        MultiPairSettings(
            cash=Decimal(1000), fee=Decimal(0), stake_amount=Decimal(100), max_open_trades=1
        ),
    )
    assert [t["pair"] for t in result.trades] == ["B/USDT"]
    assert {s["pair"] for s in result.skipped} == {"A/USDT"}
    assert {s["reason"] for s in result.skipped} == {"max_open_trades"}


def test_the_multi_pair_backtest_keeps_one_balance_on_real_candles() -> None:
    pairs = ["ETH/BTC", "LTC/BTC", "XLM/BTC"]
    series = {p: load_csv(CANDLES / f"{p.replace('/', '_')}-5m.csv") for p in pairs}
    result = run_multi_pair(
        series,
        pairs,
        "sma_cross",
        {"fast": 10, "slow": 20},
        {"cash": "1", "fee": "0.001", "max_open_trades": 2},
    )
    assert len(result.trades) > 50
    assert {t["pair"] for t in result.trades} == set(pairs)
    assert result.skipped, "three pairs with two slots must skip some entries"
    # never more than two positions open at once
    events = sorted(
        [(t["entry_time"], 1) for t in result.trades]
        + [(t["exit_time"], -1) for t in result.trades]
    )
    open_now = peak = 0
    for _, d in events:
        open_now += d
        peak = max(peak, open_now)
    assert peak <= 2
    profit = sum((t["profit"] for t in result.trades), Decimal(0))
    assert result.final_balance == pytest.approx(Decimal(1) + profit, abs=Decimal("1e-20"))


def test_a_multi_pair_backtest_with_shorts_reverses_and_keeps_one_balance() -> None:
    pairs = ["ETH/BTC", "LTC/BTC", "XLM/BTC"]
    series = {p: load_csv(CANDLES / f"{p.replace('/', '_')}-5m.csv") for p in pairs}
    settings = {"cash": "1", "fee": "0.001", "max_open_trades": 2, "stake_amount": "0.2"}
    result = run_multi_pair(
        series, pairs, "sma_cross", {"fast": 10, "slow": 20}, {**settings, "shorts": True}
    )
    shorts = [t for t in result.trades if t["side"] == "short"]
    assert shorts and len(shorts) < len(result.trades)
    # a short gains when the price falls: its profit is the entry's proceeds less the buy-back
    for t in shorts:
        value_in, value_out = t["amount"] * t["entry_price"], t["amount"] * t["exit_price"]
        assert t["profit"] == pytest.approx(
            value_in * Decimal("0.999") - value_out * Decimal("1.001"), abs=Decimal("1e-18")
        )
    # reversals: a pair's short opens on the open its long closed on
    exits = {(t["pair"], t["exit_time"]) for t in result.trades if t["side"] == "long"}
    assert any((t["pair"], t["entry_time"]) in exits for t in shorts)
    events = sorted(
        [(t["entry_time"], 1) for t in result.trades]
        + [(t["exit_time"], -1) for t in result.trades]
    )
    open_now = peak = 0
    for _, d in events:
        open_now += d
        peak = max(peak, open_now)
    assert peak <= 2
    profit = sum((t["profit"] for t in result.trades), Decimal(0))
    assert result.final_balance == pytest.approx(Decimal(1) + profit, abs=Decimal("1e-18"))
    long_only = run_multi_pair(series, pairs, "sma_cross", {"fast": 10, "slow": 20}, settings)
    assert {t["side"] for t in long_only.trades} == {"long"}


def test_the_multi_pair_backtest_truncates_amounts_to_the_markets_step() -> None:
    up = [10.0 - i * 0.2 for i in range(25)] + [6.0 + i for i in range(15)] + [5.0] * 15
    series = {"A/USDT": _series(up), "B/USDT": _series(up)}
    result = run_multi_pair(
        series,
        ["A/USDT", "B/USDT"],
        "sma_cross",
        {"fast": 3, "slow": 6},
        MultiPairSettings(
            cash=Decimal(1000),
            fee=Decimal(0),
            stake_amount=Decimal(100),
            max_open_trades=2,
            amount_step={"A/USDT": Decimal(1), "B/USDT": Decimal(1000)},
        ),
    )
    # A trades whole units; B's step is larger than a stake buys: its entry is not taken
    [trade] = result.trades
    assert trade["pair"] == "A/USDT"
    assert trade["amount"] == trade["amount"].to_integral_value() > 0
    assert [s["reason"] for s in result.skipped] == ["amount_zero"]
    assert result.final_balance == Decimal(1000) + trade["profit"]
