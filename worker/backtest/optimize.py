"""Optimiser: parameter grids, one vectorised pass per chunk of sets, ranking, walk-forward.

The default grid spans ±30 % around each numeric parameter (integers: every integer in
the span; floats: ``steps`` evenly spaced values), like the reference platform. Explicit
ranges override it per parameter. Sets that the strategy rejects (``fast >= slow``...) are
skipped and counted.

Out-of-sample check: with ``oos_fraction``, the last part of the candles is held out. Sets
are ranked on the in-sample part only, then every set is re-run on the held-out part (the
indicators see the whole history, so nothing is recomputed from a cold start). The best
in-sample set is flagged as **overfit** when its out-of-sample score falls below the median
out-of-sample score of all sets, or when its in-sample return was positive and its
out-of-sample return is not.

Walk-forward (``folds = k``): the candles are cut into ``k + 1`` equal windows; for each
fold the best set of window ``i`` is scored on window ``i + 1``, and its percentile among
all sets there is recorded. If the chosen sets do not beat half of the grid out of sample
on average, the optimisation is flagged as overfit.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worker.backtest.api import grid_metrics
from worker.backtest.engine import Settings, simulate
from worker.backtest.metrics import row_stats
from worker.candles import CandleSeries
from worker.strategies.base import FloatArray, InvalidParameters, SignalGrid, StrategyParams
from worker.strategies.registry import get_strategy

LOWER_IS_BETTER = frozenset(
    {
        "max_drawdown",
        "avg_drawdown",
        "max_drawdown_duration_bars",
        "max_consecutive_losses",
        "annual_volatility_percentage",
    }
)
CHUNK = 256  # parameter sets per vectorised pass: bounds memory at ~CHUNK x candles x 8 B x 8

Progress = Callable[[int], None]


def grid_around(
    strategy_name: str,
    params: Mapping[str, Any] | None = None,
    spread: float = 0.3,
    steps: int = 7,
) -> dict[str, list[Any]]:
    """Values of each numeric parameter within ``±spread`` of its value (or default)."""
    strategy = get_strategy(strategy_name)
    center = strategy.validate(params).model_dump()
    out: dict[str, list[Any]] = {}
    for name, value in center.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        lo, hi = value * (1 - spread), value * (1 + spread)
        if isinstance(value, int):
            out[name] = list(range(max(1, math.ceil(lo - 1e-9)), math.floor(hi + 1e-9) + 1))
        else:
            out[name] = sorted({round(float(v), 10) for v in np.linspace(lo, hi, steps)})
    if not out:
        raise InvalidParameters(strategy_name, "params", "no numeric parameter to optimise")
    return out


def parse_ranges(ranges: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Explicit ranges: ``{"fast": [5, 8, 13]}`` or ``{"fast": {"start": 5, "stop": 20, "step": 1}}``."""
    out: dict[str, list[Any]] = {}
    for name, spec in ranges.items():
        if isinstance(spec, list) and spec:
            out[name] = spec
        elif isinstance(spec, dict) and {"start", "stop"} <= spec.keys():
            start, stop, step = spec["start"], spec["stop"], spec.get("step", 1)
            if step <= 0 or stop < start:
                raise ValueError(f"range of '{name}': need start <= stop and step > 0")
            vals = np.arange(start, stop + step / 2, step)
            is_int = all(isinstance(v, int) for v in (start, stop, step))
            out[name] = [int(v) for v in vals] if is_int else [float(v) for v in vals]
        else:
            raise ValueError(f"range of '{name}': expected a list or {{start, stop, step}}")
    return out


def default_axes(values: Mapping[str, Sequence[Any]]) -> tuple[str, str] | None:
    """The heatmap's axes: the first two parameters the grid varies (None if fewer)."""
    varying = [n for n, v in values.items() if len(v) > 1]
    return (varying[0], varying[1]) if len(varying) >= 2 else None


def expand(
    strategy_name: str, base: Mapping[str, Any] | None, values: Mapping[str, Sequence[Any]]
) -> tuple[list[StrategyParams], int]:
    """Every valid combination of ``values`` over ``base``; returns (sets, skipped)."""
    strategy = get_strategy(strategy_name)
    names = list(values)
    sets: list[StrategyParams] = []
    skipped = 0
    for combo in itertools.product(*(values[n] for n in names)):
        try:
            sets.append(
                strategy.validate({**dict(base or {}), **dict(zip(names, combo, strict=True))})
            )
        except InvalidParameters:
            skipped += 1
    return sets, skipped


