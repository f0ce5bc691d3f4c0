"""Vectorised sweeps of every built-in strategy against one-by-one runs on real candles.

A sweep computes the decisions of a whole ±30 % grid at once (``Strategy.signal_grid``,
each distinct indicator computed once) and simulates every set in one vectorised pass.
Each set's decisions must equal the strategy's own, and each set's total return must be
within 1e-6 of the event-driven walk (trade by trade) over that set alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from worker.backtest import Settings, load_csv
from worker.backtest.engine import trades_with_stops
from worker.backtest.optimize import evaluate, expand, grid_around
from worker.strategies import Strategy, get_strategy
from worker.strategies.builtin import BUILTINS

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"
BUILTIN_NAMES = [cls.name for cls in BUILTINS]


def small_grid(name: str, at_most: int = 3) -> dict[str, list[Any]]:
    """The ±30 % grid around the defaults, each parameter thinned to ``at_most`` values
    (the lowest, the highest and evenly spaced ones between)."""
    out = {}
    for k, vals in grid_around(name, None, steps=at_most).items():
        idx = np.unique(np.linspace(0, len(vals) - 1, min(at_most, len(vals))).round())
        out[k] = [vals[int(i)] for i in idx]
    return out


@pytest.fixture(scope="module")
def series() -> Any:
    s = load_csv(CANDLES / "ETH_BTC-5m.csv")
    return type(s)(s.candles.slice(0, 2500), s.timeframe_ms, (), s.name)


def test_every_builtin_shares_work_across_a_grid() -> None:
    for cls in BUILTINS:
        assert cls.signal_grid is not Strategy.signal_grid, cls.name


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_grid_decisions_equal_each_sets_own(series: Any, name: str) -> None:
    strategy = get_strategy(name)
    sets, _ = expand(name, {"stop_loss": 0.02}, small_grid(name))
    assert len(sets) >= 4
    c = series.candles
    grid = strategy.signal_grid(c, sets)
    traded = 0
    for k, p in enumerate(sets):
        one = strategy.signals(c, p)
        for field in ("enter_long", "exit_long", "enter_short", "exit_short"):
            assert (getattr(grid, field)[k] == getattr(one, field)).all(), (field, p)
        np.testing.assert_array_equal(grid.stop_loss[k], one.stop_loss)
        np.testing.assert_array_equal(grid.take_profit[k], one.take_profit)
        traded += bool(one.enter_long.any() and one.enter_short.any())
    assert traded >= len(sets) // 2  # most sets enter both sides on these candles


@pytest.mark.parametrize("shorts", [False, True], ids=["long-only", "long-and-short"])
@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_sweep_returns_match_the_event_driven_walk(series: Any, name: str, shorts: bool) -> None:
    settings = Settings(fee=0.001, slippage=0.0005, shorts=shorts)
    sets, _ = expand(name, None, small_grid(name))
    swept = evaluate(series, name, sets, settings)["total_return"] / settings.cash
    strategy = get_strategy(name)
    walked = []
    for p in sets:
        sig = strategy.signal_grid(series.candles, [p])
        trades = trades_with_stops(series.candles, sig, 0, settings)
        assert len(trades) > 0, p
        end = trades.equity_before[-1] + trades.pnl[-1]
        walked.append(end / settings.cash - 1.0)
    np.testing.assert_allclose(swept, walked, rtol=0, atol=1e-6)
