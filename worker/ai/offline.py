"""The offline analyst: the same structured answers as a model, from the platform's
figures by fixed rules (docs/ai.md lists them). Deterministic, free and always available,
so analyses work with no model configured.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from worker.ai.schema import Analysis, Finding, StrategyDraft, Suggestion
from worker.errors import Fatal

MODEL_NAME = "offline-analyst"
Figures = Mapping[str, Any]


class NoStrategy(Fatal):
    """The description names no condition the assistant can turn into rules."""

    code = "no_valid_strategy"


def _num(f: Figures, key: str) -> float | None:
    value = f.get(key)
    return None if value is None or isinstance(value, bool) else float(value)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}%"


def _drawdown(f: Figures, out: list[Finding]) -> None:
    dd = _num(f, "max_drawdown_pct")
    if dd is None:
        return
    if dd >= 20:
        out.append(
            Finding(
                severity="high",
                title="Deep drawdown",
                figure="max_drawdown_pct",
                detail=f"The equity fell {_pct(dd)} from a peak; 20% or more is high.",
            )
        )
    elif dd >= 10:
        out.append(
            Finding(
                severity="medium",
                title="Notable drawdown",
                figure="max_drawdown_pct",
                detail=f"The equity fell {_pct(dd)} from a peak (10% to 20% is medium).",
            )
        )


def _stop(f: Figures, out: list[Finding], tips: list[Suggestion]) -> None:
    stop = _num(f, "stop_loss_pct")
    if stop is None:
        out.append(
            Finding(
                severity="high",
                title="No stop-loss",
                figure="stop_loss_pct",
                detail="Positions have no stop-loss, so a single move can take any loss.",
            )
        )
        tips.append(
            Suggestion(
                title="Set a 5% stop-loss",
                target="bot",
                parameters={"stop_loss": 5},
                detail="Caps the loss of one position at about 5% of its stake.",
            )
        )
    elif stop > 15:
        out.append(
            Finding(
                severity="medium",
                title="Wide stop-loss",
                figure="stop_loss_pct",
                detail=f"The stop-loss is {_pct(stop)} away from entry; above 15% is wide.",
            )
        )
        tips.append(
            Suggestion(
                title="Tighten the stop-loss to 10%",
                target="bot",
                parameters={"stop_loss": 10},
                detail="Halves the worst loss of one position while keeping room to move.",
            )
        )


def performance(f: Figures) -> Analysis:
    """A bot's performance review."""
    out: list[Finding] = []
    tips: list[Suggestion] = []
    closed = int(f.get("closed_trades") or 0)
    wr, pf = _num(f, "win_rate"), _num(f, "profit_factor")
    ret = _num(f, "return_pct")
    if closed == 0:
        out.append(
            Finding(
                severity="info",
                title="No closed trades yet",
                figure="closed_trades",
                detail="There is nothing to judge until the bot closes a trade.",
            )
        )
        tips.append(Suggestion(title="Let it run", detail="Review again after 30 closed trades."))
    else:
        if pf is not None and pf < 1:
            out.append(
                Finding(
                    severity="high",
                    title="Losing more than it wins",
                    figure="profit_factor",
                    detail=f"Profit factor {pf:.2f}: losses outweigh gains.",
                )
            )
        elif pf is not None and pf >= 1.5:
            out.append(
                Finding(
                    severity="info",
                    title="Healthy profit factor",
                    figure="profit_factor",
                    detail=f"Profit factor {pf:.2f}: gains are at least 1.5 times the losses.",
                )
            )
        if wr is not None and wr < 40:
            out.append(
                Finding(
                    severity="medium",
                    title="Low win rate",
                    figure="win_rate",
                    detail=f"{_pct(wr)} of closed trades won (below 40%).",
                )
            )
        if closed < 30:
            out.append(
                Finding(
                    severity="low",
                    title="Few trades",
                    figure="closed_trades",
                    detail=f"{closed} closed trades are too few to tell skill from luck.",
                )
            )
        streak = int(f.get("max_consecutive_losses") or 0)
        if streak >= 5:
            out.append(
                Finding(
                    severity="medium",
                    title="Long losing streak",
                    figure="max_consecutive_losses",
                    detail=f"{streak} losses in a row at worst.",
                )
            )
        fees, gross = _num(f, "fees"), _num(f, "gross_profit")
        if fees and gross and fees / gross > 0.3:
            out.append(
                Finding(
                    severity="medium",
                    title="Fees eat the gains",
                    figure="fees",
                    detail=f"Fees are {fees / gross:.0%} of the gross profit.",
                )
            )
            tips.append(
                Suggestion(
                    title="Trade a slower timeframe",
                    detail="Fewer, larger moves keep more of each gain after fees.",
                )
            )
    _drawdown(f, out)
    _stop(f, out, tips)
    summary = (
        f"{f.get('name', 'The bot')} ({f.get('trading_pair', '?')} {f.get('timeframe', '')}, "
        f"{f.get('strategy', '?')}): {closed} closed trades, win rate {_pct(wr)}, "
        f"return {_pct(ret)}, max drawdown {_pct(_num(f, 'max_drawdown_pct'))}."
    )
    return Analysis(summary=summary, findings=out, suggestions=tips)


