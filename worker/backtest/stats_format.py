"""Backtest statistics as people read them: a label, a unit, and a sensible precision."""

from __future__ import annotations

import math
from collections.abc import Mapping

# key -> (label, unit); unit is "money" (in the quote currency), "%", "ratio", "count" or
# "candles". The order is the order of reports and tables.
STATS: dict[str, tuple[str, str]] = {
    "initial_balance": ("Initial balance", "money"),
    "final_balance": ("Final balance", "money"),
    "total_return": ("Net profit", "money"),
    "total_return_percentage": ("Return", "%"),
    "buy_and_hold_return_percentage": ("Buy-and-hold return", "%"),
    "annual_return_percentage": ("Return, annualised", "%"),
    "annual_volatility_percentage": ("Volatility, annualised", "%"),
    "sharpe_ratio": ("Sharpe ratio", "ratio"),
    "sortino_ratio": ("Sortino ratio", "ratio"),
    "calmar_ratio": ("Calmar ratio", "ratio"),
    "max_drawdown": ("Max. drawdown", "%"),
    "avg_drawdown": ("Avg. drawdown", "%"),
    "max_drawdown_duration_bars": ("Max. drawdown duration", "candles"),
    "exposure_time_percentage": ("Exposure time", "%"),
    "total_trades": ("Trades", "count"),
    "winning_trades": ("Winning trades", "count"),
    "losing_trades": ("Losing trades", "count"),
    "win_rate": ("Win rate", "%"),
    "profit_factor": ("Profit factor", "ratio"),
    "best_trade": ("Best trade P&L", "money"),
    "worst_trade": ("Worst trade P&L", "money"),
    "avg_trade": ("Avg. trade P&L", "money"),
    "best_trade_pct": ("Best trade return", "%"),
    "worst_trade_pct": ("Worst trade return", "%"),
    "avg_trade_pct": ("Avg. trade return", "%"),
    "expectancy_pct": ("Expectancy", "%"),
    "sqn": ("SQN", "ratio"),
    "max_consecutive_wins": ("Max. consecutive wins", "count"),
    "max_consecutive_losses": ("Max. consecutive losses", "count"),
    "missing_candles": ("Missing candles", "count"),
}


def quote_currency(market: str) -> str:
    """``ETH_BTC-5m`` -> ``BTC``; empty when the name does not say."""
    pair = market.rsplit("-", 1)[0]
    for sep in ("_", "/"):
        if sep in pair:
            return pair.rsplit(sep, 1)[1].upper()
    return ""


def market_label(name: str) -> str:
    """``ETH_BTC-5m`` -> ``ETH/BTC``."""
    return name.rsplit("-", 1)[0].replace("_", "/") if name else ""


def number(v: float, decimals: int = 2) -> str:
    """Thousands separators; tiny values keep significant digits (prices of 0.0000123)."""
    if v != 0 and abs(v) < 10**-decimals * 10:
        return f"{v:.{decimals + 2}g}"
    return f"{v:,.{decimals}f}"


def format_stat(key: str, value: float | int | None, quote: str = "") -> str:
    """``value`` of statistic ``key`` with its unit, e.g. ``12.34 %`` or ``10,027.15 BTC``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    unit = STATS.get(key, ("", "ratio"))[1]
    if unit == "count":
        return f"{int(value):,}"
    if unit == "candles":
        return f"{int(value):,} candles"
    if unit == "%":
        return f"{number(value)} %"
    if unit == "money":
        return f"{number(value)} {quote}".rstrip()
    return number(value)


def stat_label(key: str) -> str:
    """Readable label of statistic ``key``; unknown keys lose their underscores."""
    return STATS[key][0] if key in STATS else key.replace("_", " ").capitalize()


def stat_rows(stats: Mapping[str, float | int | None], quote: str = "") -> list[tuple[str, str]]:
    """(label, formatted value) for every statistic, known ones first in report order."""
    keys = [k for k in STATS if k in stats] + [k for k in stats if k not in STATS]
    return [(stat_label(k), format_stat(k, stats[k], quote)) for k in keys]
