"""What an app-requested run computes, by its ``backtest_runs.mode``.

* ``backtest``: one strategy and parameter set on one market: one result row.
* ``optimize``: the parameter grid (``optimization.ranges``, else ±``spread`` around the
  run's parameters) ranked by ``optimization.metric`` on the in-sample part, every set
  re-run on the held-out last ``oos_fraction`` of the candles (default 0.3) and, with
  ``folds``, walk-forward. The result row is the best set backtested over the whole
  period; its ``metadata.optimization`` keeps the ranked sets (top ``top``) with their
  in- and out-of-sample metrics, the best set's in- and out-of-sample return
  (``in_sample``/``out_of_sample``, in %; with walk-forward only, the folds' mean when
  ranking by return), the overfitting verdict and the walk-forward folds. The grid is checked against the plan before anything is evaluated.
* ``batch``: the same strategy and parameters on each of ``trading_pairs`` (each with its
  market's units): one result row per market and a summary on the run.

Each mode also renders the run's HTML report with the renderer the CLI uses. The work
runs in a thread; :class:`Work` counts what is done for the progress on the row.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.backtest.api import BacktestResult, run_backtest
from worker.backtest.engine import Settings
from worker.backtest.optimize import (
    OptimizeResult,
    default_axes,
    expand,
    grid_around,
    optimize,
    parse_ranges,
)
from worker.backtest.report import render, render_batch, render_optimize
from worker.backtest.results import metadata, result_row
from worker.candles import CandleSeries
from worker.errors import Fatal
from worker.strategies.base import StrategyParams

Loader = Callable[[str], Awaitable[tuple[CandleSeries, str]]]
"""The run's candles of one trading pair, and where they came from."""
GridCheck = Callable[[int], Awaitable[None]]
"""Raises :class:`Fatal` (the plan-limit error) when the grid has too many sets."""
Units = Callable[[str], Settings]
"""The run's settings trading the units of one trading pair's market."""

SUMMARY_STATS = (
    "total_return_percentage",
    "sharpe_ratio",
    "max_drawdown",
    "win_rate",
    "total_trades",
)


class OptimizeRequest(BaseModel):
    """``backtest_runs.optimization``."""

    model_config = ConfigDict(extra="forbid")

    ranges: dict[str, Any] | None = None
    metric: str = "sharpe_ratio"
    oos_fraction: float | None = Field(default=0.3, gt=0, lt=1)
    folds: int | None = Field(default=None, ge=1, le=10)
    spread: float = Field(default=0.3, gt=0, lt=1)
    steps: int = Field(default=7, ge=2, le=50)
    top: int = Field(default=50, ge=1, le=500)


@dataclass
class Work:
    """A run's computation: ``compute(tick)`` returns what ``backtest_run_finish`` stores."""

    compute: Callable[[Callable[[int], None]], dict[str, Any]]
    total: int = 0
    done: int = 0

    def tick(self, n: int) -> None:
        self.done += n

    def fraction(self) -> float | None:
        """Share done, or None when the work does not count its steps."""
        return min(1.0, self.done / self.total) if self.total else None

    def run(self) -> dict[str, Any]:
        try:
            return self.compute(self.tick)
        except Fatal:
            raise
        except ValueError as e:  # a bad grid or metric: the user's input, named
            raise Fatal(str(e)) from e


def _backtest(
    series: CandleSeries, source: str, strategy: str, params: dict[str, Any], settings: Settings
) -> Work:
    def compute(tick: Callable[[int], None]) -> dict[str, Any]:
        result = run_backtest(series, strategy, params, settings)
        row = result_row(result, metadata(result, series, source))
        return {**row, "report_html": render(result, series)}

    return Work(compute)


def _summary_of(result: BacktestResult) -> dict[str, Any]:
    return {k: result.stats.get(k) for k in SUMMARY_STATS}


