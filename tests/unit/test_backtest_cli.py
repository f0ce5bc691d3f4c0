"""`tradefleet backtest` / `tradefleet optimize` as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from worker.cli import main

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
ETH = str(DATA / "ETH_BTC-5m.csv")
SMA = '{"fast": 10, "slow": 20}'


def test_backtest_json_has_stats_trades_and_equity(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["backtest", "--candles", ETH, "--strategy", "sma_cross", "--params", SMA,
               "--shorts", "--fee", "0.002", "--json"])  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stats"]["total_trades"] == len(out["trades"]) > 100
    trade = out["trades"][0]
    for key in ("side", "entry_time", "exit_time", "entry_price", "exit_price", "amount",
                "pnl", "return_pct"):  # fmt: skip
        assert key in trade
    assert {t["side"] for t in out["trades"]} == {"long", "short"}
    assert len(out["equity"]) == 5760
    assert out["settings"]["fee"] == 0.002


def test_backtest_table_and_self_contained_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "out.html"
    ada = str(DATA / "ADA_BTC-5m.csv")
    rc = main(["backtest", "--candles", ada, "--strategy", "rsi", "--report", str(report),
               "--cash", "500", "--stake-fraction", "0.5", "--slippage", "0.001"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "sharpe_ratio" in text and "gap:" in text
    page = report.read_text()
    assert page.count("<svg") == 2 and "<polyline" in page
    assert "Gaps in the candles (5)" in page
    # nothing is loaded from elsewhere: the only URL is the SVG namespace
    assert set(re.findall(r"https?://[^\"' ]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert "<script" not in page


def test_batch_runs_every_market(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["backtest", "--batch", str(DATA / "*-5m.csv"), "--strategy", "macd", "--json"])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 11
    assert {r["market"] for r in rows} >= {"ETH_BTC-5m", "ZEC_BTC-5m"}
    assert all(r["stats"]["total_trades"] > 0 for r in rows)


def test_optimize_ranks_the_30_percent_grid(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["optimize", "--candles", ETH, "--strategy", "sma_cross", "--params", SMA,
               "--metric", "total_return_percentage", "--top", "5", "--oos", "0.3",
               "--json"])  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["evaluated"] == 7 * 13  # fast 7..13, slow 14..26
    returns = [r["stats"]["total_return_percentage"] for r in out["results"]]
    assert returns == sorted(returns, reverse=True) and len(returns) == 5
    assert out["results"][0]["oos_stats"] is not None
    assert isinstance(out["overfit"], bool)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "sma_cross", "--params", '{"fast": 30, "slow": 10}'], "'slow'"),
        (["--strategy", "nope"], "unknown strategy"),
        (["--strategy", "rsi", "--fee", "-0.1"], "'fee'"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "--candles", ETH, *args]) == 2
    assert message in capsys.readouterr().err


def test_missing_file_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--batch", "/nonexistent/*.csv", "--strategy", "rsi"]) == 2
    assert "no candle file" in capsys.readouterr().err
