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


def _side_codes(d: FloatArray) -> np.ndarray[Any, np.dtype[np.int8]]:
    """1 where d > 0, -1 where d < 0, 0 on a tie, 2 where d is NaN."""
    code = (d > 0).view(np.int8) - (d < 0).view(np.int8)
    code[np.isnan(d)] = 2
    out: np.ndarray[Any, np.dtype[np.int8]] = code
    return out


def crosses(a: Any, b: Any) -> tuple[BoolArray, BoolArray]:
    """``(crossed_above(a, b), crossed_below(a, b))`` in one pass."""
    return difference_crosses(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))


def difference_crosses(d: FloatArray) -> tuple[BoolArray, BoolArray]:
    """Crosses of ``a`` over ``b`` given ``d = a - b``: where ``d`` turns positive / negative.

    Works on runs of equal sign rather than on every bar: a cross can only happen where a
    run starts, so only run starts (few compared with bars) are examined.
    """
    code = _side_codes(d)
    shape = code.shape
    n = shape[-1]
    rows = code.reshape(-1, n)
    start = np.empty(rows.shape, dtype=np.bool_)
    start[:, 0] = True
    np.not_equal(rows[:, 1:], rows[:, :-1], out=start[:, 1:])
    pos = np.flatnonzero(start)
    v = rows.ravel()[pos]
    row = pos // max(n, 1)
    k = np.arange(len(v))
    # latest earlier run with a side (not a tie), in the same row; otherwise "no history"
    last = np.where(v != 0, k, -1)
    np.maximum.accumulate(last, out=last)
    prev_idx = np.empty_like(last)
    prev_idx[:1] = -1
    prev_idx[1:] = last[:-1]
    ok = (prev_idx >= 0) & (row[prev_idx] == row)
    prev = np.where(ok, v[prev_idx], 2)
    up = np.zeros(rows.size, dtype=np.bool_)
    down = np.zeros(rows.size, dtype=np.bool_)
    up[pos[(v == 1) & (prev == -1)]] = True
    down[pos[(v == -1) & (prev == 1)]] = True
    return up.reshape(shape), down.reshape(shape)


def crossed_above(a: Any, b: Any) -> BoolArray:
    """True on the bar where ``a`` goes from below ``b`` to above it.

    Ties are skipped: ``a`` crosses above on bar ``i`` when ``a[i] > b[i]`` and, on the last
    earlier bar where they were not equal, ``a < b``. A NaN on either side (warm-up) resets
    the history, so the first valid bar never counts as a cross. Works along the last axis
    of 2-D arrays (one row per parameter set) too.
    """
    return crosses(a, b)[0]


def crossed_below(a: Any, b: Any) -> BoolArray:
    """True on the bar where ``a`` goes from above ``b`` to below it (see crossed_above)."""
    return crosses(a, b)[1]
