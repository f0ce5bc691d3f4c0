"""Shared by the benchmarks: a throw-away database on the local platform, and percentiles."""

from __future__ import annotations

import contextlib
import statistics
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support import db as support


@contextlib.contextmanager
def bench_database(prefix: str) -> Iterator[str]:
    """A fresh migrated database for one benchmark run; dropped afterwards. Yields its URL."""
    support.ensure_platform()
    template = support.ensure_template()
    with support.cloned_database(template) as url:
        yield url


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def run_id() -> str:
    return uuid.uuid4().hex[:8]
