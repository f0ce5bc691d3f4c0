"""``rules``: a declarative strategy whose conditions over indicators are JSON data.

This is how custom and AI-generated strategies run: the rules are validated by pydantic
and evaluated by this module; no user-supplied code is ever executed. Example::

    {
      "entry_long": {"all": [
        {"left": {"indicator": "rsi", "period": 14}, "op": "<", "right": 30},
        {"left": {"indicator": "close"}, "op": ">", "right": {"indicator": "sma", "period": 200}}
      ]},
      "exit_long": {"left": {"indicator": "rsi", "period": 14}, "op": "crosses_above",
                    "right": 70},
      "stop_loss": 0.05
    }

A node is a condition ``{left, op, right}`` or a group ``{"all": [...]}``, ``{"any": [...]}``,
``{"not": node}``. Operands are numbers or indicators; ``shift`` reads the value ``shift``
candles earlier. Comparisons against NaN (warm-up) are false.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from worker.strategies import indicators as ta
from worker.strategies.base import BoolArray, Candles, FloatArray, Signals, Strategy, StrategyParams

Price = Literal["open", "high", "low", "close", "volume"]
IndicatorName = Literal[
    "open", "high", "low", "close", "volume",
    "sma", "ema", "rsi", "macd", "macd_signal", "macd_hist",
    "bb_upper", "bb_middle", "bb_lower", "atr",
]  # fmt: skip

_PERIOD_DEFAULTS = {"rsi": 14, "atr": 14, "bb_upper": 20, "bb_middle": 20, "bb_lower": 20}
_MACD = ("macd", "macd_signal", "macd_hist")
_BB = ("bb_upper", "bb_middle", "bb_lower")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Indicator(_Model):
    """An indicator (or a raw price series) evaluated on every candle."""

    indicator: IndicatorName
    period: int | None = Field(default=None, ge=1, le=10_000)
    fast: int = Field(default=12, ge=1, le=1000)
    slow: int = Field(default=26, ge=2, le=1000)
    signal: int = Field(default=9, ge=1, le=1000)
    std: float = Field(default=2.0, gt=0, le=10)
    source: Price = "close"
    shift: int = Field(default=0, ge=0, le=1000)

    @model_validator(mode="after")
    def _check(self) -> Indicator:
        if self.indicator in ("sma", "ema") and self.period is None:
            raise ValueError(f"indicator '{self.indicator}' needs 'period'")
        if self.indicator in _MACD and self.fast >= self.slow:
            raise ValueError("macd: fast must be smaller than slow")
        return self

    @property
    def effective_period(self) -> int:
        return self.period or _PERIOD_DEFAULTS.get(self.indicator, 1)

    def warmup(self) -> int:
        if self.indicator in _MACD:
            return self.slow + self.signal + self.shift
        return self.effective_period + 1 + self.shift


Operand = Indicator | float


class Condition(_Model):
    left: Operand
    op: Literal["<", "<=", ">", ">=", "crosses_above", "crosses_below"]
    right: Operand


class AllOf(_Model):
    all: list[Node] = Field(min_length=1, max_length=50)


class AnyOf(_Model):
    any: list[Node] = Field(min_length=1, max_length=50)


class NotOf(_Model):
    not_: Node = Field(alias="not")


def _node_kind(v: Any) -> str:
    keys = v.keys() if isinstance(v, dict) else ()
    if isinstance(v, AllOf) or "all" in keys:
        return "All"
    if isinstance(v, AnyOf) or "any" in keys:
        return "Any"
    if isinstance(v, NotOf) or "not" in keys:
        return "Not"
    return "Condition"


Node = Annotated[
    Annotated[Condition, Tag("Condition")]
    | Annotated[AllOf, Tag("All")]
    | Annotated[AnyOf, Tag("Any")]
    | Annotated[NotOf, Tag("Not")],
    Discriminator(_node_kind),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()


class RulesParams(StrategyParams):
    entry_long: Node | None = Field(default=None, description="condition to open a long")
    exit_long: Node | None = Field(default=None, description="condition to close a long")
    entry_short: Node | None = Field(default=None, description="condition to open a short")
    exit_short: Node | None = Field(default=None, description="condition to close a short")

    @model_validator(mode="after")
    def _some_entry(self) -> RulesParams:
        if self.entry_long is None and self.entry_short is None:
            raise ValueError("at least one of entry_long / entry_short is required")
        return self


def _operands(node: Node) -> list[Indicator]:
    if isinstance(node, Condition):
        return [o for o in (node.left, node.right) if isinstance(o, Indicator)]
    if isinstance(node, NotOf):
        return _operands(node.not_)
    children = node.all if isinstance(node, AllOf) else node.any
    return [i for c in children for i in _operands(c)]


class _Evaluator:
    """Evaluates nodes over one set of candles, computing each distinct indicator once."""

    def __init__(self, candles: Candles) -> None:
        self.c = candles
        self.cache: dict[Indicator, FloatArray] = {}

    def series(self, ind: Indicator) -> FloatArray:
        if ind not in self.cache:
            self.cache[ind] = _shift(self._raw(ind), ind.shift)
        return self.cache[ind]

    def _raw(self, ind: Indicator) -> FloatArray:
        c = self.c
        src: FloatArray = getattr(c, ind.source)
        name, n = ind.indicator, ind.effective_period
        if name in ("open", "high", "low", "close", "volume"):
            out: FloatArray = getattr(c, name)
            return out
        if name == "sma":
            return ta.sma(src, n)
        if name == "ema":
            return ta.ema(src, n)
        if name == "rsi":
            return ta.rsi(src, n)
        if name == "atr":
            return ta.atr(c.high, c.low, c.close, n)
        if name in _MACD:
            return ta.macd(src, ind.fast, ind.slow, ind.signal)[_MACD.index(name)]
        return ta.bollinger(src, n, ind.std)[_BB.index(name)]

    def operand(self, o: Operand) -> Any:
        return self.series(o) if isinstance(o, Indicator) else float(o)

    def eval(self, node: Node | None) -> BoolArray:
        n = len(self.c)
        if node is None:
            return np.zeros(n, dtype=np.bool_)
        if isinstance(node, AllOf):
            out = np.ones(n, dtype=np.bool_)
            for child in node.all:
                out &= self.eval(child)
            return out
        if isinstance(node, AnyOf):
            out = np.zeros(n, dtype=np.bool_)
            for child in node.any:
                out |= self.eval(child)
            return out
        if isinstance(node, NotOf):
            return ~self.eval(node.not_)
        a, b = self.operand(node.left), self.operand(node.right)
        if node.op == "crosses_above":
            return ta.crossed_above(a, b)
        if node.op == "crosses_below":
            return ta.crossed_below(a, b)
        with np.errstate(invalid="ignore"):
            res = {
                "<": np.less,
                "<=": np.less_equal,
                ">": np.greater,
                ">=": np.greater_equal,
            }[node.op](a, b)
        return np.broadcast_to(np.asarray(res, dtype=np.bool_), (n,)).copy()


def _shift(x: FloatArray, k: int) -> FloatArray:
    if k == 0:
        return x
    out = np.full_like(x, np.nan)
    out[k:] = x[:-k]
    return out


class Rules(Strategy):
    """Declarative strategy: entry/exit conditions over indicators, given as data."""

    name = "rules"
    description = "Declarative conditions over indicators (JSON)"
    params_model: ClassVar[type[StrategyParams]] = RulesParams

    def warmup(self, params: StrategyParams) -> int:
        p = cast(RulesParams, params)
        nodes = [p.entry_long, p.exit_long, p.entry_short, p.exit_short]
        return max([i.warmup() for n in nodes if n is not None for i in _operands(n)] + [1])

    def compute(self, candles: Candles, params: StrategyParams) -> Signals:
        p = cast(RulesParams, params)
        ev = _Evaluator(candles)
        return Signals(
            enter_long=ev.eval(p.entry_long),
            exit_long=ev.eval(p.exit_long),
            enter_short=ev.eval(p.entry_short),
            exit_short=ev.eval(p.exit_short),
        )
