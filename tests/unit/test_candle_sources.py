"""Timeframes, replayed and exchange candle sources, and the shared market windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from worker.candles import (
    TIMEFRAMES,
    Candle,
    ExchangeSource,
    MarketData,
    MarketWindow,
    ReplaySource,
    csv_name,
    timeframe_label,
    timeframe_ms,
    timeframe_seconds,
)
from worker.errors import Retryable

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
KEY = ("binance", "ETH/BTC", "5m")
T0 = datetime(2018, 1, 12, tzinfo=UTC)


def candle(at: datetime, close: str = "1") -> Candle:
    d = Decimal(close)
    return Candle(time=at, open=d, high=d, low=d, close=d, volume=Decimal(1))


def test_one_table_of_timeframes_for_bots_exchanges_and_files() -> None:
    assert [timeframe_seconds(tf) for tf in ("1m", "5m", "1h", "1d", "1w")] == [
        60,
        300,
        3600,
        86400,
        604800,
    ]
    for tf in TIMEFRAMES:
        assert timeframe_label(timeframe_ms(tf)) == tf
    # Recorded files may use any count of a unit; bots trade only the supported ones.
    assert timeframe_ms("7m") == 420_000
    with pytest.raises(ValueError, match="unknown timeframe"):
        timeframe_seconds("7m")


def test_recorded_file_names_follow_the_market() -> None:
    assert csv_name("ETH/BTC", "5m") == "ETH_BTC-5m.csv"
    assert csv_name("BTC/USDT:USDT", "1h") == "BTC_USDT-1h.csv"


async def test_replay_gives_only_candles_closed_by_the_time_asked() -> None:
    source = ReplaySource(DATA)
    first = source.first_open("ETH/BTC", "5m")
    assert first is not None
    until = first + timedelta(minutes=5 * 10)
    latest = await source.fetch_closed(KEY, None, until, 3)
    assert [c.time for c in latest] == [first + timedelta(minutes=5 * i) for i in (7, 8, 9)]
    newer = await source.fetch_closed(KEY, first + timedelta(minutes=40), until, 100)
    assert [c.time for c in newer] == [first + timedelta(minutes=m) for m in (40, 45)]
    assert isinstance(newer[0].close, Decimal)
    assert await source.fetch_closed(("binance", "NOPE/BTC", "5m"), None, until, 3) == []


class FakeClient:
    def __init__(self, rows: list[Candle], failures: int = 0) -> None:
        self.rows, self.failures, self.calls, self.closed = rows, failures, 0, False

    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Candle]:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise Retryable("busy", retry_after=0.0)
        return self.rows

    async def close(self) -> None:
        self.closed = True


async def test_exchange_source_connects_on_first_use_retries_and_drops_the_forming_candle() -> None:
    client = FakeClient([candle(T0), candle(T0 + timedelta(minutes=5))], failures=1)
    made: list[str] = []

    def connect(exchange: str) -> FakeClient:
        made.append(exchange)
        return client

    source = ExchangeSource(connect=connect)
    rows = await source.fetch_closed(KEY, None, T0 + timedelta(minutes=9), 10)
    assert [c.time for c in rows] == [T0]  # the second candle closes at 0:10
    assert made == ["binance"] and client.calls == 2
    await source.close()
    assert client.closed and source.clients == {}


def test_a_window_reports_gaps_and_keeps_its_size() -> None:
    w = MarketWindow(KEY, size=3)
    added, gaps = w.extend([candle(T0), candle(T0 + timedelta(minutes=5))])
    assert len(added) == 2 and gaps == []
    added, gaps = w.extend([candle(T0 + timedelta(minutes=5)), candle(T0 + timedelta(minutes=20))])
    assert [c.time for c in added] == [T0 + timedelta(minutes=20)]  # the repeat is skipped
    assert [(g.after, g.before, g.missing) for g in gaps] == [
        (T0 + timedelta(minutes=5), T0 + timedelta(minutes=20), 2)
    ]
    assert "2 candle(s) missing on binance ETH/BTC 5m" in gaps[0].describe()
    w.extend([candle(T0 + timedelta(minutes=25))])
    assert len(w.candles) == 3 and w.arrays().close.tolist() == [1.0, 1.0, 1.0]
    assert len(w.arrays_until(T0 + timedelta(minutes=20))) == 2
    assert [c.time for c in w.since(T0 + timedelta(minutes=20))] == [T0 + timedelta(minutes=25)]


async def test_market_data_fetches_each_market_once_per_close() -> None:
    source = ReplaySource(DATA)
    first = source.first_open("ETH/BTC", "5m")
    assert first is not None
    md = MarketData(source, window=50)
    until = first + timedelta(minutes=5 * 20)
    added, gaps = await md.refresh([KEY, KEY, KEY], until)
    assert md.fetches == 1 and len(added[KEY]) == 20 and gaps == []
    added, _ = await md.refresh([KEY], until + timedelta(minutes=5))
    assert md.fetches == 2 and [c.time for c in added[KEY]] == [until]
