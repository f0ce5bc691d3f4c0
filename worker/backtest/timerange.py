"""``--timerange``: the part of the candles a backtest or optimisation runs on.

The syntax is freqtrade's: ``20180110-20180120`` (from the start of 10 January up to, not
including, 20 January, UTC), ``20180110-`` (from a date on), ``-20180120`` (up to a date).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from worker.candles import CandleDataError, CandleSeries, iso

_SYNTAX = re.compile(r"(\d{8})?-(\d{8})?")
HELP = "YYYYMMDD-YYYYMMDD, YYYYMMDD- or -YYYYMMDD"


def _day_ms(text: str, whole: str) -> int:
    try:
        day = datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"'{whole}': {text} is not a date (YYYYMMDD)") from None
    return int(day.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Open times from ``start_ms`` (inclusive) to ``stop_ms`` (exclusive); None = unbounded."""

    start_ms: int | None
    stop_ms: int | None
    text: str

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        """Parse freqtrade's syntax; a ``ValueError`` says what is wrong."""
        m = _SYNTAX.fullmatch(text.strip())
        if not m or not (m.group(1) or m.group(2)):
            raise ValueError(f"'{text}' is not a time range (expected {HELP})")
        start = _day_ms(m.group(1), text) if m.group(1) else None
        stop = _day_ms(m.group(2), text) if m.group(2) else None
        if start is not None and stop is not None and start >= stop:
            raise ValueError(f"'{text}': the start must be before the end")
        return cls(start, stop, text.strip())

    def apply(self, series: CandleSeries) -> CandleSeries:
        """The candles of ``series`` inside the range, with the gaps inside it."""
        t = series.candles.time
        lo = 0 if self.start_ms is None else int(np.searchsorted(t, self.start_ms, "left"))
        hi = len(t) if self.stop_ms is None else int(np.searchsorted(t, self.stop_ms, "left"))
        if hi - lo < 2:
            have = f"{iso(int(t[0]))} to {iso(int(t[-1]))}" if len(t) else "nothing"
            raise CandleDataError(
                f"{series.name}: fewer than 2 candles in --timerange {self.text} "
                f"(the file covers {have})"
            )
        first, last = int(t[lo]), int(t[hi - 1])
        gaps = tuple(g for g in series.gaps if g.after >= first and g.before <= last)
        return CandleSeries(series.candles.slice(lo, hi), series.timeframe_ms, gaps, series.name)