def risk(f: Figures) -> Analysis:
    """A risk assessment of a bot or a strategy."""
    out: list[Finding] = []
    tips: list[Suggestion] = []
    lev = _num(f, "leverage")
    if lev is not None and lev > 3:
        out.append(
            Finding(
                severity="high",
                title="High leverage",
                figure="leverage",
                detail=f"Leverage {lev:g}x: a {100 / lev:.1f}% move against a position wipes its margin.",
            )
        )
        tips.append(
            Suggestion(
                title="Lower leverage to 2x", detail="Halves the liquidation risk or better."
            )
        )
    elif lev is not None and lev > 1:
        out.append(
            Finding(
                severity="medium",
                title="Leveraged",
                figure="leverage",
                detail=f"Leverage {lev:g}x multiplies gains and losses.",
            )
        )
    exposure = _num(f, "stake_pct_of_balance")
    if exposure is not None and exposure > 50:
        out.append(
            Finding(
                severity="high",
                title="Large stake per trade",
                figure="stake_pct_of_balance",
                detail=f"One trade stakes {_pct(exposure)} of the balance.",
            )
        )
    elif exposure is not None and exposure > 25:
        out.append(
            Finding(
                severity="medium",
                title="Sizeable stake per trade",
                figure="stake_pct_of_balance",
                detail=f"One trade stakes {_pct(exposure)} of the balance.",
            )
        )
    conc = _num(f, "pair_share_pct")
    if conc is not None and conc > 50:
        out.append(
            Finding(
                severity="medium",
                title="Concentrated on one market",
                figure="pair_share_pct",
                detail=f"{_pct(conc)} of your bots' capital trades {f.get('trading_pair')}.",
            )
        )
    dist = _num(f, "avg_stop_distance_pct")
    if dist is not None and dist < 0.5:
        out.append(
            Finding(
                severity="low",
                title="Very tight stops",
                figure="avg_stop_distance_pct",
                detail=f"Stops sit {_pct(dist)} from entry on average: noise may stop trades out.",
            )
        )
    _stop(f, out, tips)
    _drawdown(f, out)
    if not out:
        out.append(
            Finding(
                severity="info", title="No risk flags", detail="No rule of the risk review fired."
            )
        )
    worst = max((_ORDER.index(x.severity) for x in out), default=0)
    summary = (
        f"Risk of {f.get('name', 'this strategy')}: overall {_ORDER[worst]}; leverage "
        f"{'n/a' if lev is None else f'{lev:g}x'}, stop-loss {_pct(_num(f, 'stop_loss_pct'))}, "
        f"stake {_pct(exposure)} of balance, max drawdown {_pct(_num(f, 'max_drawdown_pct'))}."
    )
    return Analysis(summary=summary, findings=out, suggestions=tips)


_ORDER = ("info", "low", "medium", "high", "critical")


