"""Performance metrics, computed for many parameter sets at once (one row per set).

Definitions (``E`` = equity at each candle's close, marked to market, preceded by the
initial cash ``E0``; ``r`` = candle-to-candle returns of ``E``, ``n`` of them; ``P`` =
candles per year of the market's calendar (:mod:`worker.backtest.sessions`: 365 days a
year for crypto, the candles the data has per year for session markets); risk-free rate 0).

The equity-curve metrics follow empyrical's definitions (``empyrical-reloaded``: the
functions of the same name given ``r`` and ``annualization=P``); a test checks them
against it within 1e-9 on real backtests:

- ``total_return`` = ``E[-1] - E0`` (quote currency); ``total_return_percentage`` = ``E[-1]/E0 - 1`` in %.
- ``annual_return_percentage`` (CAGR, empyrical ``annual_return``) =
  ``(E[-1]/E0) ** (1/years) - 1`` in %, ``years = n / P`` (the time the candles cover;
  missing candles do not count).
- ``annual_volatility_percentage`` (empyrical ``annual_volatility``) =
  ``std(r, ddof=1) * sqrt(P)`` in %.
- ``sharpe_ratio`` (empyrical ``sharpe_ratio``) = ``mean(r) / std(r, ddof=1) * sqrt(P)``.
- ``sortino_ratio`` (empyrical ``sortino_ratio``) =
  ``mean(r) / sqrt(mean(min(r, 0)**2)) * sqrt(P)`` (downside deviation around 0 over all
  candles).
- ``max_drawdown`` (empyrical ``max_drawdown``, sign flipped) = largest
  ``1 - E / running_max(E)`` in % (positive number).
- ``calmar_ratio`` (empyrical ``calmar_ratio``) = CAGR / max drawdown (both as fractions).
- ``max_drawdown_duration_bars``: most candles from a peak until equity is back at that peak
  (or the end of the data).
- ``avg_drawdown``: mean, over drawdown episodes (maximal runs below the running peak),
  of each episode's deepest drawdown, in %.

Trade metrics say what they are computed from: **P&L** (quote currency, net of fees, as
freqtrade) or **returns** (each trade's P&L over its stake, in %, as backtesting.py):

- ``win_rate`` = winners / trades in % (a winner has ``pnl > 0``, a loser ``pnl < 0``).
- ``profit_factor`` (P&L) = gross profit / gross loss.
- ``best_trade``/``worst_trade``/``avg_trade`` (P&L) = max/min/mean of trade P&L;
  ``best_trade_pct``/``worst_trade_pct``/``avg_trade_pct`` (returns): the same of returns.
- ``expectancy_pct`` (returns) = mean return per trade in % (= win rate x average win -
  loss rate x average loss).
- ``sqn`` (P&L) = ``sqrt(trades) * mean(pnl) / std(pnl, ddof=1)`` (Van Tharp).
- ``max_consecutive_wins``/``losses``: longest streak of winners/losers.
- ``exposure_time_percentage``: share of candles closed with a position open, in %.
- ``buy_and_hold_return_percentage`` = ``close[-1] / close[0] - 1`` in %.

Undefined values (no trades, no losing trade for the profit factor, zero volatility...)
are NaN here and ``None`` in the stats dictionaries.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from worker.backtest.engine import Trades
from worker.strategies.base import FloatArray, IntArray

# metrics computed from the equity curves / from the trades (order = report order)
EQUITY_METRICS = (
    "initial_balance",
    "final_balance",
    "total_return",
    "total_return_percentage",
    "annual_return_percentage",
    "annual_volatility_percentage",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "max_drawdown",
    "max_drawdown_duration_bars",
    "avg_drawdown",
    "exposure_time_percentage",
)
TRADE_METRICS = (
    "total_trades",
    "winning_trades",
    "losing_trades",
    "win_rate",
    "profit_factor",
    "best_trade",
    "worst_trade",
    "avg_trade",
    "best_trade_pct",
    "worst_trade_pct",
    "avg_trade_pct",
    "expectancy_pct",
    "sqn",
    "max_consecutive_wins",
    "max_consecutive_losses",
)
INT_METRICS = {
    "total_trades",
    "winning_trades",
    "losing_trades",
    "max_consecutive_wins",
    "max_consecutive_losses",
    "max_drawdown_duration_bars",
    "missing_candles",
}


def _div(a: Any, b: Any) -> FloatArray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    out = np.full(np.broadcast(a, b).shape, np.nan)
    ok = b != 0
    np.divide(a, b, out=out, where=ok)
    return out


def drawdowns(equity: FloatArray, cash: float) -> FloatArray:
    """Drawdown (fraction below the running peak, >= 0) at each close; ``cash`` seeds the peak."""
    dd: FloatArray = np.maximum.accumulate(equity, axis=-1)
    np.maximum(dd, cash, out=dd)
    np.divide(equity, dd, out=dd)
    np.subtract(1.0, dd, out=dd)
    return dd


def _episodes(dd: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row: number of drawdown episodes, sum of their deepest points, longest length.

    An episode is a maximal run of closes below the running peak; its length is the
    drawdown's duration in candles.
    """
    sets, n = dd.shape
    zero = np.zeros(sets)
    if n == 0:
        return zero, zero, zero
    under = dd > 0
    start = under.copy()
    start[:, 1:] &= ~under[:, :-1]
    end = under.copy()
    end[:, :-1] &= ~under[:, 1:]
    first, last = np.flatnonzero(start), np.flatnonzero(end)
    if len(first) == 0:
        return zero, zero, zero
    # each episode's deepest point: reduce from its start to the next start or row end
    bounds = np.union1d(first, np.arange(sets) * n)
    depth = np.maximum.reduceat(dd.ravel(), bounds)[np.searchsorted(bounds, first)]
    rows = first // n
    count: FloatArray = np.bincount(rows, minlength=sets).astype(np.float64)
    total: FloatArray = np.asarray(np.bincount(rows, weights=depth, minlength=sets), np.float64)
    longest = np.zeros(sets)
    np.maximum.at(longest, rows, (last - first + 1).astype(np.float64))
    return count, total, longest