def _slice(sig: SignalGrid, start: int, stop: int) -> SignalGrid:
    cut = slice(start, stop)
    return SignalGrid(
        sig.enter_long[:, cut],
        sig.exit_long[:, cut],
        sig.enter_short[:, cut],
        sig.exit_short[:, cut],
        sig.stop_loss[:, cut],
        sig.take_profit[:, cut],
    )


def evaluate(
    series: CandleSeries,
    strategy_name: str,
    sets: Sequence[StrategyParams],
    settings: Settings,
    start: int = 0,
    stop: int | None = None,
    progress: Progress | None = None,
) -> dict[str, FloatArray]:
    """Every metric of every set on candles ``start:stop`` (chunked vectorised passes)."""
    strategy = get_strategy(strategy_name)
    c = series.candles
    stop = len(c) if stop is None else stop
    part = CandleSeries(c.slice(start, stop), series.timeframe_ms, series.gaps, series.name)
    chunks: list[dict[str, FloatArray]] = []
    for lo in range(0, len(sets), CHUNK):
        batch = sets[lo : lo + CHUNK]
        sig = strategy.signal_grid(c, batch)
        if start or stop != len(c):
            sig = _slice(sig, start, stop)
        run = simulate(part.candles, sig, settings)
        chunks.append(grid_metrics(part, run, settings))
        if progress:
            progress(len(batch))
    if not chunks:
        return {}
    return {k: np.concatenate([ch[k] for ch in chunks]) for k in chunks[0]}


def _score(values: FloatArray, metric: str) -> FloatArray:
    """Higher is better; undefined values rank last."""
    s = -values if metric in LOWER_IS_BETTER else values.copy()
    s[~np.isfinite(s)] = -np.inf
    return s


@dataclass(slots=True)
class Ranked:
    params: dict[str, Any]
    stats: dict[str, float | int | None]
    oos_stats: dict[str, float | int | None] | None = None


@dataclass(slots=True)
class Fold:
    """One walk-forward step: best set of the train window, scored on the next window."""

    train_start: int  # candle indexes (of the first market), end exclusive
    train_end: int
    test_start: int
    test_end: int
    params: dict[str, Any]
    in_sample: float | None
    out_of_sample: float | None
    oos_percentile: float  # share of all sets it beat on the test window, in %


@dataclass(slots=True)
class OptimizeResult:
    """Sets ranked best first by ``metric`` (mean over markets when several)."""

    strategy: str
    metric: str
    markets: list[str]
    evaluated: int
    skipped: int
    ranked: list[Ranked]
    overfit: bool | None = None
    oos_rank_correlation: float | None = None
    notes: list[str] = field(default_factory=list)
    folds: list[Fold] = field(default_factory=list)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        rows = self.ranked if top is None else self.ranked[:top]
        return {
            "strategy": self.strategy,
            "metric": self.metric,
            "markets": self.markets,
            "evaluated": self.evaluated,
            "skipped": self.skipped,
            "overfit": self.overfit,
            "oos_rank_correlation": self.oos_rank_correlation,
            "notes": self.notes,
            "walk_forward": [
                {
                    "train": [f.train_start, f.train_end],
                    "test": [f.test_start, f.test_end],
                    "params": f.params,
                    "in_sample": f.in_sample,
                    "out_of_sample": f.out_of_sample,
                    "oos_percentile": f.oos_percentile,
                }
                for f in self.folds
            ],
            "results": [
                {"params": r.params, "stats": r.stats, "oos_stats": r.oos_stats} for r in rows
            ],
        }


