"""Inline SVG charts for the HTML reports: price with trades, equity, drawdown, heatmap.

Each chart sizes its left margin from its widest y-axis label, so labels such as
``10,027.15`` are never cut off, and picks round tick values (1, 2 or 5 x 10^k).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

WIDTH = 960
_CHAR_W = 7.0  # px per character of an 11px label, on the generous side
_MAX_POINTS = 2000
GREEN, RED, BLUE, GREY = "#1a7f37", "#cf222e", "#0969da", "#8c959f"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round values covering ``lo..hi``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi - lo <= abs(hi) * 1e-12:
        pad = abs(hi) * 0.01 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    v = first
    while v < hi + step * 0.999:
        ticks.append(round(v, 12))
        v += step
    return ticks


def tick_labels(ticks: Sequence[float], unit: str = "") -> list[str]:
    """Labels with thousands separators and as many decimals as the step needs."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step)))
    while decimals < 15 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    return [f"{v:,.{decimals}f}{unit}" for v in ticks]


def _date_label(ms: int, span_ms: int) -> str:
    d = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return d.strftime("%Y-%m-%d %H:%M" if span_ms < 4 * 86_400_000 else "%Y-%m-%d")


def downsample(n: int) -> list[int]:
    """At most about ``_MAX_POINTS`` indexes of ``0..n-1``, always with the last one."""
    step = max(1, n // _MAX_POINTS)
    idx = list(range(0, n, step))
    if idx and idx[-1] != n - 1:
        idx.append(n - 1)
    return idx


@dataclass
class Chart:
    """A chart over candle indexes ``0..n-1`` (x) and values ``lo..hi`` (y)."""

    label: str
    times: Sequence[int] | np.ndarray  # candle open times, ms
    lo: float
    hi: float
    height: int = 260
    unit: str = ""
    width: int = WIDTH
    ticks: list[float] = field(init=False)
    labels: list[str] = field(init=False)
    left: float = field(init=False)
    top: float = 12.0
    bottom: float = 26.0
    right: float = 18.0

    def __post_init__(self) -> None:
        self.ticks = nice_ticks(self.lo, self.hi)
        self.lo, self.hi = min(self.lo, self.ticks[0]), max(self.hi, self.ticks[-1])
        self.labels = tick_labels(self.ticks, self.unit)
        self.left = 14 + _CHAR_W * max(len(s) for s in self.labels)

    def x(self, i: float) -> float:
        n = max(len(self.times) - 1, 1)
        return self.left + (self.width - self.left - self.right) * i / n

    def y(self, v: float) -> float:
        span = (self.hi - self.lo) or 1.0
        return self.top + (self.height - self.top - self.bottom) * (1 - (v - self.lo) / span)

    def points(self, values: Sequence[float] | np.ndarray) -> str:
        return " ".join(
            f"{self.x(i):.1f},{self.y(float(values[i])):.1f}" for i in downsample(len(values))
        )

    def line(
        self, values: Sequence[float] | np.ndarray, color: str, cls: str, width: float = 1.5
    ) -> str:
        return (
            f'<polyline class="{cls}" fill="none" stroke="{color}" stroke-width="{width}" '
            f'points="{self.points(values)}"/>'
        )

    def _axes(self) -> str:
        out = []
        x0, x1 = self.left, self.width - self.right
        for v, text in zip(self.ticks, self.labels, strict=True):
            y = self.y(v)
            out.append(
                f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eaeef2"/>'
                f'<text class="ylabel" x="{x0 - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{text}</text>'
            )
        n = len(self.times)
        if n:
            span = int(self.times[-1] - self.times[0])
            marks = sorted({round(k * (n - 1) / 4) for k in range(5)})
            for j, i in enumerate(marks):
                anchor = "start" if j == 0 else "end" if j == len(marks) - 1 else "middle"
                out.append(
                    f'<text class="xlabel" x="{self.x(i):.1f}" y="{self.height - 8}" '
                    f'text-anchor="{anchor}">{_date_label(int(self.times[i]), span)}</text>'
                )
        return "".join(out)

    def legend(self, items: Sequence[tuple[str, str]]) -> str:
        out, x = [], self.left + 8
        for color, text in items:
            out.append(
                f'<rect x="{x:.1f}" y="{self.top + 2:.1f}" width="10" height="10" fill="{color}"/>'
                f'<text class="legend" x="{x + 14:.1f}" y="{self.top + 11:.1f}">{html.escape(text)}</text>'
            )
            x += 28 + _CHAR_W * len(text)
        return "".join(out)

    def svg(self, body: str) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{self.width}" '
            f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" role="img" '
            f'aria-label="{html.escape(self.label)}">{self._axes()}{body}</svg>'
        )


