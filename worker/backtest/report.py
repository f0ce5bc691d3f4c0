"""Self-contained HTML reports of backtests, batches and optimisations.

Charts are inline SVG (``report_charts``); there is no script and no external asset, so a
file opens offline and can be attached or stored as is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from worker.backtest.api import BacktestResult
from worker.backtest.optimize import LOWER_IS_BETTER, OptimizeResult
from worker.backtest.report_charts import drawdown_svg, equity_svg, heatmap_svg, price_svg
from worker.backtest.stats_format import (
    format_stat,
    market_label,
    number,
    quote_currency,
    stat_label,
    stat_rows,
)
from worker.candles import CandleSeries

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1f24;max-width:1100px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:18px 0 6px}
dl.head{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0 0 12px}
dl.head dt{color:#57606a}dl.head dd{margin:0}
table{border-collapse:collapse}td,th{padding:3px 10px;white-space:nowrap;border-bottom:1px solid #eaeef2;text-align:right}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}
.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:0 24px}
.pos{color:#1a7f37}.neg{color:#cf222e}.trades{max-height:520px;overflow:auto;display:block}
svg{display:block;margin:4px 0 10px;overflow:visible}
svg text{font-size:11px;fill:#57606a;font-family:system-ui,sans-serif}
svg text.cellvalue{fill:#1b1f24;font-size:10px}svg text.axis-title{font-size:12px;fill:#1b1f24}
.warn{color:#9a6700}.winner{background:#dafbe1;padding:8px 12px;border-radius:6px;display:inline-block}
section.market{border-top:2px solid #d0d7de;margin-top:32px}
tr.best td{font-weight:600;background:#dafbe1}
"""

_SUMMARY = (
    "total_trades",
    "total_return_percentage",
    "buy_and_hold_return_percentage",
    "sharpe_ratio",
    "max_drawdown",
    "win_rate",
    "profit_factor",
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>"
    )


def _settings_text(result: BacktestResult, quote: str) -> str:
    s = result.settings
    stake = (
        f"{number(s.stake_amount)} {quote} per trade"
        if s.stake_amount
        else f"{s.stake_fraction:.0%} of equity per trade"
    )
    units = f" · amounts in multiples of {s.amount_step:g}" if s.amount_step else ""
    return (
        f"initial balance {number(s.cash)} {quote} · fee {s.fee:.3%} · slippage "
        f"{s.slippage:.3%} · {'long and short' if s.shorts else 'long only'} · {stake}{units}"
    )


def header(result: BacktestResult, series: CandleSeries) -> str:
    """Strategy, parameters, market, timeframe, period and settings of one run."""
    quote = quote_currency(series.name)
    rows = (
        ("Strategy", result.strategy),
        ("Parameters", _params(result.params)),
        ("Market", market_label(series.name) or "-"),
        ("Timeframe", result.timeframe),
        ("Period", f"{result.start_date} → {result.end_date} ({len(series.candles):,} candles)"),
        ("Settings", _settings_text(result, quote)),
    )
    items = "".join(f'<dt>{k}</dt><dd class="{k.lower()}">{_e(v)}</dd>' for k, v in rows)
    return f'<dl class="head">{items}</dl>'


def _stats_tables(stats: dict[str, Any], quote: str) -> str:
    items = stat_rows(stats, quote)
    half = (len(items) + 1) // 2
    cols = []
    for chunk in (items[:half], items[half:]):
        rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in chunk)
        cols.append(f"<table>{rows}</table>")
    return f'<div class="stats">{"".join(cols)}</div>'


