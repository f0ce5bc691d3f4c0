"""Optimiser: grids, ranking, walk-forward flag."""

from __future__ import annotations

import numpy as np
import pytest

from worker.backtest import CandleSeries, Settings, run_backtest, run_grid
from worker.backtest.optimize import expand, grid_around, optimize, parse_ranges
from worker.strategies import Candles, InvalidParameters, SignalGrid, get_strategy


def test_grid_is_30_percent_around_each_numeric_parameter() -> None:
    g = grid_around("sma_cross", {"fast": 10, "slow": 20})
    assert g == {"fast": list(range(7, 14)), "slow": list(range(14, 27))}
    b = grid_around("bollinger", {"period": 20, "std": 2.0}, steps=5)
    assert b["std"] == pytest.approx([1.4, 1.7, 2.0, 2.3, 2.6])
    with pytest.raises(InvalidParameters):
        grid_around("rules", {"entry_long": {"left": 1, "op": "<", "right": 2}})


def test_explicit_ranges_and_invalid_combinations_are_skipped() -> None:
    r = parse_ranges({"fast": {"start": 5, "stop": 15, "step": 5}, "slow": [10, 20]})
    assert r == {"fast": [5, 10, 15], "slow": [10, 20]}
    sets, skipped = expand("sma_cross", {}, r)
    assert skipped == 2  # (10, 10) and (15, 10): fast must be below slow
    assert [(p.fast, p.slow) for p in sets] == [(5, 10), (5, 20), (10, 20), (15, 20)]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="fast"):
        parse_ranges({"fast": "5..10"})


def trending(n: int = 3000, seed: int = 4) -> CandleSeries:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, n)))
    o = np.r_[c[0], c[:-1]]
    candles = Candles.from_arrays(np.arange(n) * 300_000, o, np.maximum(o, c), np.minimum(o, c), c)
    return CandleSeries(candles, 300_000, (), "synthetic")


def test_ranking_matches_single_backtests() -> None:
    series = trending()
    values = {"fast": [5, 10], "slow": [20, 40]}
    res = optimize([series], "ema_cross", values, metric="sharpe_ratio",
                   settings=Settings(fee=0.001))  # fmt: skip
    sharpes = [r.stats["sharpe_ratio"] for r in res.ranked]
    assert sharpes == sorted(sharpes, reverse=True)  # type: ignore[type-var]
    for r in res.ranked:
        single = run_backtest(series, "ema_cross", r.params, Settings(fee=0.001))
        assert single.stats["sharpe_ratio"] == pytest.approx(r.stats["sharpe_ratio"])
    low = optimize([series], "ema_cross", values, metric="max_drawdown")
    dds = [r.stats["max_drawdown"] for r in low.ranked]
    assert dds == sorted(dds)  # type: ignore[type-var]


def test_walk_forward_reports_out_of_sample_and_overfit_flag() -> None:
    series = trending()
    res = optimize([series], "sma_cross", grid_around("sma_cross", {}), oos_fraction=0.3,
                   metric="total_return_percentage")  # fmt: skip
    best = res.ranked[0]
    assert best.oos_stats is not None
    # the out-of-sample run trades only the last 30 % of the candles
    oos_candles = series.candles.slice(2100, 3000)
    assert best.oos_stats["total_trades"] == pytest.approx(
        run_backtest(oos_candles, "sma_cross", best.params).stats["total_trades"], abs=1
    )
    assert res.overfit is not None and res.oos_rank_correlation is not None


def test_walk_forward_folds_score_each_window_on_the_next() -> None:
    series = trending(3000)
    values = {"fast": [5, 10, 15], "slow": [30, 60]}
    res = optimize([series], "sma_cross", values, metric="total_return_percentage", folds=2)
    assert [(f.train_start, f.train_end, f.test_start, f.test_end) for f in res.folds] == [
        (0, 1000, 1000, 2000),
        (1000, 2000, 2000, 3000),
    ]
    grid = [{"fast": a, "slow": b} for a in values["fast"] for b in values["slow"]]
    signals = get_strategy("sma_cross").signal_grid(series.candles, grid)
    for f in res.folds:
        # the pick is the best set of its training window; indicators see the earlier history
        cut = slice(f.train_start, f.train_end)
        window = SignalGrid(*(getattr(signals, k)[:, cut] for k in SignalGrid.__slots__))
        run = run_grid(series.candles.slice(f.train_start, f.train_end), "sma_cross", grid,
                       signals=window)  # fmt: skip
        best = int(np.argmax(run.metrics["total_return_percentage"]))
        assert f.params == grid[best]
        assert f.in_sample == pytest.approx(run.metrics["total_return_percentage"][best])
        assert 0 <= f.oos_percentile <= 100
    first = res.folds[0]  # starts at candle 0: same as a plain backtest of the window
    assert first.in_sample == pytest.approx(
        run_backtest(series.candles.slice(0, 1000), "sma_cross", first.params).stats[
            "total_return_percentage"
        ]
    )
    assert res.overfit is not None
