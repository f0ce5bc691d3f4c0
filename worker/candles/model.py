"""One exact OHLCV candle (``Decimal`` prices, what paper fills and the ``candles`` table
use) and its float-array form for strategies.

The arrays (:class:`Candles`) are defined in ``worker.strategies`` and only re-exported
here: strategies stay pure and import nothing of the worker, and everything that loads or
stores candles depends on them, never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from worker.candles.timeframes import datetime_to_ms
from worker.strategies.base import Candles


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle; ``time`` is the candle's open time (UTC)."""

    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


def to_arrays(candles: Sequence[Candle]) -> Candles:
    """Float arrays of exact candles, as strategies compute on them."""
    return Candles.from_arrays(
        [datetime_to_ms(c.time) for c in candles],
        [float(c.open) for c in candles],
        [float(c.high) for c in candles],
        [float(c.low) for c in candles],
        [float(c.close) for c in candles],
        [float(c.volume) for c in candles],
    )


def exact(value: float) -> Decimal:
    """A float price as the ``Decimal`` of its shortest round-trip text (no float noise)."""
    return Decimal(repr(float(value)))


__all__ = ["Candle", "Candles", "exact", "to_arrays"]
