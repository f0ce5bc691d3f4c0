"""Technical indicators (TA-Lib, standard definitions) and crossing detection.

Every indicator returns a float64 array as long as its input, NaN during warm-up:

- ``sma(x, n)``: arithmetic mean of the last ``n`` values.
- ``ema(x, n)``: exponential average with ``alpha = 2 / (n + 1)``, seeded with the SMA of the
  first ``n`` values (TA-Lib's default, as in most charting tools).
- ``rsi(x, n)``: Wilder's relative strength index (Wilder smoothing, ``alpha = 1 / n``).
- ``macd(x, fast, slow, signal)``: ``ema(fast) - ema(slow)``, its ``signal``-EMA, and the
  histogram (difference of the two).
- ``bollinger(x, n, k)``: ``sma(n)`` ± ``k`` population standard deviations over ``n``.
- ``atr(high, low, close, n)``: Wilder's average true range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import talib

from worker.strategies.base import BoolArray, FloatArray


def _f64(x: Any) -> FloatArray:
    return np.ascontiguousarray(x, dtype=np.float64)


def sma(x: FloatArray, period: int) -> FloatArray:
    """Simple moving average."""
    out: FloatArray = talib.SMA(_f64(x), timeperiod=period)
    return out


def ema(x: FloatArray, period: int) -> FloatArray:
    """Exponential moving average seeded with the first SMA."""
    out: FloatArray = talib.EMA(_f64(x), timeperiod=period)
    return out


def rsi(x: FloatArray, period: int) -> FloatArray:
    """Wilder's RSI in [0, 100]."""
    out: FloatArray = talib.RSI(_f64(x), timeperiod=period)
    return out


def macd(
    x: FloatArray, fast: int, slow: int, signal: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line, signal line and histogram."""
    line, sig, hist = talib.MACD(_f64(x), fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return line, sig, hist


def bollinger(x: FloatArray, period: int, std: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Upper, middle and lower Bollinger bands."""
    up, mid, low = talib.BBANDS(
        _f64(x),
        timeperiod=period,
        nbdevup=std,
        nbdevdn=std,
        matype=talib.MA_Type.SMA,  # type: ignore[attr-defined]
    )
    return up, mid, low


def atr(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """Wilder's average true range."""
    out: FloatArray = talib.ATR(_f64(high), _f64(low), _f64(close), timeperiod=period)
    return out


def _side_codes(a: Any, b: Any) -> np.ndarray[Any, np.dtype[np.int8]]:
    """1 where a > b, -1 where a < b, 0 on a tie, 2 where either side is NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        code = (a > b).astype(np.int8) - (a < b).astype(np.int8)
    code[np.isnan(a) | np.isnan(b)] = 2
    out: np.ndarray[Any, np.dtype[np.int8]] = code
    return out


def _previous_side(code: np.ndarray[Any, np.dtype[np.int8]]) -> np.ndarray[Any, np.dtype[np.int8]]:
    """For each bar, the side code of the most recent *earlier* bar that was not a tie."""
    n = code.shape[-1]
    idx = np.where(code != 0, np.arange(n, dtype=np.int64), -1)
    np.maximum.accumulate(idx, axis=-1, out=idx)
    last = np.where(idx >= 0, np.take_along_axis(code, np.maximum(idx, 0), axis=-1), 0)
    prev = np.zeros_like(code)
    prev[..., 1:] = last[..., :-1]
    return prev.astype(np.int8)


def crossed_above(a: Any, b: Any) -> BoolArray:
    """True on the bar where ``a`` goes from below ``b`` to above it.

    Ties are skipped: ``a`` crosses above on bar ``i`` when ``a[i] > b[i]`` and, on the last
    earlier bar where they were not equal, ``a < b``. A NaN on either side (warm-up) resets
    the history, so the first valid bar never counts as a cross. Works along the last axis
    of 2-D arrays (one row per parameter set) too.
    """
    code = _side_codes(a, b)
    out: BoolArray = (code == 1) & (_previous_side(code) == -1)
    return out


def crossed_below(a: Any, b: Any) -> BoolArray:
    """True on the bar where ``a`` goes from above ``b`` to below it (see crossed_above)."""
    code = _side_codes(a, b)
    out: BoolArray = (code == -1) & (_previous_side(code) == 1)
    return out


def crosses(a: Any, b: Any) -> tuple[BoolArray, BoolArray]:
    """``(crossed_above(a, b), crossed_below(a, b))`` computed in one pass."""
    code = _side_codes(a, b)
    prev = _previous_side(code)
    up: BoolArray = (code == 1) & (prev == -1)
    down: BoolArray = (code == -1) & (prev == 1)
    return up, down
