"""Report pages and their pieces: axis labels, statistics' units, time ranges, sections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from worker.backtest.api import run_backtest
from worker.backtest.optimize import optimize
from worker.backtest.report import render, render_batch, render_optimize
from worker.backtest.report_charts import nice_ticks, tick_labels
from worker.backtest.stats_format import format_stat, market_label, quote_currency
from worker.backtest.timerange import TimeRange
from worker.candles import load_csv

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"


@pytest.mark.parametrize(
    ("lo", "hi", "labels"),
    [
        (9_950.0, 10_027.147, ["9,940", "9,960", "9,980", "10,000", "10,020", "10,040"]),
        (0.0832, 0.1061, ["0.08", "0.09", "0.10", "0.11"]),
        (-52.3, 0.0, ["-60 %", "-40 %", "-20 %", "0 %"]),
        (
            0.00001234,
            0.00001301,
            ["0.0000122", "0.0000124", "0.0000126", "0.0000128", "0.0000130", "0.0000132"],
        ),
    ],
)
def test_axis_labels_are_round_and_whole(lo: float, hi: float, labels: list[str]) -> None:
    unit = " %" if hi == 0.0 else ""
    ticks = nice_ticks(lo, hi)
    assert ticks[0] <= lo and ticks[-1] >= hi
    assert tick_labels(ticks, unit) == labels


def test_statistics_carry_their_units() -> None:
    assert format_stat("final_balance", 10_027.147, "BTC") == "10,027.15 BTC"
    assert format_stat("max_drawdown", 12.3456) == "12.35 %"
    assert format_stat("total_trades", 1234) == "1,234"
    assert format_stat("max_drawdown_duration_bars", 5732) == "5,732 candles"
    assert format_stat("sharpe_ratio", None) == "-"
    assert (quote_currency("ETH_BTC-5m"), market_label("ETH_BTC-5m")) == ("BTC", "ETH/BTC")


def test_timerange_keeps_only_the_gaps_inside_it() -> None:
    ada = load_csv(DATA / "ADA_BTC-5m.csv")
    assert len(ada.gaps) == 5
    first, last = ada.gaps[0], ada.gaps[-1]
    part = TimeRange(first.before, last.after, "x").apply(ada)
    assert part.candles.time[0] == first.before and part.candles.time[-1] < last.after
    assert first not in part.gaps and last not in part.gaps
    assert len(part.gaps) == 3


def test_backtest_page_has_header_markers_and_buy_and_hold() -> None:
    series = load_csv(DATA / "ETH_BTC-5m.csv")
    res = run_backtest(series, "rsi", {"period": 10})
    page = render(res, series)
    assert '<dd class="parameters">period=10, oversold=30, overbought=70.0</dd>' in page
    assert '<dd class="market">ETH/BTC</dd>' in page and '<dd class="timeframe">5m</dd>' in page
    assert page.count('class="marker entry') == page.count('class="marker exit"') == len(res.trades)
    assert 'class="buy-and-hold"' in page
    assert set(re.findall(r"https?://[^\"' ]+", page)) <= {"http://www.w3.org/2000/svg"}


def test_batch_page_has_a_section_per_market() -> None:
    names = ("ETH_BTC-5m", "ADA_BTC-5m", "LTC_BTC-5m")
    runs = [(s, run_backtest(s, "macd")) for s in (load_csv(DATA / f"{n}.csv") for n in names)]
    page = render_batch(runs)
    assert re.findall(r'<section class="market" id="market-([^"]+)">', page) == list(names)
    summary = page[page.index('<table class="summary">') : page.index("</table>")]
    assert summary.count("<tr>") == 1 + len(names)


def test_optimize_page_names_the_winner_and_maps_the_grid() -> None:
    series = load_csv(DATA / "ETH_BTC-5m.csv")
    grid = {"fast": [5, 10], "slow": [20, 30, 40]}
    res = optimize([series], "sma_cross", grid, oos_fraction=0.3)
    best = run_backtest(series, "sma_cross", res.ranked[0].params)
    page = render_optimize(res, best, series, ("fast", "slow"), oos=0.3)
    win = res.ranked[0].params
    assert f'<span class="parameters">fast={win["fast"]}, slow={win["slow"]}</span>' in page
    assert page.count('<rect class="cell') == 6 and page.count('class="cell best"') == 1
    assert '<table class="in-vs-out">' in page and "out of sample →" in page
