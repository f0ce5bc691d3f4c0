"""Shared by the benchmarks: a throw-away database on the local platform, and percentiles."""

from __future__ import annotations

import contextlib
import statistics
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psutil

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


def parse_sizes(text: str) -> list[int]:
    """'1000,10_000,1e5' → [1000, 10000, 100000], ascending; for the benchmarks' --sizes."""
    try:
        sizes = sorted({int(float(part.replace("_", ""))) for part in text.split(",") if part})
    except ValueError:
        raise SystemExit(
            f"bench: --sizes wants numbers separated by commas, not {text!r}"
        ) from None
    if not sizes or sizes[0] < 0 or sizes[-1] == 0:
        raise SystemExit("bench: --sizes wants sizes of 0 or more, one of them positive")
    return sizes


def growth(curve: list[tuple[int, float]]) -> float:
    """Cost per unit of work at the largest size over the smallest: 1.0 is linear scaling.

    ``curve`` holds (size, seconds for all the work at that size). For figures that are per
    request already (latencies), pass size 1 at every point.
    """
    (small, t_small), (large, t_large) = curve[0], curve[-1]
    return (t_large / large) / (t_small / small)


def print_curve(name: str, unit: str, rows: list[tuple[int, dict[str, float]]]) -> None:
    """One line per size: ``NAME curve: <unit>=<size> key=value …``."""
    for size, figures in rows:
        parts = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
        )
        print(f"{name} curve: {unit}={size} {parts}")


def process_cpu(pid: int, children: bool = False) -> float | None:
    """CPU seconds (user + system) a process on this machine has used, with
    ``children`` those of the children it has reaped too; None if it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return None
    own: float = times.user + times.system
    return own + times.children_user + times.children_system if children else own


def cluster_cpu(backend_pid: int) -> float:
    """CPU seconds the local database's processes have used, exited backends included: the
    postmaster's own and its reaped children's, and its live children's. ``backend_pid``
    is any backend of the cluster (``pg_backend_pid()``)."""
    postmaster = psutil.Process(backend_pid).ppid()
    total = process_cpu(postmaster, children=True) or 0.0
    for child in psutil.Process(postmaster).children():
        total += process_cpu(child.pid) or 0.0
    return total
