"""CSV candles: gaps on the real files are reported, bad files rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.candles import CandleDataError, load_csv, timeframe_ms

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"


def test_real_file_with_gaps_reports_each_gap() -> None:
    s = load_csv(DATA / "ADA_BTC-5m.csv")
    assert s.timeframe == "5m"
    assert len(s.candles) == 5720
    assert len(s.gaps) == 5 and s.missing == 40
    # 5720 candles + 40 missing = the 5760 of a complete 20-day series
    assert len(s.candles) + s.missing == 5760
    first = s.gaps[0]
    assert first.describe() == (
        "1 candle(s) missing between 2018-01-15T10:05:00Z and 2018-01-15T10:15:00Z"
    )


def test_complete_file_has_no_gaps_and_one_minute_file_has_many() -> None:
    assert load_csv(DATA / "ETH_BTC-5m.csv").gaps == ()
    one_minute = load_csv(DATA / "XRP_ETH-1m.csv")
    assert one_minute.timeframe == "1m" and one_minute.missing == 1091


def test_timeframe_inferred_from_data_when_name_has_none(tmp_path: Path) -> None:
    f = tmp_path / "candles.csv"
    f.write_text(
        "date,open,high,low,close,volume\n"
        "2020-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
        "2020-01-01T01:00:00Z,1,2,0.5,1.5,10\n"
        "2020-01-01T02:00:00Z,1,2,0.5,1.5,10\n"
        "2020-01-01T05:00:00Z,1,2,0.5,1.5,10\n"
    )
    s = load_csv(f)
    assert s.timeframe == "1h" and s.missing == 2
    assert s.candles.close.tolist() == [1.5] * 4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("when,o,h,l,c,v\n", "header"),
        (
            "date,open,high,low,close,volume\n2020-01-01T00:05:00Z,1,1,1,1,1\n"
            "2020-01-01T00:00:00Z,1,1,1,1,1\n",
            "increase",
        ),
        ("date,open,high,low,close,volume\n2020-01-01T00:00:00Z,x,1,1,1,1\n", "numeric"),
    ],
)
def test_bad_files_are_rejected(tmp_path: Path, body: str, message: str) -> None:
    f = tmp_path / "bad-5m.csv"
    f.write_text(body)
    with pytest.raises(CandleDataError, match=message):
        load_csv(f)


def test_timeframe_parsing() -> None:
    assert timeframe_ms("5m") == 300_000 and timeframe_ms("1d") == 86_400_000
    with pytest.raises(ValueError, match="timeframe"):
        timeframe_ms("5x")