def backtest(f: Figures) -> Analysis:
    """A backtest explained, with an overfitting warning from in- vs out-of-sample figures."""
    out: list[Finding] = []
    tips: list[Suggestion] = []
    trades = int(f.get("total_trades") or 0)
    ret, sharpe = _num(f, "total_return_pct"), _num(f, "sharpe_ratio")
    if trades < 30:
        out.append(
            Finding(
                severity="medium",
                title="Too few trades",
                figure="total_trades",
                detail=f"{trades} trades are too few for the figures to be significant.",
            )
        )
        tips.append(Suggestion(title="Test a longer period", detail="Aim for at least 30 trades."))
    if ret is not None and ret < 0:
        out.append(
            Finding(
                severity="high",
                title="Lost money",
                figure="total_return_pct",
                detail=f"The run returned {_pct(ret)}.",
            )
        )
    if sharpe is not None and sharpe < 0.5:
        out.append(
            Finding(
                severity="medium",
                title="Poor risk-adjusted return",
                figure="sharpe_ratio",
                detail=f"Sharpe ratio {sharpe:.2f} (below 0.5).",
            )
        )
    elif sharpe is not None and sharpe >= 1:
        out.append(
            Finding(
                severity="info",
                title="Good risk-adjusted return",
                figure="sharpe_ratio",
                detail=f"Sharpe ratio {sharpe:.2f}.",
            )
        )
    if (dd := _num(f, "max_drawdown_pct")) is not None and dd >= 25:
        out.append(
            Finding(
                severity="high",
                title="Deep drawdown",
                figure="max_drawdown_pct",
                detail=f"The equity fell {_pct(dd)} from a peak.",
            )
        )
    ins, oos = _num(f, "in_sample_return_pct"), _num(f, "out_of_sample_return_pct")
    if ins is not None and oos is not None:
        if ins > 0 and (oos <= 0 or oos < ins * 0.5):
            out.append(
                Finding(
                    severity="high",
                    title="Likely overfit",
                    figure="out_of_sample_return_pct",
                    detail=f"In-sample {_pct(ins)} but out-of-sample {_pct(oos)}: the parameters "
                    "fit the past, not the market.",
                )
            )
            tips.append(
                Suggestion(
                    title="Prefer robust parameters",
                    detail="Pick parameters whose neighbours score well too, and re-check "
                    "on a held-out period.",
                )
            )
        else:
            out.append(
                Finding(
                    severity="info",
                    title="Holds out of sample",
                    figure="out_of_sample_return_pct",
                    detail=f"In-sample {_pct(ins)}, out-of-sample {_pct(oos)}.",
                )
            )
    summary = (
        f"{f.get('strategy', '?')} on {f.get('trading_pair', '?')} {f.get('timeframe', '')}: "
        f"{trades} trades, return {_pct(ret)}, max drawdown {_pct(_num(f, 'max_drawdown_pct'))}, "
        f"win rate {_pct(_num(f, 'win_rate'))}."
    )
    return Analysis(summary=summary, findings=out, suggestions=tips)


def portfolio(f: Figures) -> Analysis:
    """An insight over the user's aggregated holdings."""
    out: list[Finding] = []
    tips: list[Suggestion] = []
    n = int(f.get("holdings") or 0)
    top = _num(f, "top_holding_pct")
    if n == 0:
        out.append(
            Finding(
                severity="info",
                title="No holdings",
                figure="holdings",
                detail="No brokerage holdings are synced yet.",
            )
        )
    if top is not None and top > 50:
        out.append(
            Finding(
                severity="high",
                title="One holding dominates",
                figure="top_holding_pct",
                detail=f"{f.get('top_symbol')} is {_pct(top)} of the portfolio's value.",
            )
        )
        tips.append(
            Suggestion(title="Diversify", detail="Keep any one holding under 30% of the value.")
        )
    elif top is not None and top > 30:
        out.append(
            Finding(
                severity="medium",
                title="Concentrated",
                figure="top_holding_pct",
                detail=f"{f.get('top_symbol')} is {_pct(top)} of the portfolio's value.",
            )
        )
    pnl = _num(f, "unrealized_pnl_pct")
    if pnl is not None and pnl < -20:
        out.append(
            Finding(
                severity="medium",
                title="Large unrealised loss",
                figure="unrealized_pnl_pct",
                detail=f"The holdings are {_pct(pnl)} below their cost.",
            )
        )
    summary = (
        f"{n} holdings worth {f.get('market_value', 0)} {f.get('currency', '')}; the largest is "
        f"{f.get('top_symbol') or 'n/a'} at {_pct(top)}; unrealised P&L {_pct(pnl)}."
    )
    return Analysis(summary=summary, findings=out, suggestions=tips)


