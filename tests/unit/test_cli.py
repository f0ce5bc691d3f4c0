"""The ``tradefleet`` command's manners: help, version, strategies, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from worker.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
# Nothing listens on port 1: connections are refused at once.
UNREACHABLE = "postgresql://postgres:s3cret@127.0.0.1:1/postgres"


def _help(*command: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    return ""


def test_top_level_help_says_what_tradefleet_is(capsys: pytest.CaptureFixture[str]) -> None:
    _help()
    text = capsys.readouterr().out
    assert "Tradefleet runs the trading side of a Supabase-backed platform" in text
    assert "``" not in text and "composition root" not in text
    assert "DATABASE_URL" in text
    for command in ("worker", "backtest", "optimize", "strategies", "summary", "demo", "keys"):
        assert f"    {command} " in text
    assert "--version" in text and "--log-level" in text and "-v, --verbose" in text


def test_backtest_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    _help("backtest")
    text = " ".join(capsys.readouterr().out.split())
    assert "fee per fill, fraction of notional (default: 0.001)" in text
    assert "initial balance, quote currency (default: 10000.0)" in text
    assert "--timerange RANGE" in text and "YYYYMMDD- or -YYYYMMDD" in text


@pytest.mark.parametrize("command", [["worker"], ["summary"], ["demo"], ["keys", "rotate"]])
def test_database_commands_explain_themselves(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _help(*command)
    text = " ".join(capsys.readouterr().out.split())
    assert "DATABASE_URL" in text
    if command != ["worker"]:
        assert "--database-url DATABASE_URL PostgreSQL URL of the" in text


def test_every_option_has_help() -> None:
    parser = build_parser()
    todo = [parser]
    while todo:
        p = todo.pop()
        for action in p._actions:
            if action.choices and isinstance(action.choices, dict):
                todo.extend(action.choices.values())
            elif action.option_strings:
                assert action.help, f"{p.prog} {action.option_strings} has no help"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == "tradefleet 0.1.0"


def test_strategies_lists_parameters_defaults_and_ranges(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["strategies", "--json"]) == 0
    found = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert set(found) == {"bollinger", "ema_cross", "macd", "rsi", "rsi_macd", "rules", "sma_cross"}
    period = next(p for p in found["rsi"]["parameters"] if p["name"] == "period")
    assert period == {
        "name": "period",
        "type": "int",
        "default": 14,
        "range": {"ge": 2, "le": 1000},
        "description": "RSI period, in candles",
    }
    stop = next(p for p in found["rsi"]["parameters"] if p["name"] == "stop_loss")
    assert stop["default"] is None and stop["range"] == {"gt": 0, "lt": 1}
    assert main(["strategies", "bollinger"]) == 0
    text = capsys.readouterr().out
    assert "bollinger · Bollinger-band mean reversion" in text
    assert "2 ≤ x ≤ 1000" in text and "0 < x ≤ 10" in text and "sma_cross" not in text


def test_summary_against_an_unreachable_database_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    assert main(["summary", "--database-url", UNREACHABLE]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "tradefleet summary: error: cannot reach the database at 127.0.0.1:1/postgres "
        "after 3 tries: "
    )
    assert "s3cret" not in err
    assert time.monotonic() - started < 20  # bounded: 3 tries, 1 s apart


def test_worker_against_an_unreachable_database_is_one_line() -> None:
    env = {**os.environ, "DATABASE_URL": UNREACHABLE}
    proc = subprocess.run(
        [sys.executable, "-m", "worker.cli", "worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(
        "tradefleet worker: error: cannot reach the database at 127.0.0.1:1/postgres after 3 tries"
    ), proc.stderr
