"""The strategy interface shared by live bots, paper bots and the backtester.

A strategy is a pure function of closed candles and validated parameters. It computes on
whole numpy arrays and returns one decision per candle (:class:`Signals`). A live bot calls
it on its latest window of closed candles and reads the last element; the backtester uses
every element. Because both read the same arrays, a backtest predicts what the bot does.

Decisions are taken on a candle's close: ``enter_long[i]`` means "after candle ``i``
closed, open a long position" (the backtester and the paper exchange fill it at the open
of candle ``i + 1``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.errors import Fatal

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


class InvalidParameters(Fatal, ValueError):
    """Strategy parameters were rejected; the message names the parameter and why."""

    def __init__(self, strategy: str, parameter: str, reason: str) -> None:
        super().__init__(f"{strategy}: invalid parameter '{parameter}': {reason}")
        self.strategy = strategy
        self.parameter = parameter
        self.reason = reason


class UnknownStrategy(Fatal, ValueError):
    """No strategy is registered under this name."""


@dataclass(frozen=True, slots=True)
class Candles:
    """Closed OHLCV candles as parallel arrays; ``time`` is the open time in UTC ms."""

    time: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        n = len(self.time)
        for name in ("open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"candles: '{name}' has a different length than 'time'")

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def from_arrays(
        cls,
        time: npt.ArrayLike,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike | None = None,
    ) -> Candles:
        """Build candles from any array-likes, converting to contiguous int64/float64."""
        c = np.ascontiguousarray(close, dtype=np.float64)
        v = np.zeros_like(c) if volume is None else np.ascontiguousarray(volume, np.float64)
        return cls(
            time=np.ascontiguousarray(time, dtype=np.int64),
            open=np.ascontiguousarray(open, dtype=np.float64),
            high=np.ascontiguousarray(high, dtype=np.float64),
            low=np.ascontiguousarray(low, dtype=np.float64),
            close=c,
            volume=v,
        )

    def slice(self, start: int, stop: int) -> Candles:
        """Candles ``start:stop`` (views, no copy)."""
        return Candles(
            self.time[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
        )


def _nan(n: int) -> FloatArray:
    return np.full(n, np.nan, dtype=np.float64)


@dataclass(slots=True)
class Signals:
    """One decision per candle, taken on that candle's close.

    ``stop_loss`` and ``take_profit`` are fractions of the entry price (``0.05`` = 5 %)
    that apply to a position opened by the entry decision on the same candle; NaN = none.
    """

    enter_long: BoolArray
    exit_long: BoolArray
    enter_short: BoolArray
    exit_short: BoolArray
    stop_loss: FloatArray = field(default_factory=lambda: _nan(0))
    take_profit: FloatArray = field(default_factory=lambda: _nan(0))

    def __post_init__(self) -> None:
        n = len(self.enter_long)
        if len(self.stop_loss) == 0:
            self.stop_loss = _nan(n)
        if len(self.take_profit) == 0:
            self.take_profit = _nan(n)
        for name in ("exit_long", "enter_short", "exit_short", "stop_loss", "take_profit"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"signals: '{name}' has a different length")

    def __len__(self) -> int:
        return len(self.enter_long)

    @property
    def has_stops(self) -> bool:
        """True when any stop-loss or take-profit is set."""
        return bool(np.isfinite(self.stop_loss).any() or np.isfinite(self.take_profit).any())

    def at(self, i: int = -1) -> dict[str, Any]:
        """The decision on candle ``i`` (default: the last), as a live bot reads it."""
        sl = float(self.stop_loss[i])
        tp = float(self.take_profit[i])
        return {
            "enter_long": bool(self.enter_long[i]),
            "exit_long": bool(self.exit_long[i]),
            "enter_short": bool(self.enter_short[i]),
            "exit_short": bool(self.exit_short[i]),
            "stop_loss": None if np.isnan(sl) else sl,
            "take_profit": None if np.isnan(tp) else tp,
        }


@dataclass(slots=True)
class SignalGrid:
    """Decisions for many parameter sets at once: arrays of shape ``(sets, candles)``."""

    enter_long: BoolArray
    exit_long: BoolArray
    enter_short: BoolArray
    exit_short: BoolArray
    stop_loss: FloatArray
    take_profit: FloatArray

    @classmethod
    def stack(cls, signals: Sequence[Signals]) -> SignalGrid:
        return cls(
            np.stack([s.enter_long for s in signals]),
            np.stack([s.exit_long for s in signals]),
            np.stack([s.enter_short for s in signals]),
            np.stack([s.exit_short for s in signals]),
            np.stack([s.stop_loss for s in signals]),
            np.stack([s.take_profit for s in signals]),
        )

    @property
    def has_stops(self) -> bool:
        return _any_finite(self.stop_loss) or _any_finite(self.take_profit)

    def row(self, k: int) -> Signals:
        return Signals(
            self.enter_long[k],
            self.exit_long[k],
            self.enter_short[k],
            self.exit_short[k],
            self.stop_loss[k],
            self.take_profit[k],
        )


def _any_finite(a: FloatArray) -> bool:
    if a.ndim and a.strides[-1] == 0:  # a broadcast view: one value per row
        a = a[..., :1]
    return bool(np.isfinite(a).any())


class StrategyParams(BaseModel):
    """Parameters every strategy accepts; each strategy extends this model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stop_loss: float | None = Field(default=None, gt=0, lt=1, description="fraction below entry")
    take_profit: float | None = Field(default=None, gt=0, description="fraction above entry")


