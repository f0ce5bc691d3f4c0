"""Self-contained HTML report: stats, equity and drawdown chart (inline SVG), trade list.

No external assets (no CDN, no script): the file opens offline and can be attached or
stored as is.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from worker.backtest.api import BacktestResult

_W, _H_EQ, _H_DD, _PAD = 960, 280, 120, 48
_MAX_POINTS = 2000

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1f24}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.sub{color:#57606a;margin-bottom:16px}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:right}
th{background:#f6f8fa;position:sticky;top:0}td:first-child,th:first-child{text-align:left}
.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:0 24px}
.pos{color:#1a7f37}.neg{color:#cf222e}.trades{max-height:520px;overflow:auto;display:block}
svg text{font-size:11px;fill:#57606a}.warn{color:#9a6700}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e9):
            return f"{v:.6g}"
        return f"{v:,.4f}".rstrip("0").rstrip(".")
    return html.escape(str(v))


def _downsample(values: Sequence[float]) -> list[tuple[int, float]]:
    n = len(values)
    step = max(1, n // _MAX_POINTS)
    idx = list(range(0, n, step))
    if idx and idx[-1] != n - 1:
        idx.append(n - 1)
    return [(i, values[i]) for i in idx]


def _path(points: list[tuple[int, float]], n: int, lo: float, hi: float, h: int) -> str:
    span = (hi - lo) or 1.0
    xs = (_PAD + (_W - 2 * _PAD) * i / max(n - 1, 1) for i, _ in points)
    ys = (8 + (h - 16) * (1 - (v - lo) / span) for _, v in points)
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def _axis(lo: float, hi: float, h: int, unit: str = "") -> str:
    out = []
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        y = 8 + (h - 16) * (1 - k / 4)
        out.append(
            f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eaeef2"/>'
            f'<text x="{_PAD - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}{unit}</text>'
        )
    return "".join(out)


def equity_svg(result: BacktestResult) -> str:
    """Equity curve over a drawdown area chart, as inline SVG."""
    eq = [p["equity"] for p in result.equity]
    dd = [-p["drawdown"] for p in result.equity]
    if not eq:
        return "<p>No candles.</p>"
    n = len(eq)
    lo, hi = min(eq), max(eq)
    eq_line = _path(_downsample(eq), n, lo, hi, _H_EQ)
    dd_lo = min(min(dd), -1e-9)
    dd_pts = _downsample(dd)
    dd_line = _path(dd_pts, n, dd_lo, 0.0, _H_DD)
    x0, x1 = _PAD, _W - _PAD
    first, last = html.escape(result.equity[0]["time"]), html.escape(result.equity[-1]["time"])
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H_EQ}" '
        f'role="img" aria-label="equity">{_axis(lo, hi, _H_EQ)}'
        f'<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="{eq_line}"/>'
        f'<text x="{x0}" y="{_H_EQ - 0}">{first}</text>'
        f'<text x="{x1}" y="{_H_EQ - 0}" text-anchor="end">{last}</text></svg>'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H_DD}" '
        f'role="img" aria-label="drawdown">{_axis(dd_lo, 0.0, _H_DD, "%")}'
        f'<polygon fill="#cf222e33" stroke="#cf222e" stroke-width="1" '
        f'points="{x0},8 {dd_line} {x1},8"/></svg>'
    )


def _stats_tables(stats: dict[str, Any]) -> str:
    items = list(stats.items())
    half = (len(items) + 1) // 2
    cols = []
    for chunk in (items[:half], items[half:]):
        rows = "".join(
            f"<tr><td>{html.escape(k.replace('_', ' '))}</td><td>{_fmt(v)}</td></tr>"
            for k, v in chunk
        )
        cols.append(f"<table>{rows}</table>")
    return f'<div class="stats">{"".join(cols)}</div>'


def _trades_table(trades: list[dict[str, Any]]) -> str:
    if not trades:
        return "<p>No trades.</p>"
    keys = ["side", "entry_time", "exit_time", "entry_price", "exit_price", "amount", "pnl",
            "return_pct", "fees", "exit_reason"]  # fmt: skip
    head = "".join(f"<th>{k.replace('_', ' ')}</th>" for k in keys)
    body = []
    for i, t in enumerate(trades, 1):
        cls = "pos" if t["pnl"] > 0 else "neg" if t["pnl"] < 0 else ""
        cells = "".join(
            f'<td class="{cls}">{_fmt(t[k])}</td>' if k in ("pnl", "return_pct") else
            f"<td>{_fmt(t[k])}</td>"
            for k in keys
        )  # fmt: skip
        body.append(f"<tr><td>{i}</td>{cells}</tr>")
    return f'<table class="trades"><tr><th>#</th>{head}</tr>{"".join(body)}</table>'


def render(result: BacktestResult, title: str = "") -> str:
    """The whole report page as a string."""
    params = html.escape(", ".join(f"{k}={v}" for k, v in result.params.items()) or "defaults")
    s = result.settings
    sub = (
        f"{html.escape(result.timeframe)} · {html.escape(result.start_date)} → "
        f"{html.escape(result.end_date)} · fee {_fmt(s.fee)} · slippage {_fmt(s.slippage)} · "
        f"{'long and short' if s.shorts else 'long only'} · "
        + (f"stake {_fmt(s.stake_amount)}" if s.stake_amount else f"stake {_fmt(s.stake_fraction)} of equity")
    )  # fmt: skip
    gaps = ""
    if result.gaps:
        items = "".join(f"<li>{html.escape(g.describe())}</li>" for g in result.gaps[:50])
        more = f"<li>… {len(result.gaps) - 50} more</li>" if len(result.gaps) > 50 else ""
        gaps = (
            f'<h2 class="warn">Gaps in the candles ({len(result.gaps)})</h2><ul>{items}{more}</ul>'
        )
    name = html.escape(title or f"{result.strategy} ({params})")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Backtest · {name}</title><style>{_CSS}</style></head><body>"
        f'<h1>Backtest · {name}</h1><div class="sub">{sub}</div>'
        f"<h2>Equity and drawdown</h2>{equity_svg(result)}"
        f"<h2>Statistics</h2>{_stats_tables(result.stats)}{gaps}"
        f"<h2>Trades ({len(result.trades)})</h2>{_trades_table(result.trades)}"
        "</body></html>"
    )


def write_report(result: BacktestResult, path: str, title: str = "") -> None:
    """Write the report page to ``path``."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render(result, title))
