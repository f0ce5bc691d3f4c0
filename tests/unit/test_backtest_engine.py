"""Backtest engine: fills, fees, stops, reversals and sizing on hand-made candles."""

from __future__ import annotations

import numpy as np
import pytest

from worker.backtest.engine import (
    EXIT_END,
    EXIT_SIGNAL,
    EXIT_STOP_LOSS,
    EXIT_TAKE_PROFIT,
    Settings,
    simulate,
)
from worker.strategies import Candles, SignalGrid, get_strategy

N = 8
OPEN = np.array([10.0, 11, 12, 13, 14, 15, 16, 17])


def ramp(**over: list[float]) -> Candles:
    o = np.array(over.get("open", OPEN), dtype=float)
    c = np.array(over.get("close", o + 0.5), dtype=float)
    h = np.array(over.get("high", np.maximum(o, c) + 0.5), dtype=float)
    lo = np.array(over.get("low", np.minimum(o, c) - 0.5), dtype=float)
    return Candles.from_arrays(np.arange(len(o)) * 300_000, o, h, lo, c)


def grid(
    n: int = N,
    enter_long: tuple[int, ...] = (),
    exit_long: tuple[int, ...] = (),
    enter_short: tuple[int, ...] = (),
    exit_short: tuple[int, ...] = (),
    stop_loss: float = np.nan,
    take_profit: float = np.nan,
) -> SignalGrid:
    def flags(idx: tuple[int, ...]) -> np.ndarray:
        a = np.zeros((1, n), dtype=bool)
        a[0, list(idx)] = True
        return a

    return SignalGrid(
        flags(enter_long),
        flags(exit_long),
        flags(enter_short),
        flags(exit_short),
        np.full((1, n), stop_loss),
        np.full((1, n), take_profit),
    )


def test_decision_on_close_fills_at_next_open_with_fees_on_both_sides() -> None:
    run = simulate(ramp(), grid(enter_long=(1,), exit_long=(4,)), Settings(cash=1000, fee=0.01))
    t = run.trades
    assert len(t) == 1
    assert (t.entry_idx[0], t.exit_idx[0]) == (2, 5)
    assert (t.entry_price[0], t.exit_price[0]) == (12.0, 15.0)
    # stake 1000 buys notional 1000/1.01 at 12; sells at 15 paying 1% of the exit notional
    units = 1000 / 1.01 / 12
    assert t.amount[0] == pytest.approx(units)
    assert t.entry_fee[0] == pytest.approx(1000 / 1.01 * 0.01)
    assert t.exit_fee[0] == pytest.approx(units * 15 * 0.01)
    final = units * 15 * 0.99
    assert t.pnl[0] == pytest.approx(final - 1000)
    assert t.return_pct[0] == pytest.approx((final / 1000 - 1) * 100)
    assert run.equity[0, -1] == pytest.approx(final)
    # marked to market at each close while open: close of candle 3 is 13.5
    assert run.equity[0, 3] == pytest.approx(units * 13.5)
    assert run.equity[0, 1] == 1000
    assert run.exposure[0] == pytest.approx(3 / 8)


def test_long_only_ignores_short_entries_and_last_candle_decision() -> None:
    run = simulate(ramp(), grid(enter_short=(1,), enter_long=(7,)), Settings())
    assert len(run.trades) == 0
    assert (run.equity == 10_000).all()


def test_reversal_closes_and_opens_on_the_same_fill_and_end_closes_at_last_close() -> None:
    sig = grid(enter_long=(1,), exit_long=(3,), enter_short=(3,))
    run = simulate(ramp(), sig, Settings(cash=1000, fee=0.0, shorts=True))
    t = run.trades
    assert t.side.tolist() == [1, -1]
    assert t.entry_idx.tolist() == [2, 4]
    assert t.exit_idx.tolist() == [4, 7]
    assert t.exit_reason.tolist() == [EXIT_SIGNAL, EXIT_END]
    assert t.exit_price[1] == 17.5  # last close
    long_final = 1000 / 12 * 14
    assert t.stake[1] == pytest.approx(long_final)
    short_pnl = long_final / 14 * (14 - 17.5)
    assert run.equity[0, -1] == pytest.approx(long_final + short_pnl)


def test_slippage_moves_fills_against_us() -> None:
    sig = grid(enter_long=(1,), exit_long=(4,))
    t = simulate(ramp(), sig, Settings(fee=0, slippage=0.01)).trades
    assert t.entry_price[0] == pytest.approx(12 * 1.01)
    assert t.exit_price[0] == pytest.approx(15 * 0.99)


def test_fixed_stake_and_fractional_stake() -> None:
    sig = grid(enter_long=(0, 4), exit_long=(2,))
    fixed = simulate(ramp(), sig, Settings(cash=1000, fee=0, stake_amount=100)).trades
    assert fixed.stake.tolist() == [100, 100]
    assert fixed.amount[0] == pytest.approx(100 / 11)
    frac = simulate(ramp(), sig, Settings(cash=1000, fee=0, stake_fraction=0.5)).trades
    first_pnl = 500 / 11 * (13 - 11)
    assert frac.stake.tolist() == pytest.approx([500, (1000 + first_pnl) * 0.5])


