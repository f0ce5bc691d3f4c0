"""Backtester: the bots' own strategies on historical candles, with the paper fill rules.

Public API::

    from worker.backtest import run_backtest, load_csv, Settings

    series = load_csv("ETH_BTC-5m.csv")                       # gaps in series.gaps
    result = run_backtest(series, "sma_cross", {"fast": 10, "slow": 20},
                          Settings(fee=0.002, shorts=True))
    result.stats["sharpe_ratio"], result.trades, result.equity
"""

from __future__ import annotations

from worker.backtest.api import BacktestResult, GridResult, run_backtest, run_grid
from worker.backtest.data import CandleDataError, CandleSeries, Gap, load_csv
from worker.backtest.engine import Settings, Trades, simulate

__all__ = [
    "BacktestResult",
    "CandleDataError",
    "CandleSeries",
    "Gap",
    "GridResult",
    "Settings",
    "Trades",
    "load_csv",
    "run_backtest",
    "run_grid",
    "simulate",
]
