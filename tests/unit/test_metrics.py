"""Metrics against hand-computed values."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from worker.backtest.engine import Trades
from worker.backtest.metrics import equity_metrics, row_stats, trade_metrics


def trades_with_pnl(pnl: list[float], set_id: list[int] | None = None) -> Trades:
    n = len(pnl)
    p = np.array(pnl, dtype=float)
    i = np.zeros(n, dtype=np.int64)
    f = np.zeros(n)
    sid = np.array(set_id if set_id is not None else [0] * n, dtype=np.int64)
    side = np.ones(n, dtype=np.int8)
    return Trades(sid, side, i, i, f, f, f, np.full(n, 100.0), f, f, f, p, p, side)


def test_returns_volatility_sharpe_sortino() -> None:
    eq = np.array([[110.0, 99.0, 120.0]])
    m = row_stats(equity_metrics(eq, 100.0, 365.0, np.array([1.0])), 0)
    r = [0.1, -0.1, 120 / 99 - 1]
    per_year = 365
    assert m["total_return"] == pytest.approx(20.0)
    assert m["total_return_percentage"] == pytest.approx(20.0)
    assert m["final_balance"] == 120.0
    assert m["annual_return_percentage"] == pytest.approx((1.2 ** (365 / 3) - 1) * 100)
    sd = statistics.stdev(r)
    assert m["annual_volatility_percentage"] == pytest.approx(sd * math.sqrt(per_year) * 100)
    assert m["sharpe_ratio"] == pytest.approx(statistics.mean(r) / sd * math.sqrt(per_year))
    downside = math.sqrt(0.1**2 / 3)
    assert m["sortino_ratio"] == pytest.approx(statistics.mean(r) / downside * math.sqrt(per_year))
    assert m["max_drawdown"] == pytest.approx(10.0)
    assert m["calmar_ratio"] == pytest.approx((1.2 ** (365 / 3) - 1) / 0.1)
    assert m["exposure_time_percentage"] == 100.0


def test_drawdown_depth_duration_and_average() -> None:
    eq = np.array([[90.0, 100.0, 95.0, 80.0, 105.0, 105.0]])
    m = row_stats(equity_metrics(eq, 100.0, 365.0, np.array([0.5])), 0)
    # episodes: [90] (10 %) and [95, 80] (20 %)
    assert m["max_drawdown"] == pytest.approx(20.0)
    assert m["avg_drawdown"] == pytest.approx(15.0)
    assert m["max_drawdown_duration_bars"] == 2


def test_flat_equity_has_no_ratios() -> None:
    m = row_stats(equity_metrics(np.full((1, 5), 100.0), 100.0, 365.0, np.zeros(1)), 0)
    assert m["sharpe_ratio"] is None and m["calmar_ratio"] is None
    assert m["max_drawdown"] == 0.0 and m["avg_drawdown"] == 0.0
    assert m["annual_return_percentage"] == 0.0


def test_one_year_of_daily_bars_annualises_to_total_return() -> None:
    eq = np.linspace(101, 150, 365)[None, :]
    m = row_stats(equity_metrics(eq, 100.0, 365.0, np.ones(1)), 0)
    assert m["annual_return_percentage"] == pytest.approx(50.0)


def test_trade_metrics_hand_computed() -> None:
    pnl = [10.0, -5.0, 20.0, -5.0, -5.0, 0.0]
    m = row_stats(trade_metrics(trades_with_pnl(pnl), 1), 0)
    assert m["total_trades"] == 6
    assert (m["winning_trades"], m["losing_trades"]) == (2, 3)
    assert m["win_rate"] == pytest.approx(100 * 2 / 6)
    assert m["profit_factor"] == pytest.approx(30 / 15)
    assert (m["best_trade"], m["worst_trade"]) == (20.0, -5.0)
    assert m["avg_trade"] == pytest.approx(15 / 6)
    assert m["expectancy_pct"] == pytest.approx(15 / 6)
    assert m["sqn"] == pytest.approx(math.sqrt(6) * (15 / 6) / statistics.stdev(pnl))
    assert m["max_consecutive_wins"] == 1
    assert m["max_consecutive_losses"] == 2


def test_trade_metrics_per_set_and_undefined_values() -> None:
    trades = trades_with_pnl([1.0, 2.0, 3.0, -1.0, -2.0], set_id=[0, 0, 0, 2, 2])
    metrics = trade_metrics(trades, 3)
    a, b, c = (row_stats(metrics, k) for k in range(3))
    assert a["max_consecutive_wins"] == 3 and a["profit_factor"] is None
    assert b["total_trades"] == 0 and b["win_rate"] is None and b["best_trade"] is None
    assert c["max_consecutive_losses"] == 2 and c["max_consecutive_wins"] == 0
    assert c["profit_factor"] == 0.0


def test_many_sets_at_once_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(2)
    eq = 100 * np.cumprod(1 + rng.normal(0, 0.01, (4, 300)), axis=1)
    exposure = np.array([0.1, 0.2, 0.3, 0.4])
    together = equity_metrics(eq, 100.0, 365.0, exposure)
    for k in range(4):
        alone = equity_metrics(eq[k : k + 1], 100.0, 365.0, exposure[k : k + 1])
        assert row_stats(together, k) == pytest.approx(row_stats(alone, 0))
