"""``tradefleet data download`` against the local fake Binance over HTTP: candles stored
exactly, gaps reported, a second run resumes, bad input is one line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fakes.fake_binance import FakeBinance
from worker.candles.series import load_csv
from worker.cli import build_parser, main
from worker.data.cli import _run
from worker.data.download import WINDOWS
from worker.errors import Fatal

START = datetime(2024, 1, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
MINUTE = 60_000


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBinance]:
    async with FakeBinance() as f:
        # 2,500 one-minute candles from 2024-01-01, two of them missing on the exchange.
        f.history[("BTCUSDT", "1m")] = (START_MS, 2500)
        f.missing = {START_MS + 1200 * MINUTE, START_MS + 1201 * MINUTE}
        monkeypatch.setenv("TRADEFLEET_EXCHANGE_URLS", f"binance={f.url}")
        yield f


def args(*argv: str) -> Any:
    return build_parser().parse_args(["data", "download", "--no-progress", *argv])


async def stored(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    cur = await conn.execute(
        "select open_time, open, close from public.candles"
        " where exchange = 'binance' and symbol = 'BTC/USDT' and timeframe = '1m'"
        " order by open_time"
    )
    return await cur.fetchall()


def klines_starts(fake: FakeBinance) -> list[int]:
    return [int(r.params["startTime"]) for r in fake.requests if r.path == "/api/v3/klines"]


async def test_download_stores_every_candle_exactly_and_reports_the_gap(
    fake: FakeBinance,
    conn: psycopg.AsyncConnection[Any],
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["--exchange", "binance", "--pairs", "BTC/USDT", "--timeframes", "1m"]
    code = await _run(args(*base, "--since", "2024-01-01", "--database-url", db_url))
    assert code == 0
    rows = await stored(conn)
    assert len(rows) == 2498
    assert rows[0][0] == START
    assert rows[0][1] == Decimal("40001.1") and rows[0][2] == Decimal("40002.25")
    # Candles of months long gone go straight into their month's partition.
    where = await conn.execute(
        "select distinct tableoid::regclass::text from public.candles where symbol = 'BTC/USDT'"
    )
    assert await where.fetchall() == [("partitions.candles_p20240101",)]
    out = capsys.readouterr().out
    assert "BTC/USDT 1m: 2498 candles 2024-01-01T00:00:00Z .. 2024-01-02T17:39:00Z" in out
    assert "gap: 2 candle(s) missing between 2024-01-01T19:59:00Z and 2024-01-01T20:02:00Z" in out
    # Paginated: 1,000 candles per request (the exchange's maximum); no request runs on
    # after the exchange answered that it has nothing newer.
    limits = [r.params["limit"] for r in fake.requests if r.path == "/api/v3/klines"]
    assert set(limits) == {"1000"} and 3 <= len(limits) <= 2 + WINDOWS

    # The exchange gets 500 newer candles; a second run asks only for those.
    fake.history[("BTCUSDT", "1m")] = (START_MS, 3000)
    fake.requests.clear()
    await _run(args(*base, "--since", "2024-01-01", "--database-url", db_url))
    assert klines_starts(fake)[0] == START_MS + 2500 * MINUTE
    assert len(await stored(conn)) == 2998
    assert "resumed after 2024-01-02T17:39:00Z" in capsys.readouterr().out


async def test_download_to_files_writes_what_backtests_read(
    fake: FakeBinance, tmp_path: Path
) -> None:
    base = ["--exchange", "binance", "--pairs", "BTC/USDT", "--timeframes", "1m"]
    period = ["--since", "2024-01-01", "--until", "2024-01-01T10:00"]
    await _run(args(*base, *period, "--to-files", str(tmp_path)))
    series = load_csv(tmp_path / "BTC_USDT-1m.csv")
    assert len(series.candles) == 600 and series.gaps == ()
    # Running it again changes nothing and asks for nothing past the period.
    fake.requests.clear()
    await _run(args(*base, *period, "--to-files", str(tmp_path)))
    assert len(load_csv(tmp_path / "BTC_USDT-1m.csv").candles) == 600
    assert klines_starts(fake) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pairs", "NOPE/USDT", "--timeframes", "1m"], "unknown pair 'NOPE/USDT' on binance"),
        (["--pairs", "BTC/USDT", "--timeframes", "7m"], "binance does not offer timeframe '7m'"),
        (["--pairs", "BTC/USDT", "--timeframes", "1h,1M"], "timeframe '1M' cannot be stored"),
    ],
)
async def test_bad_pair_or_timeframe_is_named_before_any_download(
    fake: FakeBinance, db_url: str, argv: list[str], message: str
) -> None:
    with pytest.raises(Fatal, match=message):
        await _run(
            args("--exchange", "binance", *argv, "--since", "2024-01-01", "--database-url", db_url)
        )
    assert klines_starts(fake) == []


async def test_a_period_without_candles_is_an_error(fake: FakeBinance, db_url: str) -> None:
    with pytest.raises(Fatal, match="binance has no 1m candles of BTC/USDT between 2020-01-01"):
        await _run(
            args(
                "--exchange", "binance", "--pairs", "BTC/USDT", "--timeframes", "1m",
                "--since", "2020-01-01", "--until", "2020-01-02", "--database-url", db_url,
            )
        )  # fmt: skip


def test_unknown_exchange_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["data", "download", "--exchange", "nosuchx", "--pairs", "BTC/USDT"]
    code = main([*argv, "--timeframes", "1m", "--since", "2024-01-01", "--to-files", "/tmp/x"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == ["tradefleet data: error: unknown exchange 'nosuchx': not a ccxt exchange id"]


def down_after_first_page(fake: FakeBinance) -> None:
    """The exchange answers one page of klines, then fails every request."""
    generated = fake._generated
    calls = 0

    def then_down(*a: Any) -> list[list[Any]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            fake.fail_next("unavailable", path="/api/v3/klines", times=1000)
        return generated(*a)

    fake._generated = then_down  # type: ignore[method-assign]


async def test_an_interrupted_download_resumes_where_it_stopped(
    fake: FakeBinance, conn: psycopg.AsyncConnection[Any], db_url: str
) -> None:
    down_after_first_page(fake)
    base = ["--exchange", "binance", "--pairs", "BTC/USDT", "--timeframes", "1m"]
    argv = args(*base, "--since", "2024-01-01", "--database-url", db_url)
    with pytest.raises(Fatal, match="failed 3 times"):
        await _run(argv)
    assert len(await stored(conn)) == 1000

    fake._failures.clear()
    fake.requests.clear()
    await _run(argv)
    assert klines_starts(fake)[0] == START_MS + 1000 * MINUTE
    assert len(await stored(conn)) == 2498


async def test_a_download_from_before_the_listing_resumes_after_the_hole(
    fake: FakeBinance, conn: psycopg.AsyncConnection[Any], db_url: str
) -> None:
    # The exchange's candles start a day after --since: no candle at --since to resume from.
    down_after_first_page(fake)
    base = ["--exchange", "binance", "--pairs", "BTC/USDT", "--timeframes", "1m"]
    argv = args(*base, "--since", "2023-12-31", "--database-url", db_url)
    with pytest.raises(Fatal, match="failed 3 times"):
        await _run(argv)
    assert len(await stored(conn)) == 1000

    fake._failures.clear()
    fake.requests.clear()
    await _run(argv)  # resumes after the first page, not from --since
    assert klines_starts(fake)[0] == START_MS + 1000 * MINUTE
    assert len(await stored(conn)) == 2498

    fake.requests.clear()
    await _run(argv)  # done: one request past the last candle
    assert klines_starts(fake) == [START_MS + 2500 * MINUTE]
    assert len(await stored(conn)) == 2498

    # From further back: the longer hole is found once, then known as well.
    fake.requests.clear()
    await _run(args(*base, "--since", "2023-12-30", "--database-url", db_url))
    assert klines_starts(fake)[0] == START_MS - 2 * 1440 * MINUTE
    fake.requests.clear()
    await _run(args(*base, "--since", "2023-12-30", "--database-url", db_url))
    assert klines_starts(fake) == [START_MS + 2500 * MINUTE]


async def test_candles_already_stored_are_kept_and_the_latest_is_published(
    fake: FakeBinance, conn: psycopg.AsyncConnection[Any], db_url: str
) -> None:
    # Two candles of the period are stored already (another source): the download writes
    # the months around them with a conflict check and keeps them as they are.
    await conn.execute(
        "insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)"
        " values ('binance', 'BTC/USDT', '1m', %s, 7, 7, 7, 7), ('binance', 'BTC/USDT', '1m', %s, 7, 7, 7, 7)",
        (START, datetime.fromtimestamp((START_MS + 1500 * MINUTE) / 1000, tz=UTC)),
    )
    await conn.commit()
    base = ["--exchange", "binance", "--pairs", "BTC/USDT", "--timeframes", "1m"]
    await _run(args(*base, "--since", "2024-01-01T00:01", "--database-url", db_url))
    rows = await stored(conn)
    assert len(rows) == 2498
    assert [r[2] for r in rows if r[1] == 7] == [Decimal(7), Decimal(7)]
    # The newest candle is published, although the months went straight into partitions.
    cur = await conn.execute(
        "select open_time, close from public.market_latest_candles"
        " where exchange = 'binance' and symbol = 'BTC/USDT' and timeframe = '1m'"
    )
    latest = await cur.fetchone()
    assert latest is not None
    assert (
        latest[0]
        == rows[-1][0]
        == datetime.fromtimestamp((START_MS + 2499 * MINUTE) / 1000, tz=UTC)
    )
