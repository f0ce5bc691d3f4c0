"""Built-in strategies: moving-average crosses, RSI, MACD, RSI+MACD, Bollinger bands.

Each one is symmetric: the short side mirrors the long side. Whether shorts are traded is
the bot's (or backtest's) choice, not the strategy's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, ClassVar, cast

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from worker.strategies import indicators as ta
from worker.strategies.base import (
    Candles,
    FloatArray,
    SignalGrid,
    Signals,
    Strategy,
    StrategyParams,
    skip_warmup,
)


def _mirror(up: Any, down: Any) -> Signals:
    """Enter long / exit short on ``up``, enter short / exit long on ``down``."""
    return Signals(enter_long=up, exit_long=down, enter_short=down, exit_short=up)


def _grid(
    strategy: Strategy, ps: Sequence[StrategyParams], el: Any, xl: Any, es: Any, xs: Any
) -> SignalGrid:
    """A grid of decisions with each set's constant stop-loss / take-profit levels (none
    before each set's warm-up, as in ``Strategy.signals``)."""
    shape = el.shape
    sl = np.array([np.nan if p.stop_loss is None else p.stop_loss for p in ps])
    tp = np.array([np.nan if p.take_profit is None else p.take_profit for p in ps])
    grid = SignalGrid(
        enter_long=el,
        exit_long=xl,
        enter_short=es,
        exit_short=xs,
        # one level per set, seen as a (sets, candles) read-only view without copies
        stop_loss=np.broadcast_to(sl[:, None], shape),
        take_profit=np.broadcast_to(tp[:, None], shape),
    )
    skip_warmup(grid, [strategy.warmup(p) for p in ps])
    return grid


def _levels(ps: Sequence[Any], name: str) -> FloatArray:
    """One column of per-set levels, to compare with a (sets, candles) table."""
    return np.array([float(getattr(p, name)) for p in ps])[:, None]


def _table(ps: Sequence[Any], key: Callable[[Any], Hashable], make: Callable[..., Any]) -> Any:
    """``make(*key(p))`` for each set, computed once per distinct key."""
    cache: dict[Hashable, Any] = {}
    out = []
    for p in ps:
        k = key(p)
        if k not in cache:
            cache[k] = make(*k) if isinstance(k, tuple) else make(k)
        out.append(cache[k])
    return out


def _above(value: Any, info: ValidationInfo, other: str) -> Any:
    """Field validator: ``value`` must be greater than the (already validated) ``other``."""
    low = info.data.get(other)
    if low is not None and value <= low:
        raise ValueError(f"must be greater than {other} ({low})")
    return value


class MaCrossParams(StrategyParams):
    fast: int = Field(default=10, ge=1, le=10_000, description="fast moving-average period")
    slow: int = Field(
        default=20, ge=2, le=10_000, validate_default=True, description="slow moving-average period"
    )

    _slow = field_validator("slow")(lambda v, info: _above(v, info, "fast"))


class _MaCross(Strategy):
    """Long when the fast average crosses above the slow one, short when it crosses below."""

    params_model: ClassVar[type[StrategyParams]] = MaCrossParams

    def _ma(self, x: FloatArray, period: int) -> FloatArray:
        raise NotImplementedError

    def warmup(self, params: StrategyParams) -> int:
        return cast(MaCrossParams, params).slow

    def compute(self, candles: Candles, params: StrategyParams) -> Signals:
        p = cast(MaCrossParams, params)
        fast = self._ma(candles.close, p.fast)
        slow = self._ma(candles.close, p.slow)
        return _mirror(*ta.crosses(fast, slow))

    def signal_grid(
        self, candles: Candles, param_sets: Sequence[Mapping[str, Any] | StrategyParams]
    ) -> SignalGrid:
        """All sets in one pass: each distinct period's average is computed once."""
        ps = [cast(MaCrossParams, self.validate(p)) for p in param_sets]
        fasts = np.array([p.fast for p in ps], dtype=np.int64)
        slows = np.array([p.slow for p in ps], dtype=np.int64)
        up, down = ma_cross_grid(candles.close, fasts, slows, self._ma)
        return _grid(self, ps, up, down, down, up)


