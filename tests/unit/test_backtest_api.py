"""run_backtest on real candles: what the app job stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.backtest import Settings, load_csv, run_backtest, run_grid
from worker.strategies import InvalidParameters

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
DB_COLUMNS = {
    "initial_balance", "final_balance", "total_return", "total_return_percentage",
    "max_drawdown", "sharpe_ratio", "sortino_ratio", "win_rate", "profit_factor",
    "total_trades", "winning_trades", "losing_trades", "best_trade", "worst_trade",
    "avg_trade", "max_consecutive_wins", "max_consecutive_losses", "calmar_ratio",
}  # fmt: skip


def test_run_backtest_on_real_candles() -> None:
    series = load_csv(DATA / "ZEC_BTC-5m.csv")
    res = run_backtest(series, "sma_cross", {"fast": 10, "slow": 20}, Settings(fee=0.002))
    assert DB_COLUMNS <= set(res.stats)
    s = res.stats
    assert s["total_trades"] == len(res.trades) > 10
    assert s["winning_trades"] + s["losing_trades"] <= s["total_trades"]  # type: ignore[operator]
    assert s["final_balance"] == pytest.approx(res.equity[-1]["equity"])
    assert sum(t["pnl"] for t in res.trades) == pytest.approx(s["total_return"])
    assert all(t["side"] == "long" for t in res.trades)
    assert len(res.equity) == len(series.candles)
    assert s["missing_candles"] == 2 and len(res.gaps) == 2
    assert res.timeframe == "5m" and res.start_date == "2018-01-10T04:55:00Z"
    json.dumps(res.to_dict(), allow_nan=False)


def test_shorts_trade_both_sides() -> None:
    res = run_backtest(
        load_csv(DATA / "ETH_BTC-5m.csv"), "ema_cross", {"fast": 8, "slow": 21}, {"shorts": True}
    )
    assert {t["side"] for t in res.trades} == {"long", "short"}
    # every reversal exits and enters on the same candle
    for a, b in zip(res.trades, res.trades[1:], strict=False):
        assert a["exit_time"] == b["entry_time"]


def test_grid_rows_equal_single_runs() -> None:
    series = load_csv(DATA / "LTC_BTC-5m.csv")
    sets = [{"fast": 7, "slow": 30}, {"fast": 12, "slow": 26}]
    grid = run_grid(series, "sma_cross", sets, {"fee": 0.001})
    for k, p in enumerate(sets):
        assert grid.stats(k) == pytest.approx(
            run_backtest(series, "sma_cross", p, {"fee": 0.001}).stats
        )


def test_bad_input_is_rejected_with_a_clear_message() -> None:
    series = load_csv(DATA / "LTC_BTC-5m.csv")
    with pytest.raises(InvalidParameters, match="'slow'"):
        run_backtest(series, "sma_cross", {"fast": 30, "slow": 10})
    with pytest.raises(ValueError, match="fee"):
        run_backtest(series, "sma_cross", {}, {"fee": -1})


def test_rules_strategy_with_stops_through_the_public_function() -> None:
    rules = {
        "entry_long": {
            "left": {"indicator": "rsi", "period": 14},
            "op": "crosses_above",
            "right": 30,
        },
        "exit_long": {"left": {"indicator": "rsi", "period": 14}, "op": ">", "right": 70},
        "stop_loss": 0.01,
        "take_profit": 0.02,
    }
    res = run_backtest(load_csv(DATA / "XLM_BTC-5m.csv"), "rules", rules, {"fee": 0.001})
    reasons = {t["exit_reason"] for t in res.trades}
    assert {"stop_loss", "take_profit"} <= reasons
    for t in res.trades:
        if t["exit_reason"] == "stop_loss":
            assert t["exit_price"] <= t["entry_price"] * 0.99 + 1e-15
        if t["exit_reason"] == "take_profit":
            assert t["exit_price"] >= t["entry_price"] * 1.02 - 1e-15
    assert res.stats["final_balance"] == pytest.approx(10_000 + sum(t["pnl"] for t in res.trades))