def _trades_table(trades: list[dict[str, Any]], quote: str) -> str:
    if not trades:
        return "<p>No trades.</p>"
    head = (
        "<tr><th>#</th><th>side</th><th>entry (UTC)</th><th>exit (UTC)</th><th>entry price</th>"
        f"<th>exit price</th><th>amount</th><th>P&amp;L ({_e(quote)})</th><th>return</th>"
        f"<th>fees ({_e(quote)})</th><th>exit reason</th></tr>"
    )
    body = []
    for i, t in enumerate(trades, 1):
        cls = "pos" if t["pnl"] > 0 else "neg" if t["pnl"] < 0 else ""
        body.append(
            f"<tr><td>{i}</td><td>{t['side']}</td><td>{_e(t['entry_time'])}</td>"
            f"<td>{_e(t['exit_time'])}</td><td>{number(t['entry_price'], 4)}</td>"
            f"<td>{number(t['exit_price'], 4)}</td><td>{number(t['amount'], 4)}</td>"
            f'<td class="{cls}">{number(t["pnl"], 4)}</td>'
            f'<td class="{cls}">{number(t["return_pct"])} %</td>'
            f"<td>{number(t['fees'], 4)}</td><td>{_e(t['exit_reason'])}</td></tr>"
        )
    return f'<table class="trades">{head}{"".join(body)}</table>'


def _gaps(result: BacktestResult) -> str:
    if not result.gaps:
        return ""
    items = "".join(f"<li>{_e(g.describe())}</li>" for g in result.gaps[:50])
    more = f"<li>… {len(result.gaps) - 50} more</li>" if len(result.gaps) > 50 else ""
    return f'<h3 class="warn">Gaps in the candles ({len(result.gaps)})</h3><ul>{items}{more}</ul>'


def charts(result: BacktestResult, series: CandleSeries, split: int | None = None) -> str:
    """Price with trades, equity against buy-and-hold, and drawdown."""
    c = series.candles
    equity = np.array([p["equity"] for p in result.equity])
    drawdown = np.array([p["drawdown"] for p in result.equity])
    hold = result.settings.cash * c.close / c.close[0] if len(c) else c.close
    quote = quote_currency(series.name)
    return (
        f"<h3>Price ({_e(quote) or 'quote'}) with entries and exits</h3>"
        f"{price_svg(c.time, c.close, result.trades)}"
        f"<h3>Equity ({_e(quote) or 'quote'}) against buy and hold</h3>"
        f"{equity_svg(c.time, equity, hold, split)}"
        f"<h3>Drawdown</h3>{drawdown_svg(c.time, drawdown)}"
    )


def _run_body(result: BacktestResult, series: CandleSeries, level: int = 2) -> str:
    quote = quote_currency(series.name)
    h = f"h{level}"
    return (
        f"{charts(result, series)}"
        f"<{h}>Statistics</{h}>{_stats_tables(result.stats, quote)}{_gaps(result)}"
        f"<{h}>Trades ({len(result.trades)})</{h}>{_trades_table(result.trades, quote)}"
    )


def render(result: BacktestResult, series: CandleSeries) -> str:
    """The report page of one backtest."""
    title = f"Backtest · {result.strategy} on {market_label(series.name)} {result.timeframe}"
    return _page(title, f"<h1>{_e(title)}</h1>{header(result, series)}{_run_body(result, series)}")


def _anchor(name: str) -> str:
    return "market-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def render_batch(runs: Sequence[tuple[CandleSeries, BacktestResult]]) -> str:
    """One summary table, then one section per market."""
    if not runs:
        return _page("Batch backtest", "<h1>Batch backtest</h1><p>No markets.</p>")
    first = runs[0][1]
    title = f"Batch backtest · {first.strategy} on {len(runs)} markets"
    head = "".join(f"<th>{_e(stat_label(k))}</th>" for k in _SUMMARY)
    rows = []
    for series, res in runs:
        q = quote_currency(series.name)
        cells = "".join(f"<td>{_e(format_stat(k, res.stats.get(k), q))}</td>" for k in _SUMMARY)
        rows.append(
            f'<tr><td><a href="#{_anchor(series.name)}">{_e(market_label(series.name))}</a></td>'
            f"<td>{_e(res.timeframe)}</td><td>{_e(res.start_date[:10])} → {_e(res.end_date[:10])}</td>"
            f"{cells}</tr>"
        )
    summary = (
        f'<table class="summary"><tr><th>market</th><th>timeframe</th><th>period</th>{head}</tr>'
        f"{''.join(rows)}</table>"
    )
    sections = "".join(
        f'<section class="market" id="{_anchor(series.name)}">'
        f"<h2>{_e(market_label(series.name))} {_e(res.timeframe)}</h2>{header(res, series)}"
        f"{_run_body(res, series, level=3)}</section>"
        for series, res in runs
    )
    intro = (
        f'<dl class="head"><dt>Strategy</dt><dd class="strategy">{_e(first.strategy)}</dd>'
        f'<dt>Parameters</dt><dd class="parameters">{_e(_params(first.params))}</dd>'
        f"<dt>Markets</dt><dd>{len(runs)}</dd></dl>"
    )
    return _page(title, f"<h1>{_e(title)}</h1>{intro}<h2>Summary</h2>{summary}{sections}")


