"""``tradefleet data download`` from the other venues' fakes over HTTP (Binance's own test:
``test_data_download.py``): each fake serves its exchange's documented klines endpoint and
answer, ccxt's ``fetch_ohlcv`` parses it, and the download stores every candle, reports
the exchange's gaps, resumes, steps over empty windows of several pages (a halted market,
a listing later than ``--since``) and names a timeframe the venue does not offer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.fakes.fake_bitget import FakeBitget
from tests.fakes.fake_bybit import FakeBybit
from tests.fakes.fake_kraken import FakeKraken
from tests.fakes.fake_mexc import FakeMexc
from tests.fakes.fake_okx import FakeOkx
from tests.fakes.fake_venue import FakeVenue
from worker.cli import build_parser
from worker.data.cli import _run
from worker.data.download import WINDOWED_EXCHANGES
from worker.errors import Fatal

START = datetime(2024, 1, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
MINUTE = 60_000


@dataclass(frozen=True)
class KlineVenue:
    fake: type[FakeVenue]
    exchange_id: str
    instrument: str  # the exchange's id of BTC/USDT
    klines_path: str
    start: Callable[[dict[str, Any]], int]  # a request's first open time asked for
    unoffered: str  # a timeframe the exchange does not offer


VENUES = [
    KlineVenue(FakeBybit, "bybit", "BTCUSDT", "/v5/market/kline", lambda p: int(p["start"]), "7m"),
    KlineVenue(FakeMexc, "mexc", "BTCUSDT", "/api/v3/klines", lambda p: int(p["startTime"]), "3m"),
    # OKX pages by exclusive bounds: ``before`` is the millisecond ahead of the first candle.
    KlineVenue(
        FakeOkx,
        "okx",
        "BTC-USDT",
        "/api/v5/market/history-candles",
        lambda p: int(p["before"]) + 1,
        "7m",
    ),
    KlineVenue(
        FakeBitget,
        "bitget",
        "BTCUSDT",
        "/api/v2/spot/market/history-candles",
        lambda p: int(p["startTime"]),
        "7m",
    ),
]


@pytest.fixture(params=VENUES, ids=lambda v: v.exchange_id)
async def venue(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[KlineVenue, FakeVenue]]:
    spec: KlineVenue = request.param
    async with spec.fake() as fake:
        # 2,500 one-minute candles from 2024-01-01, two of them missing on the exchange.
        fake.history[(spec.instrument, MINUTE)] = (START_MS, 2500)
        fake.missing = {START_MS + 1200 * MINUTE, START_MS + 1201 * MINUTE}
        monkeypatch.setenv("TRADEFLEET_EXCHANGE_URLS", f"{spec.exchange_id}={fake.url}")
        yield spec, fake


def args(*argv: str) -> Any:
    return build_parser().parse_args(["data", "download", "--no-progress", *argv])


def until(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def kline_starts(spec: KlineVenue, fake: FakeVenue) -> list[int]:
    return [spec.start(r.params) for r in fake.calls("GET", spec.klines_path)]


async def test_a_venue_download_stores_every_candle_reports_gaps_and_resumes(
    venue: tuple[KlineVenue, FakeVenue],
    conn: psycopg.AsyncConnection[Any],
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, fake = venue
    base = ["--exchange", spec.exchange_id, "--pairs", "BTC/USDT", "--timeframes", "1m"]
    base += ["--since", "2024-01-01", "--database-url", db_url]
    assert await _run(args(*base, "--until", until(2500))) == 0
    cur = await conn.execute(
        "select open_time, open, close from public.candles"
        " where exchange = %s and symbol = 'BTC/USDT' and timeframe = '1m' order by open_time",
        (spec.exchange_id,),
    )
    rows = await cur.fetchall()
    assert len(rows) == 2498
    assert rows[0] == (START, Decimal("40001.1"), Decimal("40002.25"))
    assert rows[-1][0] == START + timedelta(minutes=2499)
    out = capsys.readouterr().out
    assert f"BTC/USDT 1m: 2498 candles 2024-01-01T00:00:00Z .. {until(2499)[:19]}Z" in out
    assert "gap: 2 candle(s) missing between 2024-01-01T19:59:00Z and 2024-01-01T20:02:00Z" in out

    # The exchange gets 500 newer candles; a second run asks only for those.
    fake.history[(spec.instrument, MINUTE)] = (START_MS, 3000)
    fake.requests.clear()
    await _run(args(*base, "--until", until(3000)))
    assert kline_starts(spec, fake)[0] == START_MS + 2500 * MINUTE
    count = await conn.execute(
        "select count(*) from public.candles where exchange = %s", (spec.exchange_id,)
    )
    assert await count.fetchone() == (2998,)
    assert "resumed after 2024-01-02T17:39:00Z" in capsys.readouterr().out


async def test_a_timeframe_the_venue_does_not_offer_is_named(
    venue: tuple[KlineVenue, FakeVenue], db_url: str
) -> None:
    spec, fake = venue
    with pytest.raises(
        Fatal, match=f"{spec.exchange_id} does not offer timeframe '{spec.unoffered}'"
    ):
        await _run(
            args(
                "--exchange", spec.exchange_id, "--pairs", "BTC/USDT",
                "--timeframes", spec.unoffered, "--since", "2024-01-01", "--database-url", db_url,
            )
        )  # fmt: skip
    assert kline_starts(spec, fake) == []


async def test_kraken_serves_only_its_newest_720_candles_and_the_rest_is_a_gap(
    conn: psycopg.AsyncConnection[Any],
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Kraken's OHLC endpoint has only the newest 720 candles of a market.
    async with FakeKraken() as fake:
        fake.history[("XBTUSDT", MINUTE)] = (START_MS, 2500)
        monkeypatch.setenv("TRADEFLEET_EXCHANGE_URLS", f"kraken={fake.url}")
        base = ["--exchange", "kraken", "--pairs", "BTC/USDT", "--timeframes", "1m"]
        base += ["--since", "2024-01-01", "--database-url", db_url]
        assert await _run(args(*base, "--until", until(2500))) == 0
        cur = await conn.execute(
            "select min(open_time), max(open_time), count(*) from public.candles"
            " where exchange = 'kraken' and symbol = 'BTC/USDT' and timeframe = '1m'"
        )
        assert await cur.fetchone() == (
            START + timedelta(minutes=1780),
            START + timedelta(minutes=2499),
            720,
        )
        out = capsys.readouterr().out
        assert "BTC/USDT 1m: 720 candles 2024-01-02T05:40:00Z .. 2024-01-02T17:39:00Z" in out
        assert "gap: 1780 candle(s) missing" in out

        with pytest.raises(Fatal, match="kraken does not offer timeframe '3m'"):
            await _run(args(*base[:4], "--timeframes", "3m", *base[6:]))


def t(minutes: int) -> str:
    return f"{(START + timedelta(minutes=minutes)).isoformat()[:19]}Z"


async def stored_minutes(conn: psycopg.AsyncConnection[Any], exchange: str) -> list[int]:
    cur = await conn.execute(
        "select open_time, open, close from public.candles"
        " where exchange = %s and symbol = 'BTC/USDT' and timeframe = '1m' order by open_time",
        (exchange,),
    )
    out = []
    for at, o, c in await cur.fetchall():
        i = int((at - START).total_seconds()) // 60
        # The fakes' generated prices: every candle stored exactly as the venue served it.
        assert (o, c) == (
            Decimal(f"{40000 + (i + 1) % 997}.1"),
            Decimal(f"{40001 + (i + 1) % 997}.25"),
        )
        out.append(i)
    return out


async def test_an_empty_window_of_several_pages_in_the_middle_is_stepped_over_once(
    venue: tuple[KlineVenue, FakeVenue],
    conn: psycopg.AsyncConnection[Any],
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A market halted for 2,500 minutes (more than two pages on every venue, twelve on
    # Bitget) between candles 1,099 and 3,600 of 5,000.
    spec, fake = venue
    fake.history[(spec.instrument, MINUTE)] = (START_MS, 5000)
    fake.missing = {START_MS + i * MINUTE for i in range(1100, 3600)}
    base = ["--exchange", spec.exchange_id, "--pairs", "BTC/USDT", "--timeframes", "1m"]
    base += ["--since", "2024-01-01", "--database-url", db_url]

    # Interrupted inside the halt: the candles before it, the rest of the period a gap.
    assert await _run(args(*base, "--until", until(2000))) == 0
    assert await stored_minutes(conn, spec.exchange_id) == list(range(1100))
    out = capsys.readouterr().out
    assert f"gap: 900 candle(s) missing between {t(1099)} and {t(2000)}" in out

    # Run again to the end: resumed after the last candle stored, across the halt.
    fake.requests.clear()
    assert await _run(args(*base, "--until", until(5000))) == 0
    assert kline_starts(spec, fake)[0] == START_MS + 1100 * MINUTE
    expected = [*range(1100), *range(3600, 5000)]
    assert await stored_minutes(conn, spec.exchange_id) == expected
    out = capsys.readouterr().out
    assert f"BTC/USDT 1m: 1400 candles {t(3600)} .. {t(4999)} (resumed after {t(1099)})" in out
    assert out.count("gap:") == 1
    assert f"gap: 2500 candle(s) missing between {t(1099)} and {t(3600)}" in out


async def test_a_listing_later_than_since_is_one_gap_at_the_start(
    venue: tuple[KlineVenue, FakeVenue],
    conn: psycopg.AsyncConnection[Any],
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The market's first 2,500 minutes of the period are empty (it was listed later).
    spec, fake = venue
    fake.history[(spec.instrument, MINUTE)] = (START_MS, 4000)
    fake.missing = {START_MS + i * MINUTE for i in range(2500)}
    base = ["--exchange", spec.exchange_id, "--pairs", "BTC/USDT", "--timeframes", "1m"]
    base += ["--since", "2024-01-01", "--database-url", db_url]
    assert await _run(args(*base, "--until", until(4000))) == 0
    assert await stored_minutes(conn, spec.exchange_id) == list(range(2500, 4000))
    out = capsys.readouterr().out
    assert f"BTC/USDT 1m: 1500 candles {t(2500)} .. {t(3999)}" in out
    assert out.count("gap:") == 1
    assert f"gap: 2500 candle(s) missing between {t(-1)} and {t(2500)}" in out

    # The exchange gets 1,000 newer candles: a second run resumes after the last candle
    # stored (the empty start is not asked for again), stores them, keeps every candle
    # stored once and reports the same gap once.
    fake.history[(spec.instrument, MINUTE)] = (START_MS, 5000)
    fake.requests.clear()
    assert await _run(args(*base, "--until", until(5000))) == 0
    assert kline_starts(spec, fake)[0] == START_MS + 4000 * MINUTE
    assert await stored_minutes(conn, spec.exchange_id) == list(range(2500, 5000))
    out = capsys.readouterr().out
    assert out.count("gap:") == 1
    assert f"gap: 2500 candle(s) missing between {t(-1)} and {t(2500)}" in out


async def test_a_venue_with_nothing_at_all_ends_after_one_request_per_window(
    venue: tuple[KlineVenue, FakeVenue], db_url: str
) -> None:
    spec, fake = venue
    fake.history.clear()
    with pytest.raises(Fatal, match=f"{spec.exchange_id} has no 1m candles of BTC/USDT"):
        await _run(
            args(
                "--exchange", spec.exchange_id, "--pairs", "BTC/USDT", "--timeframes", "1m",
                "--since", "2024-01-01", "--until", until(5000), "--database-url", db_url,
            )
        )  # fmt: skip
    calls = fake.calls("GET", spec.klines_path)
    page = int(calls[0].params["limit"])
    windows = -(-5000 // page) if spec.exchange_id in WINDOWED_EXCHANGES else 1
    assert len(calls) == windows
