"""Equity metrics against empyrical-reloaded on real backtests, and the market's calendar.

The reference gets the same equity curve (as returns, the initial cash first) and the same
number of candles per year; every metric must agree within 1e-9.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import empyrical as ep
import numpy as np
import pytest

from worker.backtest import CandleSeries, Settings, load_csv, run_backtest
from worker.backtest.sessions import market_calendar, session_gaps
from worker.candles import find_gaps
from worker.strategies.base import Candles

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
DAY = 86_400_000
YEAR = 365 * DAY
TOLERANCE = 1e-9

RUNS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("ETH_BTC-5m.csv", "sma_cross", {"fast": 10, "slow": 20}, {"fee": 0.002, "shorts": True}),
    ("ZEC_BTC-5m.csv", "ema_cross", {"fast": 8, "slow": 21}, {"fee": 0.001}),
    ("SOL_USDT-5m.csv", "rsi", {}, {"stake_fraction": 0.5}),
    ("XRP_ETH-1m.csv", "macd", {}, {"shorts": True, "slippage": 0.0005}),
    ("UNITTEST_BTC-30m.csv", "bollinger", {}, {"fee": 0.0}),
]


def goog_daily() -> CandleSeries:
    """backtesting.py's GOOG daily bars (2004-2013, trading sessions only)."""
    test_data = pytest.importorskip("backtesting.test")
    df = test_data.GOOG
    time = df.index.values.astype("datetime64[ms]").astype(np.int64)
    candles = Candles.from_arrays(
        time, *(df[c].to_numpy(np.float64) for c in ("Open", "High", "Low", "Close", "Volume"))
    )
    return CandleSeries(candles, DAY, find_gaps(time, DAY), name="GOOG-1d")


def reference(equity: np.ndarray, cash: float, per_year: float) -> dict[str, float]:
    """The metrics as empyrical computes them, in our units."""
    r = np.diff(np.concatenate([[cash], equity])) / np.concatenate([[cash], equity[:-1]])
    return {
        "sharpe_ratio": float(ep.sharpe_ratio(r, annualization=per_year)),
        "sortino_ratio": float(ep.sortino_ratio(r, annualization=per_year)),
        "annual_return_percentage": float(ep.annual_return(r, annualization=per_year)) * 100,
        "annual_volatility_percentage": float(ep.annual_volatility(r, annualization=per_year))
        * 100,
        "max_drawdown": -float(ep.max_drawdown(r)) * 100,
        "calmar_ratio": float(ep.calmar_ratio(r, annualization=per_year)),
    }


def compare(series: CandleSeries, strategy: str, params: dict[str, Any], settings: Settings,
            per_year: float) -> dict[str, tuple[float, float]]:  # fmt: skip
    res = run_backtest(series, strategy, params, settings)
    assert res.stats["total_trades"]
    equity = np.array([p["equity"] for p in res.equity])
    ref = reference(equity, settings.cash, per_year)
    out = {}
    for key, want in ref.items():
        got = res.stats[key]
        assert isinstance(got, float), key
        # percentages compared as fractions, like the reference returns them
        scale = 100.0 if key.endswith("percentage") or key == "max_drawdown" else 1.0
        assert abs(got - want) / scale <= TOLERANCE, (key, got, want)
        out[key] = (got, want)
    return out


@pytest.mark.parametrize(("name", "strategy", "params", "settings"), RUNS)
def test_crypto_metrics_match_empyrical(
    name: str, strategy: str, params: dict[str, Any], settings: dict[str, Any]
) -> None:
    series = load_csv(DATA / name)
    assert market_calendar(series.candles.time, series.timeframe_ms) == "24/7"
    compare(series, strategy, params, Settings(**settings), YEAR / series.timeframe_ms)