def _heatmap(res: OptimizeResult, axes: tuple[str, str] | None) -> str:
    if axes is None:
        return "<p>The grid varies fewer than two parameters: no heatmap.</p>"
    x, y = axes
    cells: dict[tuple[Any, Any], float | None] = {}
    for r in res.ranked:  # best first, so the first value seen per cell is its best
        key = (r.params.get(x), r.params.get(y))
        if key not in cells:
            v = r.stats.get(res.metric)
            cells[key] = None if v is None else float(v)
    best = (res.ranked[0].params.get(x), res.ranked[0].params.get(y))
    return (
        f"<p>{_e(stat_label(res.metric))} for each pair of {_e(x)} and {_e(y)} (the best over "
        "the other parameters); the winner is outlined.</p>"
        + heatmap_svg(x, y, cells, res.metric, best, res.metric not in LOWER_IS_BETTER)
    )


def _ranking(res: OptimizeResult, top: int, quote: str) -> str:
    names = list(res.ranked[0].params) if res.ranked else []
    cols = (res.metric, *(k for k in _SUMMARY if k != res.metric))
    oos = bool(res.ranked and res.ranked[0].oos_stats is not None)
    head = (
        "<tr><th>#</th>"
        + "".join(f"<th>{_e(n)}</th>" for n in names)
        + "".join(f"<th>{_e(stat_label(k))}</th>" for k in cols)
        + (f"<th>{_e(stat_label(res.metric))}, out of sample</th>" if oos else "")
        + "</tr>"
    )
    rows = []
    for i, r in enumerate(res.ranked[:top], 1):
        cells = "".join(f"<td>{_e(r.params.get(n, '-'))}</td>" for n in names)
        cells += "".join(f"<td>{_e(format_stat(k, r.stats.get(k), quote))}</td>" for k in cols)
        if r.oos_stats is not None:
            cells += f"<td>{_e(format_stat(res.metric, r.oos_stats.get(res.metric), quote))}</td>"
        rows.append(f'<tr class="{"best" if i == 1 else ""}"><td>{i}</td>{cells}</tr>')
    return f'<table class="ranking">{head}{"".join(rows)}</table>'