def equity_metrics(
    equity: FloatArray,
    cash: float,
    per_year: float,
    exposure: FloatArray,
) -> dict[str, FloatArray]:
    """Equity-curve metrics for each row of ``equity`` (shape ``(sets, candles)``);
    ``per_year`` is the number of candles in a year of the market's calendar."""
    sets, n = equity.shape
    final = equity[:, -1] if n else np.full(sets, cash)
    growth = final / cash
    years = n / per_year if per_year > 0 else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        cagr = (
            np.where(growth > 0, growth ** (1.0 / years), 0.0) - 1.0
            if years > 0
            else growth * np.nan
        )
    nan = np.full(sets, np.nan)
    mean, std, downside = nan, nan, nan
    if n:
        r = np.empty_like(equity)
        r[:, 0] = equity[:, 0] / cash
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(equity[:, 1:], equity[:, :-1], out=r[:, 1:])
        r -= 1.0
        if equity.min() <= 0:  # bankrupt: returns past zero equity are meaningless
            r[~np.isfinite(r)] = 0.0
        mean = r.sum(axis=1) / n
        if n > 1:
            squares = np.einsum("ij,ij->i", r, r)
            std = np.sqrt(np.maximum(squares - n * mean * mean, 0.0) / (n - 1))
        np.minimum(r, 0.0, out=r)
        downside = np.sqrt(np.einsum("ij,ij->i", r, r) / n)
    dd = drawdowns(equity, cash)
    max_dd = dd.max(axis=1, initial=0.0)
    count, depth, longest = _episodes(dd)
    return {
        "initial_balance": np.full(sets, cash),
        "final_balance": final,
        "total_return": final - cash,
        "total_return_percentage": (growth - 1.0) * 100.0,
        "annual_return_percentage": cagr * 100.0,
        "annual_volatility_percentage": std * math.sqrt(per_year) * 100.0,
        "sharpe_ratio": _div(mean, std) * math.sqrt(per_year),
        "sortino_ratio": _div(mean, downside) * math.sqrt(per_year),
        "calmar_ratio": _div(cagr, max_dd),
        "max_drawdown": max_dd * 100.0,
        "max_drawdown_duration_bars": longest,
        "avg_drawdown": np.where(count > 0, _div(depth, count), 0.0) * 100.0,
        "exposure_time_percentage": exposure * 100.0,
    }