def test_goog_daily_is_annualised_by_its_sessions_and_matches_empyrical() -> None:
    series = goog_daily()
    t = series.candles.time
    sessions = len(t) / ((t[-1] - t[0] + DAY) / YEAR)
    assert 250 < sessions < 254  # trading days a year, not 365
    compare(series, "sma_cross", {"fast": 10, "slow": 20}, Settings(), sessions)
    compare(series, "ema_cross", {"fast": 8, "slow": 21}, Settings(fee=0.002), sessions)
    compare(series, "bollinger", {}, Settings(shorts=True, stake_fraction=0.5), sessions)


def test_goog_weekends_and_holidays_are_not_missing_candles() -> None:
    series = goog_daily()
    assert series.missing > 900  # by the clock, every weekend looks like a gap
    res = run_backtest(series, "sma_cross", {"fast": 10, "slow": 20})
    assert res.stats["missing_candles"] == 0 and res.gaps == []


def weekday_candles(years: int, drop: list[int]) -> Candles:
    """Daily candles on weekdays only (from Monday 2024-01-01), without the given ones."""
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64(f"{2024 + years}-01-01"))
    days = days[np.is_busday(days)]
    days = np.delete(days, drop)
    time = days.astype("datetime64[ms]").astype(np.int64)
    close = 100 * np.cumprod(1 + 0.01 * np.sin(np.arange(len(time)) / 3.0))
    return Candles.from_arrays(time, close, close * 1.01, close * 0.99, close, np.ones(len(time)))


def test_session_market_reports_only_real_gaps() -> None:
    # one holiday (a Wednesday) and a missing week (Monday to Friday)
    candles = weekday_candles(2, drop=[2, *range(100, 105)])
    res = run_backtest(candles, "sma_cross", {"fast": 5, "slow": 10})
    assert res.stats["missing_candles"] == 5
    assert [g.missing for g in res.gaps] == [5]
    sessions = len(candles) / ((candles.time[-1] - candles.time[0] + DAY) / YEAR)
    assert 255 < sessions < 262
    equity = np.array([p["equity"] for p in res.equity])
    want = reference(equity, 10_000.0, sessions)["sharpe_ratio"]
    assert res.stats["sharpe_ratio"] == pytest.approx(want, abs=TOLERANCE)


def test_crypto_weekends_are_gaps() -> None:
    # a 24/7 market: two days missing over a weekend are two days of missing candles
    time = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-02-01"))
    time = np.delete(time, [5, 6]).astype("datetime64[ms]").astype(np.int64)
    assert market_calendar(time, DAY) == "24/7"
    assert sum(g.missing for g in find_gaps(time, DAY)) == 2
    # the same gap in a session market is a weekend
    assert session_gaps(find_gaps(time, DAY), DAY) == ()


def main() -> None:
    """Print ours vs empyrical per metric for every run above (the docs' comparison table)."""
    runs = [(load_csv(DATA / n), s, p, Settings(**k)) for n, s, p, k in RUNS]
    runs.append((goog_daily(), "sma_cross", {"fast": 10, "slow": 20}, Settings()))
    worst: dict[str, float] = {}
    print("| run | metric | ours | empyrical | difference |")
    print("|---|---|---:|---:|---:|")
    for series, strategy, params, settings in runs:
        tm = series.candles.time
        if market_calendar(tm, series.timeframe_ms) == "sessions":
            per_year = len(tm) / ((tm[-1] - tm[0] + DAY) / YEAR)
        else:
            per_year = YEAR / series.timeframe_ms
        for key, (got, want) in compare(series, strategy, params, settings, per_year).items():
            worst[key] = max(worst.get(key, 0.0), abs(got - want))
            diff = abs(got - want)
            print(f"| {series.name} {strategy} | {key} | {got:.12g} | {want:.12g} | {diff:.1e} |")
    print()
    print("| metric | largest difference |")
    print("|---|---:|")
    for key, diff in worst.items():
        print(f"| {key} | {diff:.1e} |")


if __name__ == "__main__":
    main()