class Strategy(ABC):
    """A named, stateless decision function over closed candles."""

    name: ClassVar[str]
    params_model: ClassVar[type[StrategyParams]]
    description: ClassVar[str] = ""

    def validate(self, params: Mapping[str, Any] | StrategyParams | None) -> StrategyParams:
        """Validate ``params``; raise :class:`InvalidParameters` naming the bad parameter."""
        if isinstance(params, self.params_model):
            return params
        raw = dict(params or {}) if not isinstance(params, StrategyParams) else params.model_dump()
        try:
            return self.params_model.model_validate(raw)
        except ValidationError as e:
            err = e.errors()[0]
            # drop pydantic's union-branch and validator labels, keep the user's field path
            parts = [str(p) for p in err["loc"] if not str(p)[:1].isupper() and "[" not in str(p)]
            raise InvalidParameters(self.name, ".".join(parts) or "params", err["msg"]) from e

    @abstractmethod
    def warmup(self, params: StrategyParams) -> int:
        """How many candles the indicators need before the first valid decision."""

    @abstractmethod
    def compute(self, candles: Candles, params: StrategyParams) -> Signals:
        """Decisions for every candle (parameters already validated)."""

    def signals(self, candles: Candles, params: Mapping[str, Any] | StrategyParams) -> Signals:
        """Validate ``params`` and compute decisions for every candle.

        No decision is taken on the first ``warmup`` candles: a bot decides once it has
        ``warmup + 1`` closed candles, so a backtest decides from the same candle on.
        """
        p = self.validate(params)
        sig = self.compute(candles, p)
        skip_warmup(sig, self.warmup(p))
        return with_stops(sig, p)

    def signal_grid(
        self, candles: Candles, param_sets: Sequence[Mapping[str, Any] | StrategyParams]
    ) -> SignalGrid:
        """Decisions for many parameter sets; strategies override this to share work."""
        return SignalGrid.stack([self.signals(candles, p) for p in param_sets])


def skip_warmup(sig: Signals | SignalGrid, warmup: Any) -> None:
    """Clear the decisions on candles before ``warmup`` (one value, or one per grid row)."""
    w = np.asarray(warmup, dtype=np.int64)
    if not w.ndim:
        for a in (sig.enter_long, sig.exit_long, sig.enter_short, sig.exit_short):
            a[..., : int(w)] = False
        return
    early = np.arange(sig.enter_long.shape[-1])[None, :] < w[:, None]
    for a in (sig.enter_long, sig.exit_long, sig.enter_short, sig.exit_short):
        a[early] = False


def with_stops(sig: Signals, params: StrategyParams) -> Signals:
    """Attach the constant stop-loss / take-profit fractions of ``params`` to the signals."""
    n = len(sig)
    if params.stop_loss is not None:
        sig.stop_loss = np.full(n, params.stop_loss)
    if params.take_profit is not None:
        sig.take_profit = np.full(n, params.take_profit)
    return sig
