"""The HTML reports as a reader sees them, in headless Chromium.

Each report kind is rendered by the CLI, opened in Debian's chromium and checked for what
is visible: axis labels inside their charts, trade markers, the parameters, one section per
market. Screenshots are kept under the test's tmp folder (the path is printed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.support import browser
from worker.cli import main

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not browser.available(), reason="needs chromium and chromium-driver"),
]

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
ETH = str(DATA / "ETH_BTC-5m.csv")

# Every <text> of every chart, with its box and its chart's box (page coordinates).
_TEXT_BOXES = """
const out = [];
for (const svg of document.querySelectorAll('svg.chart, svg.heatmap')) {
  const s = svg.getBoundingClientRect();
  for (const t of svg.querySelectorAll('text')) {
    const b = t.getBoundingClientRect();
    out.push({chart: svg.getAttribute('aria-label'), text: t.textContent, cls: t.getAttribute('class'),
              left: b.left, right: b.right, top: b.top, bottom: b.bottom,
              sl: s.left, sr: s.right, st: s.top, sb: s.bottom});
  }
}
return out;
"""


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-screenshots")
    print(f"\nreport screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    with browser.chromium(1200, 1400) as d:
        yield d


def _open(driver: webdriver.Chrome, page: Path, shot: Path) -> None:
    driver.get(page.resolve().as_uri())
    driver.save_screenshot(str(shot))


def _assert_labels_inside(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    boxes: list[dict[str, Any]] = driver.execute_script(_TEXT_BOXES)
    assert boxes
    for b in boxes:
        inside = (
            b["left"] >= b["sl"] - 0.5
            and b["right"] <= b["sr"] + 0.5
            and b["top"] >= b["st"] - 0.5
            and b["bottom"] <= b["sb"] + 0.5
        )
        assert inside, f"label {b['text']!r} of the {b['chart']} chart is cut off: {b}"
    return boxes


def _text(driver: webdriver.Chrome, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def test_backtest_report(tmp_path: Path, shots: Path, driver: webdriver.Chrome) -> None:
    page = tmp_path / "backtest.html"
    assert main(["backtest", "--candles", ETH, "--strategy", "sma_cross", "--params",
                 '{"fast": 10, "slow": 20}', "--shorts", "--report", str(page)]) == 0  # fmt: skip
    _open(driver, page, shots / "backtest.png")
    assert _text(driver, "h1") == "Backtest · sma_cross on ETH/BTC 5m"
    assert _text(driver, "dd.parameters") == "fast=10, slow=20"
    assert _text(driver, "dd.market") == "ETH/BTC" and _text(driver, "dd.timeframe") == "5m"
    assert _text(driver, "dd.period").startswith("2018-01-10T04:55:00Z → 2018-01-30T04:50:00Z")
    boxes = _assert_labels_inside(driver)
    equity_labels = [b["text"] for b in boxes if b["chart"] == "equity and buy-and-hold"
                     and b["cls"] == "ylabel"]  # fmt: skip
    # whole numbers with their thousands, never a clipped tail such as "027.147"
    assert "10,000" in equity_labels
    trades = driver.find_elements(By.CSS_SELECTOR, "table.trades tr")[1:]
    entries = driver.find_elements(By.CSS_SELECTOR, "svg .marker.entry")
    exits = driver.find_elements(By.CSS_SELECTOR, "svg .marker.exit")
    assert len(entries) == len(exits) == len(trades) > 100
    assert {e.get_attribute("class") for e in entries} == {
        "marker entry long",
        "marker entry short",
    }
    assert all(e.rect["width"] > 0 for e in entries[:20])
    hold = driver.find_element(By.CSS_SELECTOR, "polyline.buy-and-hold")
    assert hold.is_displayed() and len(str(hold.get_attribute("points")).split()) > 1000


def test_optimize_report(tmp_path: Path, shots: Path, driver: webdriver.Chrome) -> None:
    page = tmp_path / "optimize.html"
    assert main(["optimize", "--candles", ETH, "--strategy", "sma_cross", "--oos", "0.3",
                 "--ranges", '{"fast": [5, 8, 10, 13], "slow": [20, 30, 40]}',
                 "--report", str(page)]) == 0  # fmt: skip
    _open(driver, page, shots / "optimize.png")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.ranking tr")[1:]
    assert len(rows) == 12
    first = [c.text for c in rows[0].find_elements(By.TAG_NAME, "td")]
    winner = _text(driver, ".winner .parameters")
    assert winner == f"fast={first[1]}, slow={first[2]}"
    cells = driver.find_elements(By.CSS_SELECTOR, "svg.heatmap rect.cell")
    assert len(cells) == 12
    best = driver.find_element(By.CSS_SELECTOR, "svg.heatmap rect.cell.best")
    assert f"fast={first[1]}, slow={first[2]}:" in str(
        best.find_element(By.TAG_NAME, "title").get_attribute("textContent")
    )
    head = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "table.in-vs-out th")]
    assert head == ["winning set", "in sample", "out of sample"]
    charts = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert any("out of sample →" in str(c.get_attribute("textContent")) for c in charts)
    _assert_labels_inside(driver)


def test_batch_report(tmp_path: Path, shots: Path, driver: webdriver.Chrome) -> None:
    page = tmp_path / "batch.html"
    files = [str(DATA / f"{m}-5m.csv") for m in ("ETH_BTC", "ADA_BTC", "LTC_BTC")]
    assert main(["backtest", "--batch", *files, "--strategy", "macd", "--report",
                 str(page)]) == 0  # fmt: skip
    _open(driver, page, shots / "batch.png")
    summary = driver.find_elements(By.CSS_SELECTOR, "table.summary tr")[1:]
    markets = [r.find_element(By.TAG_NAME, "td").text for r in summary]
    assert sorted(markets) == ["ADA/BTC", "ETH/BTC", "LTC/BTC"]
    sections = driver.find_elements(By.CSS_SELECTOR, "section.market")
    assert [s.find_element(By.TAG_NAME, "h2").text for s in sections] == [
        f"{m} 5m" for m in markets
    ]
    for s in sections:
        assert s.find_elements(By.CSS_SELECTOR, ".marker.entry")
        assert s.find_element(By.CSS_SELECTOR, "dd.parameters").text == "fast=12, slow=26, signal=9"
    _assert_labels_inside(driver)
