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
from worker.backtest.batch import load_many, run_batch
from worker.backtest.engine import Settings, Trades, simulate
from worker.backtest.optimize import OptimizeResult, grid_around, optimize
from worker.backtest.report import render, write_report
from worker.candles import CandleDataError, CandleSeries, Gap, load_csv

__all__ = [
    "BacktestResult",
    "CandleDataError",
    "CandleSeries",
    "Gap",
    "GridResult",
    "OptimizeResult",
    "Settings",
    "Trades",
    "grid_around",
    "load_csv",
    "load_many",
    "optimize",
    "render",
    "run_backtest",
    "run_batch",
    "run_grid",
    "simulate",
    "write_report",
]