def _in_vs_out(res: OptimizeResult, quote: str) -> str:
    best = res.ranked[0]
    if best.oos_stats is None and not res.folds:
        return "<p>No out-of-sample check was asked for (optimize --oos or --folds).</p>"
    out = []
    if best.oos_stats is not None:
        keys = dict.fromkeys((res.metric, *_SUMMARY))
        rows = "".join(
            f"<tr><td>{_e(stat_label(k))}</td><td>{_e(format_stat(k, best.stats.get(k), quote))}</td>"
            f"<td>{_e(format_stat(k, best.oos_stats.get(k), quote))}</td></tr>"
            for k in keys
        )
        out.append(
            '<table class="in-vs-out"><tr><th>winning set</th><th>in sample</th>'
            f"<th>out of sample</th></tr>{rows}</table>"
        )
    if res.overfit is not None:
        verdict = "likely overfit" if res.overfit else "holds out of sample"
        corr = res.oos_rank_correlation
        out.append(
            f'<p class="verdict"><b>{verdict}</b>'
            + ("" if corr is None else f" · rank correlation in/out of sample {corr:.2f}")
            + "</p>"
        )
    if res.folds:
        rows = "".join(
            f"<tr><td>{f.train_start} to {f.train_end}</td><td>{f.test_start} to {f.test_end}</td>"
            f"<td>{_e(_params(f.params))}</td><td>{_e(format_stat(res.metric, f.in_sample))}</td>"
            f"<td>{_e(format_stat(res.metric, f.out_of_sample))}</td><td>{f.oos_percentile:.0f} %</td></tr>"
            for f in res.folds
        )
        out.append(
            "<h3>Walk-forward</h3><table><tr><th>train candles</th><th>test candles</th>"
            "<th>chosen set</th><th>in sample</th><th>out of sample</th><th>beats</th></tr>"
            f"{rows}</table>"
        )
    out.extend(f"<p>{_e(n)}</p>" for n in res.notes)
    return "".join(out)


def render_optimize(
    res: OptimizeResult,
    best: BacktestResult,
    series: CandleSeries,
    heatmap: tuple[str, str] | None,
    top: int = 20,
    oos: float | None = None,
) -> str:
    """Ranking, winning parameters, heatmap, in- vs out-of-sample, and the winner's run."""
    quote = quote_currency(series.name)
    title = f"Optimisation · {res.strategy} on {', '.join(market_label(m) for m in res.markets)}"
    intro = (
        f'<dl class="head"><dt>Strategy</dt><dd class="strategy">{_e(res.strategy)}</dd>'
        f"<dt>Markets</dt><dd>{_e(', '.join(market_label(m) for m in res.markets))}</dd>"
        f"<dt>Ranked by</dt><dd>{_e(stat_label(res.metric))} ({_e(res.metric)})</dd>"
        f"<dt>Grid</dt><dd>{res.evaluated:,} parameter sets"
        + (f", {res.skipped:,} invalid ones skipped" if res.skipped else "")
        + "</dd></dl>"
    )
    winner = (
        f'<div class="winner"><b>Winning parameters:</b> <span class="parameters">'
        f"{_e(_params(best.params))}</span> · {_e(stat_label(res.metric))} "
        f"{_e(format_stat(res.metric, res.ranked[0].stats.get(res.metric), quote))}</div>"
    )
    n = len(series.candles)
    split = n - int(n * oos) if oos else None
    run = (
        f"<h2>The winning set on {_e(market_label(series.name))} {_e(best.timeframe)}</h2>"
        f"{header(best, series)}{charts(best, series, split)}"
        f"<h3>Statistics</h3>{_stats_tables(best.stats, quote)}"
    )
    body = (
        f"<h1>{_e(title)}</h1>{intro}{winner}"
        f"<h2>Ranking (top {min(top, len(res.ranked))})</h2>{_ranking(res, top, quote)}"
        f"<h2>Heatmap</h2>{_heatmap(res, heatmap)}"
        f"<h2>In sample and out of sample</h2>{_in_vs_out(res, quote)}{run}"
    )
    return _page(title, body)


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_report(result: BacktestResult, series: CandleSeries, path: str) -> None:
    """Write the report of one backtest to ``path``."""
    _write(path, render(result, series))


def write_batch_report(runs: Sequence[tuple[CandleSeries, BacktestResult]], path: str) -> None:
    """Write the report of a batch (one section per market) to ``path``."""
    _write(path, render_batch(runs))


def write_optimize_report(
    res: OptimizeResult,
    best: BacktestResult,
    series: CandleSeries,
    path: str,
    heatmap: tuple[str, str] | None = None,
    top: int = 20,
    oos: float | None = None,
) -> None:
    """Write the report of an optimisation to ``path``."""
    _write(path, render_optimize(res, best, series, heatmap, top, oos))