def _batch(
    markets: list[tuple[str, CandleSeries, str]],
    strategy: str,
    params: dict[str, Any],
    units: Units,
) -> Work:
    def compute(tick: Callable[[int], None]) -> dict[str, Any]:
        done: list[tuple[str, CandleSeries, BacktestResult]] = []
        rows = []
        for pair, series, source in markets:
            result = run_backtest(series, strategy, params, units(pair))
            rows.append(
                {**result_row(result, metadata(result, series, source)), "trading_pair": pair}
            )
            done.append((pair, series, result))
            tick(1)
        per_market = [{"trading_pair": p, **_summary_of(r)} for p, _, r in done]
        returns = [float(r.stats.get("total_return_percentage") or 0.0) for _, _, r in done]
        best = max(range(len(done)), key=lambda i: returns[i])
        worst = min(range(len(done)), key=lambda i: returns[i])
        summary = {
            "mode": "batch",
            "markets": per_market,
            "mean_return_percentage": sum(returns) / len(returns),
            "profitable_markets": sum(1 for r in returns if r > 0),
            "best_market": done[best][0],
            "worst_market": done[worst][0],
        }
        report = render_batch([(s, r) for _, s, r in done])
        return {"results": rows, "summary": summary, "report_html": report}

    return Work(compute, total=len(markets))


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def optimization_metadata(res: OptimizeResult, req: OptimizeRequest) -> dict[str, Any]:
    """What the result row keeps of an optimisation (see the module docstring)."""
    out = res.to_dict(req.top)
    best = res.ranked[0]
    ins = best.stats.get("total_return_percentage")
    oos = best.oos_stats.get("total_return_percentage") if best.oos_stats else None
    if best.oos_stats is None and res.folds and res.metric == "total_return_percentage":
        # Walk-forward only: the chosen sets' mean return in and out of sample.
        pairs = [(f.in_sample, f.out_of_sample) for f in res.folds]
        if all(a is not None and b is not None for a, b in pairs):
            ins = sum(float(a or 0) for a, _ in pairs) / len(pairs)
            oos = sum(float(b or 0) for _, b in pairs) / len(pairs)
    out.update(
        {
            "best_params": best.params,
            "ranked": out.pop("results"),
            "oos_fraction": req.oos_fraction,
            "folds": req.folds,
            "in_sample": _finite(ins),
            "out_of_sample": _finite(oos),
        }
    )
    return out


def _optimize(
    series: CandleSeries,
    source: str,
    strategy: str,
    params: dict[str, Any],
    settings: Settings,
    req: OptimizeRequest,
    values: dict[str, list[Any]],
    sets: list[StrategyParams],
) -> Work:
    passes = 1 + (1 if req.oos_fraction else 0) + 2 * (req.folds or 0)

    def compute(tick: Callable[[int], None]) -> dict[str, Any]:
        res = optimize(
            [series],
            strategy,
            values,
            params,
            settings,
            req.metric,
            req.oos_fraction,
            tick,
            req.folds,
        )
        best = run_backtest(series, strategy, res.ranked[0].params, settings)
        meta = metadata(best, series, source)
        meta["optimization"] = optimization_metadata(res, req)
        report = render_optimize(
            res, best, series, default_axes(values), top=20, oos=req.oos_fraction
        )
        o = meta["optimization"]
        summary = {
            "mode": "optimize",
            "metric": req.metric,
            "evaluated": res.evaluated,
            "skipped": res.skipped,
            "best_params": o["best_params"],
            "in_sample": o["in_sample"],
            "out_of_sample": o["out_of_sample"],
            "overfit": res.overfit,
        }
        return {**result_row(best, meta), "summary": summary, "report_html": report}

    return Work(compute, total=len(sets) * passes)


def optimize_request(raw: Mapping[str, Any] | None) -> OptimizeRequest:
    try:
        return OptimizeRequest.model_validate(dict(raw or {}))
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "optimization"
        raise Fatal(f"invalid optimization setting '{where}': {err['msg']}") from e


async def prepare(
    run: Mapping[str, Any],
    params: dict[str, Any],
    units: Units,
    load: Loader,
    check_grid: GridCheck,
) -> Work:
    """Validate the run's mode settings, load its candles and return its work."""
    mode = str(run.get("mode") or "backtest")
    strategy = str(run["strategy"])
    pair = str(run["trading_pair"])
    if mode == "batch":
        pairs = [str(p) for p in (run.get("trading_pairs") or [pair])]
        markets = [(p, *(await load(p))) for p in pairs]
        return _batch(markets, strategy, params, units)
    if mode == "optimize":
        req = optimize_request(run.get("optimization"))
        try:
            values = (
                parse_ranges(req.ranges)
                if req.ranges
                else grid_around(strategy, params, req.spread, req.steps)
            )
        except ValueError as e:
            raise Fatal(f"invalid optimization setting 'ranges': {e}") from e
        combinations = math.prod(len(v) for v in values.values())
        await check_grid(combinations)
        sets, _ = expand(strategy, params, values)
        if not sets:
            raise Fatal(f"{strategy}: no valid parameter set in the optimisation grid")
        series, source = await load(pair)
        return _optimize(series, source, strategy, params, units(pair), req, values, sets)
    series, source = await load(pair)
    return _backtest(series, source, strategy, params, units(pair))
