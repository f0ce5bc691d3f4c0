"""Strategies: pure decision functions over closed candles (no I/O).

Public API::

    from worker.strategies import get_strategy, validate_params, Candles

    params = validate_params("sma_cross", {"fast": 10, "slow": 20})   # raises InvalidParameters
    sig = get_strategy("sma_cross").signals(candles, params)         # Signals, one per candle
    sig.at(-1)                                                       # what a live bot reads
"""

from __future__ import annotations

from worker.strategies.base import (
    Candles,
    InvalidParameters,
    SignalGrid,
    Signals,
    Strategy,
    StrategyParams,
    UnknownStrategy,
)
from worker.strategies.builtin import ma_cross_grid
from worker.strategies.registry import (
    compute_signals,
    get_strategy,
    list_strategies,
    validate_params,
)

__all__ = [
    "Candles",
    "InvalidParameters",
    "SignalGrid",
    "Signals",
    "Strategy",
    "StrategyParams",
    "UnknownStrategy",
    "compute_signals",
    "get_strategy",
    "list_strategies",
    "ma_cross_grid",
    "validate_params",
]
