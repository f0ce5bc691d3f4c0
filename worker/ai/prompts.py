"""The prompts: instructions per analysis type and the platform's figures as JSON.

Only the figures loaded under the user's row level security go in; never keys, tokens or
another user's rows.
"""

from __future__ import annotations

import json
from typing import Any

_COMMON = (
    "You are Tradefleet's trading analyst. Use only the figures given, which the platform "
    "computed; never invent or recompute a number. Name the figure key a finding rests on in "
    "'figure'. Severities: info, low, medium, high, critical. Answer only with JSON matching "
    "the schema: a short summary, findings, and suggestions. A suggestion that changes "
    "settings carries them in 'parameters' (strategy parameters by name; stop_loss and "
    "take_profit in percent) with target 'bot' or 'strategy'."
)
_TASKS = {
    "performance": "Review the bot's performance: returns, win rate, profit factor, drawdown, streaks, fees.",
    "risk": "Assess the risk of this bot or strategy: drawdowns, exposure, leverage, concentration, stop distances.",
    "backtest": (
        "Explain this backtest in plain words. When in_sample_return_pct and "
        "out_of_sample_return_pct are given and the out-of-sample figure is much worse, warn of overfitting."
    ),
    "portfolio": "Give insight into the user's aggregated holdings: concentration, unrealised P&L, diversification.",
}
_STRATEGY = (
    "You turn a trading idea into a declarative 'rules' strategy for Tradefleet; never code. "
    "Nodes are conditions {left, op, right} (op: <, <=, >, >=, crosses_above, crosses_below) or "
    "groups {all: [...]}, {any: [...]}, {not: node}. Operands are numbers or indicators "
    "{indicator, period?, fast?, slow?, signal?, std?, source?, shift?} with indicator one of "
    "open, high, low, close, volume, sma, ema, rsi, macd, macd_signal, macd_hist, bb_upper, "
    "bb_middle, bb_lower, atr (sma and ema need period). rules has entry_long and/or "
    "entry_short, optional exit_long, exit_short, and stop_loss / take_profit as fractions "
    "(0.05 = 5%). Answer only with JSON: name, explanation, rules."
)


def analysis(kind: str, figures: dict[str, Any]) -> tuple[str, str]:
    """(system, user) messages of an analysis of ``kind`` over ``figures``."""
    user = (
        f"{_TASKS[kind]}\n\nFigures (computed by the platform):\n"
        f"{json.dumps(figures, sort_keys=True, default=str)}"
    )
    return _COMMON, user


def strategy(description: str) -> tuple[str, str]:
    """(system, user) messages that turn ``description`` into rules."""
    return _STRATEGY, f"Description:\n{description[:2000]}"