def _mean_over_markets(per_market: list[dict[str, FloatArray]]) -> dict[str, FloatArray]:
    if len(per_market) == 1:
        return per_market[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: mean is NaN
        return {k: np.nanmean(np.stack([m[k] for m in per_market]), axis=0) for k in per_market[0]}


def _spearman(a: FloatArray, b: FloatArray) -> float | None:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return None
    ra = np.argsort(np.argsort(a[ok])).astype(float)
    rb = np.argsort(np.argsort(b[ok])).astype(float)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def optimize(
    markets: Sequence[CandleSeries],
    strategy_name: str,
    values: Mapping[str, Sequence[Any]],
    base: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    metric: str = "sharpe_ratio",
    oos_fraction: float | None = None,
    progress: Progress | None = None,
    folds: int | None = None,
) -> OptimizeResult:
    """Evaluate every combination of ``values`` on every market and rank them."""
    settings = settings or Settings()
    sets, skipped = expand(strategy_name, base, values)
    if not sets:
        raise InvalidParameters(strategy_name, "ranges", "no valid parameter set in the grid")
    if oos_fraction is not None and not 0 < oos_fraction < 1:
        raise ValueError("oos_fraction must be between 0 and 1")
    ins: list[dict[str, FloatArray]] = []
    oos: list[dict[str, FloatArray]] = []
    for m in markets:
        n = len(m.candles)
        split = n - int(n * oos_fraction) if oos_fraction else n
        ins.append(evaluate(m, strategy_name, sets, settings, 0, split, progress))
        if oos_fraction:
            oos.append(evaluate(m, strategy_name, sets, settings, split, n, progress))
    metrics = _mean_over_markets(ins)
    if metric not in metrics:
        raise ValueError(f"unknown metric '{metric}' (one of: {', '.join(sorted(metrics))})")
    order = np.argsort(-_score(metrics[metric], metric), kind="stable")
    oos_metrics = _mean_over_markets(oos) if oos else None
    ranked = [
        Ranked(
            sets[k].model_dump(exclude_none=True),
            row_stats(metrics, int(k)),
            row_stats(oos_metrics, int(k)) if oos_metrics else None,
        )
        for k in order
    ]
    result = OptimizeResult(
        strategy_name,
        metric,
        [m.name for m in markets],
        len(sets),
        skipped,
        ranked,
    )
    if oos_metrics is not None:
        best = int(order[0])
        oos_score = _score(oos_metrics[metric], metric)
        below_median = bool(oos_score[best] < np.median(oos_score))
        ret_in = metrics["total_return"][best]
        ret_out = oos_metrics["total_return"][best]
        lost_edge = bool(ret_in > 0 and not ret_out > 0)
        result.overfit = below_median or lost_edge
        result.oos_rank_correlation = _spearman(metrics[metric], oos_metrics[metric])
        if below_median:
            result.notes.append("best in-sample set is below the out-of-sample median")
        if lost_edge:
            result.notes.append("best in-sample set is not profitable out of sample")
    if folds:
        result.folds = _walk_forward(
            markets, strategy_name, sets, settings, metric, folds, progress
        )
        mean_pct = float(np.mean([f.oos_percentile for f in result.folds]))
        result.notes.append(
            f"walk-forward: chosen sets beat {mean_pct:.0f}% of the grid out of sample"
        )
        result.overfit = bool(result.overfit) or mean_pct < 50.0
    return result


def _walk_forward(
    markets: Sequence[CandleSeries],
    strategy_name: str,
    sets: Sequence[StrategyParams],
    settings: Settings,
    metric: str,
    folds: int,
    progress: Progress | None,
) -> list[Fold]:
    if folds < 1:
        raise ValueError("folds must be at least 1")
    out: list[Fold] = []
    cuts = [[len(m.candles) * i // (folds + 1) for i in range(folds + 2)] for m in markets]
    for i in range(folds):
        train = [evaluate(m, strategy_name, sets, settings, c[i], c[i + 1], progress)
                 for m, c in zip(markets, cuts, strict=True)]  # fmt: skip
        test = [evaluate(m, strategy_name, sets, settings, c[i + 1], c[i + 2], progress)
                for m, c in zip(markets, cuts, strict=True)]  # fmt: skip
        ins, oos = _mean_over_markets(train)[metric], _mean_over_markets(test)[metric]
        best = int(np.argmax(_score(ins, metric)))
        oos_score = _score(oos, metric)
        out.append(
            Fold(
                cuts[0][i],
                cuts[0][i + 1],
                cuts[0][i + 1],
                cuts[0][i + 2],
                sets[best].model_dump(exclude_none=True),
                float(ins[best]) if np.isfinite(ins[best]) else None,
                float(oos[best]) if np.isfinite(oos[best]) else None,
                float((oos_score < oos_score[best]).mean() * 100.0),
            )
        )
    return out
