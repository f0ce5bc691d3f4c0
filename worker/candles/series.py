"""Candle series from CSV files (``date,open,high,low,close,volume``), with gaps reported.

Gaps (missing candles) are detected and reported, never filled: a backtest runs on the
candles that exist, and every gap is listed in the result so a user sees where the data
is incomplete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from worker.candles.timeframes import iso, timeframe_label, timeframe_ms
from worker.strategies.base import Candles

_TF_IN_NAME = re.compile(r"[-_](\d+)([mhdw])$")


class CandleDataError(ValueError):
    """The candle file cannot be used as is (bad header, unsorted or duplicate times)."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Candles missing between two consecutive candles of a series."""

    after: int  # open time (ms) of the last candle before the gap
    before: int  # open time (ms) of the first candle after the gap
    missing: int  # number of candles missing

    def describe(self) -> str:
        return f"{self.missing} candle(s) missing between {iso(self.after)} and {iso(self.before)}"


@dataclass(frozen=True, slots=True)
class CandleSeries:
    """Candles of one market and timeframe, with the gaps found in them."""

    candles: Candles
    timeframe_ms: int
    gaps: tuple[Gap, ...]
    name: str = ""

    @property
    def timeframe(self) -> str:
        return timeframe_label(self.timeframe_ms)

    @property
    def missing(self) -> int:
        return sum(g.missing for g in self.gaps)


def find_gaps(time: np.ndarray, tf_ms: int) -> tuple[Gap, ...]:
    """Every place where consecutive open times are more than one timeframe apart.

    Raises :class:`CandleDataError` if times are not strictly increasing or off the grid.
    """
    if len(time) < 2:
        return ()
    step = np.diff(time)
    bad = np.flatnonzero(step <= 0)
    if len(bad):
        i = int(bad[0])
        raise CandleDataError(
            f"candle times must increase strictly: {iso(int(time[i]))} then {iso(int(time[i + 1]))}"
        )
    off = np.flatnonzero(step % tf_ms)
    if len(off):
        i = int(off[0])
        raise CandleDataError(
            f"candle at {iso(int(time[i + 1]))} is not on the {timeframe_label(tf_ms)} grid"
        )
    where = np.flatnonzero(step > tf_ms)
    return tuple(Gap(int(time[i]), int(time[i + 1]), int(step[i] // tf_ms) - 1) for i in where)


def infer_timeframe(time: np.ndarray, hint: str = "") -> int:
    """Timeframe from a name like ``ETH_BTC-5m`` if present, else the most common step."""
    m = _TF_IN_NAME.search(hint)
    if m:
        return timeframe_ms(m.group(1) + m.group(2))
    if len(time) < 2:
        raise CandleDataError("cannot infer the timeframe of fewer than 2 candles")
    steps, counts = np.unique(np.diff(time), return_counts=True)
    return int(steps[np.argmax(counts)])


def csv_name(symbol: str, timeframe: str) -> str:
    """File name of recorded candles: ``ETH/BTC`` ``5m`` -> ``ETH_BTC-5m.csv``."""
    return f"{symbol.split(':')[0].replace('/', '_')}-{timeframe}.csv"


def load_csv(path: str | Path, timeframe: str | None = None) -> CandleSeries:
    """Read a candle CSV; the timeframe comes from ``timeframe``, the file name, or the data."""
    p = Path(path)
    with p.open() as fh:
        header = fh.readline().strip().lower().split(",")
        if header[:6] != ["date", "open", "high", "low", "close", "volume"]:
            raise CandleDataError(f"{p.name}: expected header date,open,high,low,close,volume")
        rows = [line.rstrip("\n").split(",") for line in fh if line.strip()]
    if not rows:
        raise CandleDataError(f"{p.name}: no candles")
    cols = list(zip(*rows, strict=False))
    dates = np.array([d.rstrip("Z").replace(" ", "T") for d in cols[0]], dtype="datetime64[ms]")
    try:
        values = [np.array(c, dtype=np.float64) for c in cols[1:6]]
    except ValueError as e:
        raise CandleDataError(f"{p.name}: non-numeric price or volume ({e})") from e
    time = dates.astype(np.int64)
    candles = Candles.from_arrays(time, *values)
    tf = timeframe_ms(timeframe) if timeframe else infer_timeframe(time, p.stem)
    return CandleSeries(candles, tf, find_gaps(time, tf), name=p.stem)


def period(c: Candles, start: datetime | None, end: datetime | None) -> Candles:
    """The candles with ``start <= open time < end`` (either bound may be None)."""

    def at(when: datetime) -> int:
        return int(np.searchsorted(c.time, int(when.timestamp() * 1000), side="left"))

    lo = 0 if start is None else at(start)
    hi = len(c) if end is None else at(end)
    return c.slice(lo, max(lo, hi))