ANALYSTS: dict[str, Callable[[Figures], Analysis]] = {
    "performance": performance,
    "risk": risk,
    "backtest": backtest,
    "portfolio": portfolio,
}


def _ind(name: str, period: int | None = None) -> dict[str, Any]:
    return {"indicator": name} if period is None else {"indicator": name, "period": period}


def draft_strategy(description: str) -> StrategyDraft:
    """Rules from a plain-language description, by keywords (RSI levels, moving-average
    crosses, MACD, Bollinger bands, stop-loss and take-profit percentages)."""
    text = description.lower()
    entries: list[dict[str, Any]] = []
    exits: list[dict[str, Any]] = []
    names: list[str] = []
    if "rsi" in text or "oversold" in text or "overbought" in text:
        period = int(m.group(1)) if (m := re.search(r"rsi\s*\(?\s*(\d{1,3})\s*\)?", text)) else 14
        low = re.search(r"(?:below|under|<)\s*(\d{1,2})", text)
        high = re.search(r"(?:above|over|>)\s*(\d{1,2})", text)
        entries.append(
            {"left": _ind("rsi", period), "op": "<", "right": int(low.group(1)) if low else 30}
        )
        exits.append(
            {"left": _ind("rsi", period), "op": ">", "right": int(high.group(1)) if high else 70}
        )
        names.append(f"RSI {period}")
    ma = "ema" if "ema" in text or "exponential" in text else "sma"
    cross = re.search(r"(\d{1,3})\s*(?:/|and|over|vs\.?)\s*(\d{1,3})", text)
    if "golden cross" in text or (
        "cross" in text and ("average" in text or "sma" in text or "ema" in text)
    ):
        fast, slow = (
            (50, 200) if cross is None else sorted((int(cross.group(1)), int(cross.group(2))))
        )
        entries.append({"left": _ind(ma, fast), "op": "crosses_above", "right": _ind(ma, slow)})
        exits.append({"left": _ind(ma, fast), "op": "crosses_below", "right": _ind(ma, slow)})
        names.append(f"{ma.upper()} {fast}/{slow} cross")
    if "macd" in text:
        entries.append({"left": _ind("macd"), "op": "crosses_above", "right": _ind("macd_signal")})
        exits.append({"left": _ind("macd"), "op": "crosses_below", "right": _ind("macd_signal")})
        names.append("MACD")
    if "bollinger" in text:
        entries.append({"left": _ind("close"), "op": "<", "right": _ind("bb_lower")})
        exits.append({"left": _ind("close"), "op": ">", "right": _ind("bb_middle")})
        names.append("Bollinger")
    if not entries:
        raise NoStrategy(
            "the description names no condition the assistant knows (RSI levels, moving-average "
            "crosses, MACD or Bollinger bands)"
        )
    rules: dict[str, Any] = {
        "entry_long": entries[0] if len(entries) == 1 else {"all": entries},
        "exit_long": exits[0] if len(exits) == 1 else {"any": exits},
    }
    for key, words in (("stop_loss", r"stop[\s-]*loss"), ("take_profit", r"take[\s-]*profit")):
        m = re.search(words + r"\D{0,10}(\d{1,2}(?:\.\d+)?)\s*%", text) or re.search(
            r"(\d{1,2}(?:\.\d+)?)\s*%\s*" + words, text
        )
        if m:
            rules[key] = float(m.group(1)) / 100
    name = " + ".join(names)
    return StrategyDraft(
        name=name,
        rules=rules,
        explanation=f"Buys when {' and '.join(names)} signal an entry and sells on the opposite signal"
        + (f", with a {rules['stop_loss']:.0%} stop-loss" if "stop_loss" in rules else "")
        + ".",
    )