def ma_cross_grid(
    close: FloatArray,
    fasts: Any,
    slows: Any,
    ma: Any = ta.sma,
) -> tuple[Any, Any]:
    """Crosses of ``ma(fast)`` over ``ma(slow)`` for every ``(fast, slow)`` pair.

    Returns two bool arrays of shape ``(pairs, candles)``: crossed above, crossed below.
    Each distinct period is averaged once, then the pairs index into that table.
    """
    fasts = np.asarray(fasts, dtype=np.int64)
    slows = np.asarray(slows, dtype=np.int64)
    table = {int(k): ma(close, int(k)) for k in np.unique(np.concatenate([fasts, slows]))}
    diff = np.empty((len(fasts), len(close)))
    for row, (f, s) in enumerate(zip(fasts.tolist(), slows.tolist(), strict=True)):
        np.subtract(table[f], table[s], out=diff[row])
    return ta.difference_crosses(diff)


class SmaCross(_MaCross):
    name = "sma_cross"
    description = "Simple moving-average crossover"

    def _ma(self, x: FloatArray, period: int) -> FloatArray:
        return ta.sma(x, period)


class EmaCross(_MaCross):
    name = "ema_cross"
    description = "Exponential moving-average crossover"

    def _ma(self, x: FloatArray, period: int) -> FloatArray:
        return ta.ema(x, period)


class RsiParams(StrategyParams):
    period: int = Field(default=14, ge=2, le=1000, description="RSI period, in candles")
    oversold: float = Field(default=30, gt=0, lt=100, description="RSI level of oversold")
    overbought: float = Field(
        default=70, gt=0, lt=100, validate_default=True, description="RSI level of overbought"
    )

    _overbought = field_validator("overbought")(lambda v, info: _above(v, info, "oversold"))


class Rsi(Strategy):
    """Long when RSI climbs back above ``oversold``, exit when it climbs above ``overbought``.

    Short mirrors it: enter when RSI falls back below ``overbought``, exit when it falls
    below ``oversold``.
    """

    name = "rsi"
    description = "RSI mean reversion"
    params_model: ClassVar[type[StrategyParams]] = RsiParams

    def warmup(self, params: StrategyParams) -> int:
        return cast(RsiParams, params).period + 1

    def compute(self, candles: Candles, params: StrategyParams) -> Signals:
        p = cast(RsiParams, params)
        r = ta.rsi(candles.close, p.period)
        up_os, down_os = ta.crosses(r, p.oversold)
        up_ob, down_ob = ta.crosses(r, p.overbought)
        return Signals(enter_long=up_os, exit_long=up_ob, enter_short=down_ob, exit_short=down_os)

    def signal_grid(
        self, candles: Candles, param_sets: Sequence[Mapping[str, Any] | StrategyParams]
    ) -> SignalGrid:
        """All sets in one pass: each distinct period's RSI is computed once."""
        ps = [cast(RsiParams, self.validate(p)) for p in param_sets]
        r = np.stack(_table(ps, lambda p: p.period, lambda k: ta.rsi(candles.close, k)))
        up_os, down_os = ta.difference_crosses(r - _levels(ps, "oversold"))
        up_ob, down_ob = ta.difference_crosses(r - _levels(ps, "overbought"))
        return _grid(self, ps, up_os, up_ob, down_ob, down_os)


class MacdParams(StrategyParams):
    fast: int = Field(default=12, ge=1, le=1000, description="fast EMA period")
    slow: int = Field(
        default=26, ge=2, le=1000, validate_default=True, description="slow EMA period"
    )
    signal: int = Field(default=9, ge=1, le=1000, description="signal-line EMA period")

    _slow = field_validator("slow")(lambda v, info: _above(v, info, "fast"))


class Macd(Strategy):
    """Long when the MACD line crosses above its signal line, short when it crosses below."""

    name = "macd"
    description = "MACD / signal-line crossover"
    params_model: ClassVar[type[StrategyParams]] = MacdParams

    def warmup(self, params: StrategyParams) -> int:
        p = cast(MacdParams, params)
        return p.slow + p.signal - 1  # the signal line's first value, and one before it

    def compute(self, candles: Candles, params: StrategyParams) -> Signals:
        p = cast(MacdParams, params)
        line, sig, _ = ta.macd(candles.close, p.fast, p.slow, p.signal)
        return _mirror(*ta.crosses(line, sig))

    def signal_grid(
        self, candles: Candles, param_sets: Sequence[Mapping[str, Any] | StrategyParams]
    ) -> SignalGrid:
        """All sets in one pass: crossing detection on one (sets, candles) table."""
        ps = [cast(MacdParams, self.validate(p)) for p in param_sets]
        up, down = ta.difference_crosses(_macd_table(candles, ps))
        return _grid(self, ps, up, down, down, up)


def _macd_table(candles: Candles, ps: Sequence[Any]) -> FloatArray:
    """MACD line minus signal line, one row per set (each distinct MACD computed once)."""

    def diff(fast: int, slow: int, signal: int) -> FloatArray:
        line, sig, _ = ta.macd(candles.close, fast, slow, signal)
        out: FloatArray = np.asarray(line, np.float64) - np.asarray(sig, np.float64)
        return out

    return np.stack(_table(ps, lambda p: (p.fast, p.slow, p.signal), diff))