def test_conflicting_decisions_on_one_candle_cancel() -> None:
    sig = grid(enter_long=(1, 3), exit_long=(3,))
    t = simulate(ramp(), sig, Settings()).trades
    assert t.entry_idx.tolist() == [2]
    assert t.exit_reason.tolist() == [EXIT_END]


def test_stop_loss_fills_at_its_price_inside_the_candle() -> None:
    low = list(OPEN - 0.5)
    low[4] = 11.0  # entry at 12 with a 5% stop (11.4) is touched inside candle 4
    run = simulate(ramp(low=low), grid(enter_long=(1,), stop_loss=0.05), Settings(fee=0))
    t = run.trades
    assert t.exit_reason.tolist() == [EXIT_STOP_LOSS]
    assert t.exit_idx[0] == 4
    assert t.exit_price[0] == pytest.approx(11.4)
    assert run.equity[0, 4] == pytest.approx(10_000 * 11.4 / 12)
    assert run.equity[0, -1] == run.equity[0, 4]


def test_stop_is_assumed_first_when_stop_and_target_share_a_candle() -> None:
    low, high = list(OPEN - 0.5), list(OPEN + 1)
    low[3], high[3] = 11.0, 20.0
    sig = grid(enter_long=(1,), stop_loss=0.05, take_profit=0.1)
    t = simulate(ramp(low=low, high=high), sig, Settings(fee=0)).trades
    assert t.exit_reason.tolist() == [EXIT_STOP_LOSS]
    assert t.exit_price[0] == pytest.approx(11.4)


def test_take_profit_and_gap_through_stop() -> None:
    high = list(OPEN + 1)
    high[3] = 13.3  # 12 * 1.1 = 13.2 reached in candle 3
    t = simulate(ramp(high=high), grid(enter_long=(1,), take_profit=0.1), Settings(fee=0)).trades
    assert t.exit_reason.tolist() == [EXIT_TAKE_PROFIT]
    assert (t.exit_idx[0], t.exit_price[0]) == (3, pytest.approx(13.2))
    # candle 4 opens at 9, below the 11.4 stop: filled at the open, not at the stop
    o = OPEN.copy()
    o[4] = 9.0
    t = simulate(ramp(open=o), grid(enter_long=(1,), stop_loss=0.05), Settings(fee=0)).trades
    assert (t.exit_idx[0], t.exit_price[0]) == (4, 9.0)


def test_short_stop_loss_is_above_entry() -> None:
    high = list(OPEN + 1)
    high[2] = 12.7  # short at 12, 5% stop at 12.6, touched in the entry candle
    sig = grid(enter_short=(1,), stop_loss=0.05)
    t = simulate(ramp(high=high), sig, Settings(fee=0, shorts=True)).trades
    assert t.exit_reason.tolist() == [EXIT_STOP_LOSS]
    assert (t.exit_idx[0], t.exit_price[0]) == (2, pytest.approx(12.6))
    assert t.pnl[0] == pytest.approx(10_000 / 12 * (12 - 12.6))
    # flat again at the close of the candle it was opened and stopped in
    run = simulate(ramp(high=high), sig, Settings(fee=0, shorts=True))
    assert run.equity[0, 2] == pytest.approx(10_000 + t.pnl[0])
    assert run.exposure[0] == 0.0


def test_vectorised_path_equals_trade_by_trade_path() -> None:
    rng = np.random.default_rng(11)
    n = 3000
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.r_[c[0], c[:-1]]
    candles = Candles.from_arrays(np.arange(n) * 60_000, o, np.maximum(o, c), np.minimum(o, c), c)
    strategy = get_strategy("sma_cross")
    sets = [{"fast": 5, "slow": 20}, {"fast": 8, "slow": 30}]
    never = [dict(p, stop_loss=0.99, take_profit=1000) for p in sets]
    for shorts in (False, True):
        settings = Settings(fee=0.002, slippage=0.0005, shorts=shorts, stake_fraction=0.8)
        fast = simulate(candles, strategy.signal_grid(candles, sets), settings)
        loop = simulate(candles, strategy.signal_grid(candles, never), settings)
        assert len(fast.trades) > 100
        np.testing.assert_array_equal(fast.trades.entry_idx, loop.trades.entry_idx)
        np.testing.assert_array_equal(fast.trades.side, loop.trades.side)
        np.testing.assert_allclose(fast.trades.pnl, loop.trades.pnl, rtol=1e-9)
        np.testing.assert_allclose(fast.equity, loop.equity, rtol=1e-9)


def test_pnl_of_trades_adds_up_to_the_equity_change() -> None:
    rng = np.random.default_rng(5)
    n = 2000
    c = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    o = np.r_[c[0], c[:-1]]
    candles = Candles.from_arrays(
        np.arange(n) * 60_000, o, np.maximum(o, c) * 1.01, np.minimum(o, c) * 0.99, c
    )
    sig = get_strategy("rsi").signal_grid(candles, [{"stop_loss": 0.03, "take_profit": 0.05}])
    run = simulate(candles, sig, Settings(fee=0.001, shorts=True))
    assert {EXIT_STOP_LOSS, EXIT_TAKE_PROFIT} <= set(run.trades.exit_reason.tolist())
    assert run.equity[0, -1] - 10_000 == pytest.approx(run.trades.pnl.sum())
