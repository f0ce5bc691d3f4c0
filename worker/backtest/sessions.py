"""The market's calendar: when candles are expected, and how many make a year.

Two calendars, told apart by the candles themselves:

- **24/7** (crypto): candles every day of the year. A year has ``365 days / timeframe``
  candles and every absent candle is a gap.
- **Sessions** (equities, FX, most futures): no candle ever opens on a Saturday (UTC) in
  a series spanning at least eight days. A year has as many candles as the data actually
  has per year (``candles / (span / 365 days)``, about 252 for daily stock bars), and
  weekends and holidays (up to two weekdays closed in a row: Christmas and Boxing Day, a
  storm closure) are the calendar, not missing data: only a gap that skips three or more
  weekdays is reported, with the candles of the weekdays it skips.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np

from worker.candles import CandleSeries, Gap

Calendar = Literal["24/7", "sessions"]

DAY_MS = 24 * 3600 * 1000
YEAR_MS = 365 * DAY_MS
_SATURDAY = 2  # days since 1970-01-01 (a Thursday) modulo 7
_HOLIDAYS = 2  # weekdays a session market may close in a row (holidays) without a gap


def market_calendar(time: np.ndarray, timeframe_ms: int) -> Calendar:
    """``"sessions"`` if no candle opens on a Saturday over at least eight days, else 24/7."""
    if len(time) < 2 or int(time[-1]) + timeframe_ms - int(time[0]) < 8 * DAY_MS:
        return "24/7"
    saturday = (np.asarray(time, dtype=np.int64) // DAY_MS) % 7 == _SATURDAY
    return "24/7" if bool(saturday.any()) else "sessions"


def periods_per_year(n: int, span_ms: float, timeframe_ms: int, calendar: Calendar) -> float:
    """Candles per year used to annualise: by the clock (24/7) or as the data has them."""
    if calendar == "sessions":
        return n * YEAR_MS / span_ms if span_ms > 0 and n > 0 else float("nan")
    return YEAR_MS / timeframe_ms if timeframe_ms > 0 else float("nan")


def _weekdays_between(after: int, before: int) -> int:
    """Whole weekdays (Mon-Fri, UTC) strictly between the days of two open times."""
    first, last = after // DAY_MS + 1, before // DAY_MS  # days skipped: [first, last)
    if last <= first:
        return 0
    days = np.arange(first, last)
    return int(np.count_nonzero((days - _SATURDAY) % 7 >= 2))


def session_gaps(gaps: tuple[Gap, ...], timeframe_ms: int) -> tuple[Gap, ...]:
    """The gaps of a session market that are missing data, not weekends or a holiday."""
    per_day = max(DAY_MS // timeframe_ms, 1) if timeframe_ms > 0 else 1
    out = []
    for g in gaps:
        skipped = _weekdays_between(g.after, g.before)
        if skipped > _HOLIDAYS:
            out.append(Gap(g.after, g.before, min(skipped * per_day, g.missing)))
    return tuple(out)


def with_calendar(series: CandleSeries) -> tuple[CandleSeries, Calendar]:
    """The series with the gaps its calendar makes real, and that calendar."""
    calendar = market_calendar(series.candles.time, series.timeframe_ms)
    if calendar == "sessions" and series.gaps:
        series = replace(series, gaps=session_gaps(series.gaps, series.timeframe_ms))
    return series, calendar
