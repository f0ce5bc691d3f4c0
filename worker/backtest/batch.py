"""Batch runs: one strategy over many markets and timeframes (one CSV file each)."""

from __future__ import annotations

import glob
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from worker.backtest.api import BacktestResult, run_backtest
from worker.backtest.engine import Settings
from worker.candles import CandleSeries, load_csv


def candle_files(specs: Sequence[str]) -> list[Path]:
    """Expand files, directories (their ``*.csv``) and glob patterns, sorted, no duplicates."""
    found: dict[Path, None] = {}
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            matches = sorted(p.glob("*.csv"))
        elif any(ch in spec for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(spec))
        else:
            matches = [p]
        if not matches:
            raise FileNotFoundError(f"no candle file matches '{spec}'")
        for m in matches:
            if not m.is_file():
                raise FileNotFoundError(f"candle file not found: {m}")
            found.setdefault(m, None)
    return list(found)


def load_many(specs: Sequence[str], timeframe: str | None = None) -> list[CandleSeries]:
    """Load every candle file named by ``specs`` (see :func:`candle_files`)."""
    return [load_csv(p, timeframe) for p in candle_files(specs)]


def run_batch(
    markets: Sequence[CandleSeries],
    strategy_name: str,
    params: Mapping[str, Any] | None,
    settings: Settings,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[str, BacktestResult]]:
    """Backtest the same strategy and parameters on each market; (market name, result)."""
    out: list[tuple[str, BacktestResult]] = []
    for m in markets:
        out.append((m.name, run_backtest(m, strategy_name, params, settings)))
        if progress:
            progress(1)
    return out
