"""Candle downloads requested from the app (a ``data_requests`` row -> a ``data.download``
job against the local fake Binance over HTTP), the plan's monthly quota, and the periodic
refresh of the markets running bots and queued backtests use."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.fakes.fake_binance import FakeBinance
from tests.support.bots import create_bot, grant_credits
from tests.support.db import User, request_as
from worker.data import jobs
from worker.exchanges.settings import ExchangesSettings
from worker.fleet.registry import Job, Registry

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


@pytest.fixture
def registry(fake: FakeBinance) -> Registry:
    reg = Registry()
    jobs.register(reg, ExchangesSettings())
    return reg


async def request(conn: psycopg.AsyncConnection[Any], user: User, **fields: Any) -> uuid.UUID:
    """``POST /rest/v1/data_requests``."""
    row = {
        "exchange": "binance",
        "trading_pair": "BTC/USDT",
        "timeframe": "1m",
        "start_date": "2024-01-01T00:00:00Z",
        "end_date": "2024-01-02T00:00:00Z",
        **fields,
    }
    cols = ", ".join(row)
    values = ", ".join(f"%({k})s" for k in row)
    async with request_as(conn, user) as cur:
        await cur.execute(f"insert into data_requests ({cols}) values ({values}) returning id", row)
        got = await cur.fetchone()
    assert got is not None
    return uuid.UUID(str(got["id"]))


async def run_job(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    reg: Registry,
    key: str,
    attempts: int | None = None,
) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select id, queue, kind, payload, attempts, max_attempts from jobs "
            "where idempotency_key = %s",
            (key,),
        )
        rows = await cur.fetchall()
    assert len(rows) == 1, "one job per request"
    job = Job(**{**rows[0], "attempts": attempts or rows[0]["attempts"]})
    result: dict[str, Any] = await reg.kinds[job.kind].handler(reg.context(job, pool, "test"))
    return result


async def row_of(conn: psycopg.AsyncConnection[Any], user: User, request_id: uuid.UUID) -> Any:
    async with request_as(conn, user) as cur:
        await cur.execute("select * from data_requests where id = %s", (request_id,))
        return await cur.fetchone()


async def count(conn: psycopg.AsyncConnection[Any], where: str = "") -> int:
    cur = await conn.execute(
        "select count(*) from candles where exchange = 'binance' and symbol = 'BTC/USDT' "
        "and timeframe = '1m' " + where
    )
    got = await cur.fetchone()
    assert got is not None
    return int(got[0])


async def test_a_request_downloads_the_period_and_reports_on_its_row(
    fake: FakeBinance,
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    users: dict[str, User],
    registry: Registry,
) -> None:
    alice, bob = users["alice"], users["bob"]
    request_id = await request(conn, alice)
    assert (await row_of(conn, alice, request_id))["status"] == "queued"
    out = await run_job(conn, pool, registry, f"data.download:{request_id}")
    assert out["status"] == "completed", out

    row = await row_of(conn, alice, request_id)
    assert row["status"] == "completed" and row["progress"] == 1 and row["error"] is None
    # 1,440 minutes in the day, two missing on the exchange.
    assert row["candles_stored"] == 1438 and row["missing_candles"] == 2
    assert row["gaps"] == [
        {"after": "2024-01-01T19:59:00Z", "before": "2024-01-01T20:02:00Z", "missing": 2}
    ]
    assert await count(conn) == 1438
    assert await row_of(conn, bob, request_id) is None

    # A second request for a longer period fetches only what is not stored yet.
    fake.requests.clear()
    again = await request(conn, alice, end_date="2024-01-02T12:00:00Z")
    await run_job(conn, pool, registry, f"data.download:{again}")
    row = await row_of(conn, alice, again)
    assert row["status"] == "completed" and row["candles_stored"] == 720
    starts = [int(r.params["startTime"]) for r in fake.requests if r.path == "/api/v3/klines"]
    assert starts[0] == START_MS + 1440 * MINUTE
    assert await count(conn) == 1438 + 720


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"trading_pair": "NOPE/USDT"}, "unknown pair 'NOPE/USDT' on binance"),
        ({"exchange": "nosuchx"}, "unknown exchange 'nosuchx'"),
        (
            {"start_date": "2020-01-01T00:00:00Z", "end_date": "2020-01-02T00:00:00Z"},
            "binance has no 1m candles of BTC/USDT between 2020-01-01",
        ),
    ],
)
async def test_bad_requests_fail_with_a_named_error_on_the_row(
    fake: FakeBinance,
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    users: dict[str, User],
    registry: Registry,
    fields: dict[str, Any],
    message: str,
) -> None:
    alice = users["alice"]
    request_id = await request(conn, alice, **fields)
    out = await run_job(conn, pool, registry, f"data.download:{request_id}")
    assert out["status"] == "failed"
    row = await row_of(conn, alice, request_id)
    assert row["status"] == "failed" and message in row["error"]


async def test_an_unexpected_error_is_retried_then_left_failed_on_the_row(
    fake: FakeBinance,
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    users: dict[str, User],
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(jobs, "download", broken)
    alice = users["alice"]
    request_id = await request(conn, alice)
    key = f"data.download:{request_id}"
    with pytest.raises(RuntimeError):
        await run_job(conn, pool, registry, key, attempts=1)
    assert (await row_of(conn, alice, request_id))["status"] == "running"
    with pytest.raises(RuntimeError):
        await run_job(conn, pool, registry, key, attempts=3)
    row = await row_of(conn, alice, request_id)
    assert row["status"] == "failed" and row["error"].startswith("internal error: RuntimeError")


async def test_the_plans_monthly_quota_names_the_plan_that_lifts_it(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    await conn.execute(
        "insert into plans (name, price_monthly, max_bots, max_strategies, features, sort_order) "
        """values ('Pro', 29, 10, 25, '{"data_requests_per_month": 100}', 1)"""
    )
    alice = users["alice"]
    for _ in range(5):
        await request(conn, alice)
    with pytest.raises(psycopg.errors.CheckViolation) as e:
        await request(conn, alice)
    assert str(e.value.diag.message_primary) == (
        "plan limit reached: the Free plan allows 5 data downloads a month "
        "(data_requests_per_month); the Pro plan allows 100"
    )
    # Another user's quota is untouched.
    await request(conn, users["bob"])


async def test_the_refresh_keeps_the_markets_of_running_bots_current(
    fake: FakeBinance,
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    users: dict[str, User],
) -> None:
    alice = users["alice"]
    now_ms = int(datetime.now(UTC).timestamp() * 1000) // MINUTE * MINUTE
    first = now_ms - 3000 * MINUTE
    fake.history[("BTCUSDT", "1m")] = (first, 2990)  # up to ten minutes ago
    fake.missing = set()
    await grant_credits(conn, alice, "100")
    await create_bot(conn, alice, trading_pair="BTC/USDT", timeframe="1m")
    await create_bot(conn, alice, trading_pair="ETH/BTC", timeframe="1m", status="stopped")
    settings = ExchangesSettings()
    # A candle recorded long ago: the refresh does not backfill the years since.
    await conn.execute(
        "insert into candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume) "
        "values ('binance', 'BTC/USDT', '1m', '2018-01-10 05:00+00', 1, 1, 1, 1, 1)"
    )

    out = await jobs.refresh_markets(pool, settings)
    assert out["markets"] == 1 and out["failed"] == []
    # It fetches at most the last REFRESH_CANDLES candles.
    assert out["stored"] == jobs.REFRESH_CANDLES - 10
    assert await count(conn) == 1 + jobs.REFRESH_CANDLES - 10
    # The exchange gets five newer candles: the next refresh fetches only those.
    fake.history[("BTCUSDT", "1m")] = (first, 2995)
    fake.requests.clear()
    out = await jobs.refresh_markets(pool, settings)
    assert out["stored"] == 5 and await count(conn) == 1 + jobs.REFRESH_CANDLES - 5
    starts = [int(r.params["startTime"]) for r in fake.requests if r.path == "/api/v3/klines"]
    assert starts[0] == first + 2990 * MINUTE
    # The fleet runs it every five minutes.
    reg = Registry()
    jobs.register(reg, settings)
    assert reg.periodic_jobs[jobs.REFRESH_KIND].every == jobs.REFRESH_EVERY


async def test_a_timeframe_the_exchange_does_not_offer_is_named_on_the_row(
    fake: FakeBinance,
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    users: dict[str, User],
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every timeframe a request may name is offered by the venues the fleet trades; an
    # exchange that stops offering one (here: Binance without 4h) fails the request by name.
    client = jobs._client

    def without_4h(exchange: str, settings: ExchangesSettings) -> Any:
        live = client(exchange, settings)
        live.client.timeframes = {k: v for k, v in live.client.timeframes.items() if k != "4h"}
        return live

    monkeypatch.setattr(jobs, "_client", without_4h)
    alice = users["alice"]
    request_id = await request(conn, alice, timeframe="4h")
    out = await run_job(conn, pool, registry, f"data.download:{request_id}")
    assert out["status"] == "failed"
    row = await row_of(conn, alice, request_id)
    assert row["status"] == "failed"
    assert row["error"].startswith("binance does not offer timeframe '4h' (it offers ")
    assert [r for r in fake.requests if r.path == "/api/v3/klines"] == []
