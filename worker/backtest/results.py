"""The ``backtest_results`` row of a backtest: figures at their column scale, the trades,
the equity curve (with its drawdown series, downsampled) and the run's metadata."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np

from worker.backtest.api import BacktestResult
from worker.candles import CandleSeries, iso

MAX_EQUITY_POINTS = 2000

# backtest_results columns filled from the stats, with their scale (numeric(p, s)).
_NULLABLE = {
    "sharpe_ratio": 4,
    "sortino_ratio": 4,
    "profit_factor": 4,
    "calmar_ratio": 4,
    "avg_trade": 8,
}
_REQUIRED = {
    "initial_balance": 8,
    "final_balance": 8,
    "total_return": 8,
    "total_return_percentage": 4,
    "max_drawdown": 4,
    "win_rate": 2,
    "best_trade": 8,
    "worst_trade": 8,
}
_COUNTS = (
    "total_trades",
    "winning_trades",
    "losing_trades",
    "max_consecutive_wins",
    "max_consecutive_losses",
)
_LIMIT = {2: Decimal("999.99"), 4: Decimal("99999999.9999"), 8: Decimal("999999999999.99999999")}


def downsample(
    equity: list[dict[str, Any]], limit: int = MAX_EQUITY_POINTS
) -> list[dict[str, Any]]:
    """At most ``limit`` points, evenly spaced, keeping the first, the last and the deepest
    drawdown (so the chart still shows the max drawdown the stats report)."""
    n = len(equity)
    if n <= limit:
        return equity
    deepest = max(range(n), key=lambda i: float(equity[i].get("drawdown") or 0.0))
    keep = {int(i) for i in np.linspace(0, n - 1, limit - 1).round()} | {deepest}
    return [equity[i] for i in sorted(keep)]


def _number(value: float | int | None, scale: int) -> str | None:
    if value is None or not math.isfinite(value):
        return None
    d = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-scale))
    return str(max(-_LIMIT[scale], min(_LIMIT[scale], d)))


def result_row(result: BacktestResult, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The ``backtest_results`` columns a worker fills (the run supplies who and what)."""
    s = result.stats
    row: dict[str, Any] = {
        "start_date": result.start_date,
        "end_date": result.end_date,
        "stats": s,
        "trades": result.trades,
        "equity_curve": downsample(result.equity),
        "metadata": dict(metadata),
    }
    for key, scale in _NULLABLE.items():
        row[key] = _number(s.get(key), scale)
    for key, scale in _REQUIRED.items():
        row[key] = _number(s.get(key), scale) or "0"
    for key in _COUNTS:
        row[key] = int(s.get(key) or 0)
    return row


def metadata(result: BacktestResult, series: CandleSeries, source: str) -> dict[str, Any]:
    """What a result row records about its run: candles, gaps, strategy and settings."""
    return {
        "source": source,
        "strategy": result.strategy,
        "params": result.params,
        "settings": result.settings.model_dump(),
        "candles": len(series.candles),
        "missing_candles": sum(g.missing for g in result.gaps),
        "gaps": [
            {"after": iso(g.after), "before": iso(g.before), "missing": g.missing}
            for g in result.gaps
        ],
        "equity_points": len(result.equity),
    }
