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
    assert "gap:" in text and "sharpe_ratio" not in text
    # statistics are labelled, with their units
    assert re.search(r"Sharpe ratio\s+│\s+-?[\d.]+ │", text)
    assert re.search(r"Max\. drawdown\s+│\s+[\d.]+ % │", text)
    assert re.search(r"Final balance\s+│\s+[\d,.]+ BTC │", text)
    page = report.read_text()
    assert page.count("<svg") == 3 and "<polyline" in page
    assert "Gaps in the candles (5)" in page
    # nothing is loaded from elsewhere: the only URL is the SVG namespace
    assert set(re.findall(r"https?://[^\"' ]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert "<script" not in page


def test_batch_runs_every_market(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["backtest", "--batch", str(DATA / "*-5m.csv"), "--strategy", "macd", "--json"])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 12
    assert {r["market"] for r in rows} >= {"ETH_BTC-5m", "ZEC_BTC-5m", "SOL_USDT-5m"}
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
        (["--strategy", "nope"], "unknown strategy 'nope'"),
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


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_a_folder_as_candles_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--candles", str(DATA), "--strategy", "rsi"]) == 2
    line = _err_line(capsys)
    assert f"'{DATA}' is a folder, not a candle file" in line and "--batch" in line


def test_a_missing_candle_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.csv"
    assert main(["backtest", "--candles", str(missing), "--strategy", "rsi"]) == 2
    assert _err_line(capsys) == f"tradefleet backtest: error: --candles: no such file '{missing}'"


def test_a_binary_candle_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 4)
    assert main(["backtest", "--candles", str(junk), "--strategy", "rsi"]) == 2
    assert "is not a text CSV file" in _err_line(capsys)


@pytest.mark.parametrize("command", ["backtest", "optimize"])
def test_report_into_a_missing_folder_fails_before_the_work(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "no-such-folder" / "r.html"
    rc = main([command, "--candles", ETH, "--strategy", "sma_cross", "--report", str(out)])
    assert rc == 2
    line = _err_line(capsys)
    assert line == (
        f"tradefleet {command}: error: --report: cannot write '{out}': "
        f"folder '{out.parent}' does not exist"
    )
    assert capsys.readouterr().out == ""  # nothing was computed or printed


def test_report_into_a_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["backtest", "--candles", ETH, "--strategy", "rsi", "--report", str(tmp_path)])
    assert rc == 2
    assert "is a folder; give a file name" in _err_line(capsys)


@pytest.mark.parametrize(
    ("timerange", "message"),
    [
        ("2018-01-10", "is not a time range (expected YYYYMMDD-YYYYMMDD, YYYYMMDD- or -YYYYMMDD)"),
        ("20180132-", "20180132 is not a date (YYYYMMDD)"),
        ("20180120-20180110", "the start must be before the end"),
        ("-", "is not a time range"),
    ],
)
def test_bad_timerange_is_one_line(
    timerange: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["backtest", "--candles", ETH, "--strategy", "rsi", "--timerange", timerange])
    assert exit_.value.code == 2
    line = _err_line(capsys)
    assert line.startswith("tradefleet backtest: error: argument --timerange:")
    assert message in line


def test_timerange_outside_the_candles_names_what_the_file_covers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(["backtest", "--candles", ETH, "--strategy", "rsi", "--timerange", "20190101-"])
    assert rc == 2
    line = _err_line(capsys)
    assert "fewer than 2 candles in --timerange 20190101-" in line
    assert "2018-01-10T04:55:00Z to 2018-01-30T04:50:00Z" in line


@pytest.mark.parametrize(
    ("timerange", "start", "end"),
    [
        ("20180115-20180120", "2018-01-15T00:00:00Z", "2018-01-19T23:55:00Z"),
        ("20180125-", "2018-01-25T00:00:00Z", "2018-01-30T04:50:00Z"),
        ("-20180112", "2018-01-10T04:55:00Z", "2018-01-11T23:55:00Z"),
    ],
)
def test_timerange_runs_on_those_days_only(
    timerange: str, start: str, end: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["backtest", "--candles", ETH, "--strategy", "sma_cross", "--timerange", timerange,
               "--json"])  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["start_date"], out["end_date"]) == (start, end)
    assert out["equity"][0]["time"] == start and out["equity"][-1]["time"] == end


def test_optimize_honours_timerange(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["optimize", "--candles", ETH, "--strategy", "sma_cross", "--json"]
    assert main(args) == 0
    whole = json.loads(capsys.readouterr().out)
    assert main([*args, "--timerange", "20180120-"]) == 0
    part = json.loads(capsys.readouterr().out)
    assert (
        part["results"][0]["stats"]["total_trades"] < whole["results"][0]["stats"]["total_trades"]
    )


def test_heatmap_names_must_be_in_the_grid(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["optimize", "--candles", ETH, "--strategy", "sma_cross", "--heatmap", "fast,nope"])
    assert rc == 2
    assert "--heatmap: 'nope' is not in the grid (grid parameters: fast, slow)" in _err_line(capsys)
