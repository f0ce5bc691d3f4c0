"""The work of an app-requested run: progress counted per step, named errors for bad
optimisation settings or grids."""

from __future__ import annotations

from typing import Any

import pytest

from worker.backtest.app_modes import Work, optimization_metadata, optimize_request
from worker.backtest.optimize import Fold, OptimizeResult, Ranked
from worker.errors import Fatal


def test_work_counts_its_steps_for_the_progress_on_the_row() -> None:
    seen: list[float | None] = []

    def compute(tick: Any) -> dict[str, Any]:
        for _ in range(4):
            tick(1)
            seen.append(work.fraction())
        return {"ok": True}

    work = Work(compute, total=4)
    assert work.fraction() == 0
    assert work.run() == {"ok": True}
    assert seen == [0.25, 0.5, 0.75, 1.0]
    # Work that does not count its steps has no share to report.
    assert Work(lambda tick: {}).fraction() is None


def test_a_bad_grid_or_metric_is_a_named_error() -> None:
    def bad(tick: Any) -> dict[str, Any]:
        raise ValueError("unknown metric 'nope' (one of: sharpe_ratio)")

    with pytest.raises(Fatal, match="unknown metric 'nope'"):
        Work(bad).run()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"folds": 0}, "invalid optimization setting 'folds'"),
        ({"oos_fraction": 1.5}, "invalid optimization setting 'oos_fraction'"),
        ({"grid": {}}, "invalid optimization setting 'grid'"),
    ],
)
def test_bad_optimisation_settings_are_named(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(Fatal, match=message):
        optimize_request(raw)


def test_an_optimisation_holds_out_thirty_percent_by_default() -> None:
    req = optimize_request({})
    assert req.oos_fraction == 0.3 and req.metric == "sharpe_ratio" and req.folds is None


def _result(folds: list[Fold], oos: dict[str, Any] | None) -> OptimizeResult:
    best = Ranked({"fast": 5}, {"total_return_percentage": 12.0}, oos)
    return OptimizeResult("sma_cross", "total_return_percentage", ["ETH/BTC 5m"], 1, 0, [best],
                          folds=folds)  # fmt: skip


def test_the_in_and_out_of_sample_returns_the_ai_reads() -> None:
    held_out = optimization_metadata(
        _result([], {"total_return_percentage": -3.0}), optimize_request({})
    )
    assert (held_out["in_sample"], held_out["out_of_sample"]) == (12.0, -3.0)
    folds = [Fold(0, 1, 1, 2, {"fast": 5}, 10.0, 2.0, 80.0),
             Fold(1, 2, 2, 3, {"fast": 6}, 6.0, -4.0, 20.0)]  # fmt: skip
    walk = optimization_metadata(
        _result(folds, None), optimize_request({"oos_fraction": None, "folds": 2})
    )
    assert (walk["in_sample"], walk["out_of_sample"]) == (8.0, -1.0)
    assert walk["best_params"] == {"fast": 5} and len(walk["walk_forward"]) == 2
