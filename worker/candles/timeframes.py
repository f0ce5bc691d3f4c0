"""Timeframes and times on the candle grid: one table of units, one list of supported
timeframes, millisecond timestamps (what ccxt and the float arrays use) to UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache

UNIT_MS: dict[str, int] = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
"""Length of one unit of a timeframe label (``5m`` is 5 of ``m``)."""

TIMEFRAMES: tuple[str, ...] = (
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
)
"""The timeframes bots and exchanges trade on (ccxt's common set)."""

_LABEL = re.compile(r"(\d+)([mhdw])")


def timeframe_ms(timeframe: str) -> int:
    """``"5m"`` -> 300000; any count of m, h, d or w (recorded files may use others)."""
    m = _LABEL.fullmatch(timeframe.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"invalid timeframe '{timeframe}' (expected e.g. 1m, 5m, 1h, 1d)")
    return int(m.group(1)) * UNIT_MS[m.group(2)]


@cache  # a few labels, asked for by every bot on every candle
def timeframe_seconds(timeframe: str) -> int:
    """Length of a supported timeframe (one of :data:`TIMEFRAMES`) in seconds."""
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"unknown timeframe {timeframe!r}")
    return timeframe_ms(timeframe) // 1000


def timeframe_label(ms: int) -> str:
    """300000 -> ``"5m"`` (largest unit that divides evenly)."""
    for unit, size in sorted(UNIT_MS.items(), key=lambda kv: -kv[1]):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def ms_to_datetime(ms: int | float | None) -> datetime | None:
    """Milliseconds since the epoch (ccxt timestamps) to a UTC ``datetime``."""
    if ms is None:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def datetime_to_ms(value: datetime) -> int:
    """UTC ``datetime`` to milliseconds since the epoch."""
    return int(value.timestamp() * 1000)


def iso(ms: int) -> str:
    """UTC ISO 8601 of a time in ms, e.g. ``2018-01-10T04:55:00Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
