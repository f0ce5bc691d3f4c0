"""Strategy registry: look strategies up by name and validate their parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.strategies.base import Candles, Signals, Strategy, StrategyParams, UnknownStrategy
from worker.strategies.builtin import BUILTINS
from worker.strategies.rules import Rules

_CLASSES: tuple[type[Strategy], ...] = (*BUILTINS, Rules)
_REGISTRY: dict[str, Strategy] = {cls.name: cls() for cls in _CLASSES}


def list_strategies() -> list[str]:
    """Names of every registered strategy, sorted."""
    return sorted(_REGISTRY)


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name``; raises :class:`UnknownStrategy` otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(list_strategies())
        raise UnknownStrategy(f"unknown strategy '{name}' (known: {known})") from None


def validate_params(name: str, params: Mapping[str, Any] | None) -> StrategyParams:
    """Validated parameters for ``name``.

    Raises :class:`InvalidParameters` (a ``ValueError``) whose message names the parameter,
    so a bot is rejected when it is saved or started, not when it first trades.
    """
    return get_strategy(name).validate(params)


def compute_signals(name: str, candles: Candles, params: Mapping[str, Any] | None) -> Signals:
    """Decisions of strategy ``name`` with ``params`` on every candle."""
    strategy = get_strategy(name)
    return strategy.signals(candles, strategy.validate(params))