def _index_of(times: np.ndarray, iso_time: str) -> int:
    ms = int(
        datetime.strptime(iso_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() * 1000
    )
    return int(np.searchsorted(times, ms))


def price_svg(times: np.ndarray, close: np.ndarray, trades: Sequence[dict[str, Any]]) -> str:
    """Close prices with a marker at every entry (triangle) and exit (circle)."""
    if len(close) == 0:
        return "<p>No candles.</p>"
    prices = [t["entry_price"] for t in trades] + [t["exit_price"] for t in trades]
    lo, hi = float(min(close.min(), *prices)), float(max(close.max(), *prices))
    chart = Chart("price with entries and exits", times, lo, hi, height=300)
    marks = []
    for t in trades:
        i, j = _index_of(times, t["entry_time"]), _index_of(times, t["exit_time"])
        x, y = chart.x(i), chart.y(t["entry_price"])
        long = t["side"] == "long"
        tip = html.escape(f"{t['side']} entry {t['entry_time']} at {t['entry_price']:g}")
        if long:  # a triangle pointing up, under the price
            shape = f"{x:.1f},{y + 1:.1f} {x - 5:.1f},{y + 10:.1f} {x + 5:.1f},{y + 10:.1f}"
        else:  # pointing down, over the price
            shape = f"{x:.1f},{y - 1:.1f} {x - 5:.1f},{y - 10:.1f} {x + 5:.1f},{y - 10:.1f}"
        marks.append(
            f'<polygon class="marker entry {t["side"]}" fill="{GREEN if long else RED}" '
            f'points="{shape}"><title>{tip}</title></polygon>'
        )
        tip = html.escape(f"exit {t['exit_time']} at {t['exit_price']:g}: {t['exit_reason']}")
        marks.append(
            f'<circle class="marker exit" cx="{chart.x(j):.1f}" cy="{chart.y(t["exit_price"]):.1f}" '
            f'r="3.5" fill="#fff" stroke="#1b1f24" stroke-width="1.2"><title>{tip}</title></circle>'
        )
    legend = chart.legend(
        [(BLUE, "close"), (GREEN, "long entry"), (RED, "short entry"), ("#1b1f24", "exit")]
    )
    return chart.svg(chart.line(close, BLUE, "price", 1.2) + "".join(marks) + legend)


def equity_svg(
    times: np.ndarray,
    equity: np.ndarray,
    buy_and_hold: np.ndarray,
    split: int | None = None,
) -> str:
    """Equity against holding the market over the same candles; ``split`` marks out-of-sample."""
    if len(equity) == 0:
        return ""
    lo = float(min(equity.min(), buy_and_hold.min()))
    hi = float(max(equity.max(), buy_and_hold.max()))
    chart = Chart("equity and buy-and-hold", times, lo, hi)
    body = chart.line(buy_and_hold, GREY, "buy-and-hold", 1.2) + chart.line(equity, BLUE, "equity")
    if split is not None and 0 < split < len(times):
        x = chart.x(split)
        body += (
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{chart.top}" y2="{chart.height - chart.bottom}" '
            f'stroke="#9a6700" stroke-dasharray="4 3"/>'
            f'<text class="legend" x="{x + 4:.1f}" y="{chart.height - chart.bottom - 6:.1f}">'
            "out of sample →</text>"
        )
    return chart.svg(body + chart.legend([(BLUE, "equity"), (GREY, "buy and hold")]))


def drawdown_svg(times: np.ndarray, drawdown_pct: np.ndarray) -> str:
    """Drawdown below the running peak, in % (drawn downwards)."""
    if len(drawdown_pct) == 0:
        return ""
    dd = -drawdown_pct
    chart = Chart("drawdown", times, min(float(dd.min()), -0.01), 0.0, height=140, unit=" %")
    x0, x1, y0 = chart.x(0), chart.x(len(dd) - 1), chart.y(0.0)
    area = f"{x0:.1f},{y0:.1f} {chart.points(dd)} {x1:.1f},{y0:.1f}"
    return chart.svg(
        f'<polygon class="drawdown" fill="#cf222e33" stroke="{RED}" stroke-width="1" points="{area}"/>'
    )


def _cell_color(t: float) -> str:
    """White (worst) to green (best) for ``t`` in 0..1."""
    r, g, b = (int(255 + (c - 255) * t) for c in (26, 127, 55))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap_svg(
    x_name: str,
    y_name: str,
    cells: dict[tuple[Any, Any], float | None],
    metric: str,
    best: tuple[Any, Any] | None,
    higher_is_better: bool = True,
) -> str:
    """``metric`` for each (x, y) pair (best over the other parameters), the winner outlined."""
    xs = sorted({k[0] for k in cells})
    ys = sorted({k[1] for k in cells})
    vals = [v for v in cells.values() if v is not None and math.isfinite(v)]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    y_labels = [f"{v:g}" for v in ys]
    left = 40 + _CHAR_W * max(len(s) for s in y_labels)
    cw = max(18.0, min(60.0, (WIDTH - left - 20) / len(xs)))
    ch = max(16.0, min(30.0, 420 / len(ys)))
    width = left + cw * len(xs) + 20
    height = 16 + ch * len(ys) + 50
    out = []
    show_values = len(xs) <= 16 and len(ys) <= 20
    for (xv, yv), v in cells.items():
        x, y = left + cw * xs.index(xv), 16 + ch * (len(ys) - 1 - ys.index(yv))
        if v is None or not math.isfinite(v):
            fill = "#f6f8fa"
        else:
            t = (v - lo) / ((hi - lo) or 1.0)
            fill = _cell_color(t if higher_is_better else 1 - t)
        win = best == (xv, yv)
        stroke = ' stroke="#1b1f24" stroke-width="2.5"' if win else ' stroke="#fff"'
        tip = html.escape(
            f"{x_name}={xv}, {y_name}={yv}: {metric} {'-' if v is None else f'{v:.4g}'}"
        )
        out.append(
            f'<rect class="cell{" best" if win else ""}" x="{x:.1f}" y="{y:.1f}" width="{cw:.1f}" '
            f'height="{ch:.1f}" fill="{fill}"{stroke}><title>{tip}</title></rect>'
        )
        if show_values and v is not None and math.isfinite(v):
            out.append(
                f'<text class="cellvalue" x="{x + cw / 2:.1f}" y="{y + ch / 2 + 4:.1f}" '
                f'text-anchor="middle">{v:.2g}</text>'
            )
    for i, xv in enumerate(xs):
        if len(xs) <= 30 or i % math.ceil(len(xs) / 30) == 0:
            out.append(
                f'<text class="xlabel" x="{left + cw * (i + 0.5):.1f}" y="{16 + ch * len(ys) + 16:.1f}" '
                f'text-anchor="middle">{xv:g}</text>'
            )
    for i, label in enumerate(y_labels):
        y = 16 + ch * (len(ys) - 1 - i) + ch / 2 + 4
        out.append(
            f'<text class="ylabel" x="{left - 6:.1f}" y="{y:.1f}" text-anchor="end">{label}</text>'
        )
    out.append(
        f'<text class="axis-title" x="{left + cw * len(xs) / 2:.1f}" y="{height - 6:.1f}" '
        f'text-anchor="middle">{html.escape(x_name)}</text>'
        f'<text class="axis-title" x="14" y="{16 + ch * len(ys) / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {16 + ch * len(ys) / 2:.1f})">{html.escape(y_name)}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{html.escape(metric)} by {html.escape(x_name)} and {html.escape(y_name)}">'
        f"{''.join(out)}</svg>"
    )