class RsiMacdParams(MacdParams):
    rsi_period: int = Field(default=14, ge=2, le=1000, description="RSI period, in candles")
    oversold: float = Field(default=30, gt=0, lt=100, description="RSI level of oversold")
    overbought: float = Field(
        default=70, gt=0, lt=100, validate_default=True, description="RSI level of overbought"
    )

    _overbought = field_validator("overbought")(lambda v, info: _above(v, info, "oversold"))


class RsiMacd(Strategy):
    """MACD crossover filtered by RSI.

    Enter long on a MACD cross above its signal while RSI is below ``overbought``; exit on a
    cross below or when RSI rises above ``overbought``. Short mirrors it with ``oversold``.
    """

    name = "rsi_macd"
    description = "MACD crossover confirmed by RSI"
    params_model: ClassVar[type[StrategyParams]] = RsiMacdParams

    def warmup(self, params: StrategyParams) -> int:
        p = cast(RsiMacdParams, params)
        return max(p.slow + p.signal - 1, p.rsi_period + 1)

    def compute(self, candles: Candles, params: StrategyParams) -> Signals:
        p = cast(RsiMacdParams, params)
        line, sig, _ = ta.macd(candles.close, p.fast, p.slow, p.signal)
        r = ta.rsi(candles.close, p.rsi_period)
        up, down = ta.crosses(line, sig)
        with np.errstate(invalid="ignore"):
            return Signals(
                enter_long=up & (r < p.overbought),
                exit_long=down | (r > p.overbought),
                enter_short=down & (r > p.oversold),
                exit_short=up | (r < p.oversold),
            )

    def signal_grid(
        self, candles: Candles, param_sets: Sequence[Mapping[str, Any] | StrategyParams]
    ) -> SignalGrid:
        """All sets in one pass: each distinct MACD and RSI is computed once."""
        ps = [cast(RsiMacdParams, self.validate(p)) for p in param_sets]
        up, down = ta.difference_crosses(_macd_table(candles, ps))
        r = np.stack(_table(ps, lambda p: p.rsi_period, lambda k: ta.rsi(candles.close, k)))
        ob, os_ = _levels(ps, "overbought"), _levels(ps, "oversold")
        with np.errstate(invalid="ignore"):
            return _grid(self, ps, up & (r < ob), down | (r > ob), down & (r > os_), up | (r < os_))


class BollingerParams(StrategyParams):
    period: int = Field(default=20, ge=2, le=1000, description="moving-average period")
    std: float = Field(default=2.0, gt=0, le=10, description="band width, in standard deviations")


class Bollinger(Strategy):
    """Mean reversion on Bollinger bands.

    Enter long when the close crosses below the lower band, exit when it crosses back above
    the middle band; short mirrors it on the upper band.
    """

    name = "bollinger"
    description = "Bollinger-band mean reversion"
    params_model: ClassVar[type[StrategyParams]] = BollingerParams

    def warmup(self, params: StrategyParams) -> int:
        return cast(BollingerParams, params).period

    def compute(self, candles: Candles, params: StrategyParams) -> Signals:
        p = cast(BollingerParams, params)
        up, mid, low = ta.bollinger(candles.close, p.period, p.std)
        c = candles.close
        return Signals(
            enter_long=ta.crossed_below(c, low),
            exit_long=ta.crossed_above(c, mid),
            enter_short=ta.crossed_above(c, up),
            exit_short=ta.crossed_below(c, mid),
        )

    def signal_grid(
        self, candles: Candles, param_sets: Sequence[Mapping[str, Any] | StrategyParams]
    ) -> SignalGrid:
        """All sets in one pass: each distinct band is computed once."""
        ps = [cast(BollingerParams, self.validate(p)) for p in param_sets]
        c = candles.close
        bands = _table(ps, lambda p: (p.period, p.std), lambda n, k: ta.bollinger(c, n, k))
        _, low_below = ta.difference_crosses(np.stack([c - b[2] for b in bands]))
        mid_above, mid_below = ta.difference_crosses(np.stack([c - b[1] for b in bands]))
        up_above, _ = ta.difference_crosses(np.stack([c - b[0] for b in bands]))
        return _grid(self, ps, low_below, mid_above, up_above, mid_below)


BUILTINS: tuple[type[Strategy], ...] = (SmaCross, EmaCross, Rsi, Macd, RsiMacd, Bollinger)
