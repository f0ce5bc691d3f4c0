"""The backtester's public functions: one run, or many parameter sets over the same candles.

The app-side job calls :func:`run_backtest` and stores ``result.stats`` (keys match the
``backtest_results`` columns), ``result.trades`` and ``result.equity``. Values are floats;
convert money to ``Decimal`` (``Decimal(str(x))``) when storing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worker.backtest.engine import EXIT_REASONS, GridRun, Settings, Trades, simulate
from worker.backtest.metrics import equity_metrics, row_stats, trade_metrics
from worker.backtest.sessions import periods_per_year, with_calendar
from worker.candles import CandleSeries, Gap, find_gaps, infer_timeframe, iso, timeframe_label
from worker.strategies.base import Candles, FloatArray, SignalGrid, StrategyParams
from worker.strategies.registry import get_strategy

Stats = dict[str, float | int | None]


@dataclass(slots=True)
class BacktestResult:
    """One backtest: stats (``backtest_results`` columns and more), trades and equity curve."""

    strategy: str
    params: dict[str, Any]
    settings: Settings
    stats: Stats
    trades: list[dict[str, Any]]
    equity: list[dict[str, Any]]
    timeframe: str
    start_date: str
    end_date: str
    gaps: list[Gap] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``tradefleet backtest --json`` prints)."""
        return {
            "strategy": self.strategy,
            "params": self.params,
            "settings": self.settings.model_dump(),
            "timeframe": self.timeframe,
            "start_date": self.start_date,
            "end_date": self.end_date,
            "gaps": [
                {"after": iso(g.after), "before": iso(g.before), "missing": g.missing}
                for g in self.gaps
            ],
            "stats": self.stats,
            "trades": self.trades,
            "equity": self.equity,
        }


@dataclass(slots=True)
class GridResult:
    """Many parameter sets over the same candles: metric arrays with one value per set."""

    params: list[dict[str, Any]]
    metrics: dict[str, FloatArray]
    run: GridRun

    def stats(self, k: int) -> Stats:
        return row_stats(self.metrics, k)


def _series(candles: Candles | CandleSeries) -> CandleSeries:
    """The candles as a series whose gaps are those of the market's calendar."""
    if not isinstance(candles, CandleSeries):
        tf = infer_timeframe(candles.time) if len(candles) > 1 else 60_000
        candles = CandleSeries(candles, tf, find_gaps(candles.time, tf))
    return with_calendar(candles)[0]


def _settings(settings: Settings | Mapping[str, Any] | None) -> Settings:
    if isinstance(settings, Settings):
        return settings
    return Settings.model_validate(dict(settings or {}))


def grid_metrics(series: CandleSeries, run: GridRun, settings: Settings) -> dict[str, FloatArray]:
    """Every metric of every set of ``run`` (arrays of shape ``(sets,)``)."""
    series, calendar = with_calendar(series)
    c = series.candles
    sets = run.equity.shape[0]
    span = float(c.time[-1] - c.time[0] + series.timeframe_ms) if len(c) else 0.0
    per_year = periods_per_year(len(c), span, series.timeframe_ms, calendar)
    out = equity_metrics(run.equity, settings.cash, per_year, run.exposure)
    out.update(trade_metrics(run.trades, sets))
    bh = float(c.close[-1] / c.close[0] - 1.0) * 100.0 if len(c) else float("nan")
    out["buy_and_hold_return_percentage"] = np.full(sets, bh)
    out["missing_candles"] = np.full(sets, float(series.missing))
    return out


def run_grid(
    candles: Candles | CandleSeries,
    strategy_name: str,
    param_sets: Sequence[Mapping[str, Any]],
    settings: Settings | Mapping[str, Any] | None = None,
    signals: SignalGrid | None = None,
) -> GridResult:
    """Backtest many parameter sets of one strategy in one vectorised pass."""
    series, s = _series(candles), _settings(settings)
    strategy = get_strategy(strategy_name)
    validated: list[StrategyParams] = [strategy.validate(p) for p in param_sets]
    sig = signals if signals is not None else strategy.signal_grid(series.candles, validated)
    run = simulate(series.candles, sig, s)
    return GridResult(
        [p.model_dump(exclude_none=True) for p in validated], grid_metrics(series, run, s), run
    )


def trade_rows(trades: Trades, candles: Candles) -> list[dict[str, Any]]:
    """Trades as JSON-ready dicts (times in UTC ISO 8601)."""
    t = candles.time
    return [
        {
            "side": "long" if trades.side[i] > 0 else "short",
            "entry_time": iso(int(t[trades.entry_idx[i]])),
            "exit_time": iso(int(t[trades.exit_idx[i]])),
            "entry_price": float(trades.entry_price[i]),
            "exit_price": float(trades.exit_price[i]),
            "amount": float(trades.amount[i]),
            "pnl": float(trades.pnl[i]),
            "return_pct": float(trades.return_pct[i]),
            "fees": float(trades.entry_fee[i] + trades.exit_fee[i]),
            "exit_reason": EXIT_REASONS[int(trades.exit_reason[i])],
        }
        for i in range(len(trades))
    ]


def run_backtest(
    candles: Candles | CandleSeries,
    strategy_name: str,
    params: Mapping[str, Any] | None = None,
    settings: Settings | Mapping[str, Any] | None = None,
) -> BacktestResult:
    """Backtest one strategy with one parameter set.

    Raises ``InvalidParameters`` / ``UnknownStrategy`` (``ValueError``\\ s naming the
    problem) for bad input, pydantic ``ValidationError`` for bad settings.
    """
    series, s = _series(candles), _settings(settings)
    grid = run_grid(series, strategy_name, [dict(params or {})], s)
    c = series.candles
    dd = 1.0 - grid.run.equity[0] / np.maximum.accumulate(np.maximum(grid.run.equity[0], s.cash))
    equity = [
        {"time": iso(int(t)), "equity": float(e), "drawdown": float(d) * 100.0}
        for t, e, d in zip(c.time, grid.run.equity[0], dd, strict=True)
    ]
    return BacktestResult(
        strategy=strategy_name,
        params=grid.params[0],
        settings=s,
        stats=grid.stats(0),
        trades=trade_rows(grid.run.trades, c),
        equity=equity,
        timeframe=timeframe_label(series.timeframe_ms),
        start_date=iso(int(c.time[0])) if len(c) else "",
        end_date=iso(int(c.time[-1])) if len(c) else "",
        gaps=list(series.gaps),
    )