def _max_streak(flag: Any, set_id: IntArray, sets: int) -> FloatArray:
    """Longest run of True in ``flag`` within each set (trades are in set-major order)."""
    out = np.zeros(sets)
    if len(flag) == 0:
        return out
    brk = np.ones(len(flag), dtype=np.bool_)
    brk[1:] = (flag[1:] != flag[:-1]) | (set_id[1:] != set_id[:-1])
    run_id = np.cumsum(brk) - 1
    length = np.bincount(run_id)
    starts = np.flatnonzero(brk)
    keep = flag[starts]
    np.maximum.at(out, set_id[starts][keep], length[keep])
    return out


def trade_metrics(trades: Trades, sets: int) -> dict[str, FloatArray]:
    """Trade-list metrics per set."""
    sid, pnl, ret = trades.set_id, trades.pnl, trades.return_pct
    count = np.bincount(sid, minlength=sets).astype(np.float64)
    win, loss = pnl > 0, pnl < 0
    wins = np.bincount(sid, weights=win, minlength=sets)
    losses = np.bincount(sid, weights=loss, minlength=sets)
    gross_win = np.bincount(sid, weights=np.where(win, pnl, 0.0), minlength=sets)
    gross_loss = -np.bincount(sid, weights=np.where(loss, pnl, 0.0), minlength=sets)
    total = np.bincount(sid, weights=pnl, minlength=sets)
    mean = _div(total, count)
    dev = pnl - mean[sid] if len(sid) else pnl
    var = _div(np.bincount(sid, weights=dev * dev, minlength=sets), count - 1)
    best, worst = np.full(sets, -np.inf), np.full(sets, np.inf)
    best_pct, worst_pct = best.copy(), worst.copy()
    np.maximum.at(best, sid, pnl)
    np.minimum.at(worst, sid, pnl)
    np.maximum.at(best_pct, sid, ret)
    np.minimum.at(worst_pct, sid, ret)
    none = count == 0
    for a in (best, worst, best_pct, worst_pct):
        a[none] = np.nan
    avg_pct = _div(np.bincount(sid, weights=ret, minlength=sets), count)
    return {
        "total_trades": count,
        "winning_trades": wins,
        "losing_trades": losses,
        "win_rate": _div(wins, count) * 100.0,
        "profit_factor": _div(gross_win, gross_loss),
        "best_trade": best,
        "worst_trade": worst,
        "avg_trade": mean,
        "best_trade_pct": best_pct,
        "worst_trade_pct": worst_pct,
        "avg_trade_pct": avg_pct,
        "expectancy_pct": avg_pct,
        "sqn": np.sqrt(count) * _div(mean, np.sqrt(var)),
        "max_consecutive_wins": _max_streak(win, sid, sets),
        "max_consecutive_losses": _max_streak(loss, sid, sets),
    }


def row_stats(metrics: dict[str, FloatArray], row: int) -> dict[str, float | int | None]:
    """One set's metrics as plain Python values (NaN/inf -> None, counts -> int)."""
    out: dict[str, float | int | None] = {}
    for key, values in metrics.items():
        v = float(values[row])
        if not math.isfinite(v):
            out[key] = None
        elif key in INT_METRICS:
            out[key] = round(v)
        else:
            out[key] = v
    return out
