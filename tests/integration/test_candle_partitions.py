"""Partitioned candles: the migration that partitions candles by month, run on a populated
database, keeps every candle, the read policy, the latest-candle trigger and the upsert;
every month the data covers gets its partition and the default partition stays empty."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.support import db as support
from tests.support.db import create_user, request_as
from tests.support.migrations import database_before, migrate
from worker.candles import Candle, store

MIGRATION = next(Path(support.ROOT, "supabase/migrations").glob("*_fleet_partitioned_candles.sql"))
VERSION = MIGRATION.stem.split("_", 1)[0]
CHECKSUM = (
    "select count(*), md5(string_agg(md5(c::text), '' order by c.exchange, c.symbol, c.timeframe,"
    " c.open_time)) from public.candles c"
)
START = datetime(2022, 11, 15, tzinfo=UTC)


@pytest.fixture
def before_url() -> Iterator[str]:
    """A database migrated up to, but not including, the candle partitioning migration."""
    with database_before(VERSION) as url:
        yield url


async def test_partitioning_populated_candles_keeps_every_candle_and_rule(
    before_url: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(before_url, autocommit=True) as conn:
        user = await create_user(conn, "reader@candles.test")
        # Three markets, from November 2022 to now: 4h candles and a stretch of 1m ones.
        await conn.execute(
            """
            insert into candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume)
            select 'binance', s, tf, t, 100 + n %% 7, 110 + n %% 7, 90 + n %% 7, 101 + n %% 7, n * 0.5
              from unnest(array['BTC/USDT', 'ETH/USDT', 'SOL/USDT']) s,
                   lateral (select '4h' as tf, %(start)s::timestamptz + n * interval '4 hours' as t, n
                              from generate_series(0, (extract(epoch from now() - %(start)s::timestamptz) / 14400)::int) n
                            union all
                            select '1m', %(start)s::timestamptz + n * interval '1 minute', n
                              from generate_series(0, 3000) n) c
            """,
            {"start": START},
        )
        before = await (await conn.execute(CHECKSUM)).fetchone()
        assert before is not None and before[0] > 20000
        latest = await (
            await conn.execute(
                "select exchange, symbol, timeframe, open_time, close from market_latest_candles"
                " order by 1, 2, 3"
            )
        ).fetchall()
        async with request_as(conn, user) as cur:
            await cur.execute("select count(*) as n from candles where symbol = 'ETH/USDT'")
            seen = (await cur.fetchone() or {})["n"]

    migrate(before_url.rsplit("/", 1)[1])

    async with await psycopg.AsyncConnection.connect(before_url, autocommit=True) as conn:
        kind = await (
            await conn.execute(
                "select relkind from pg_class where oid = 'public.candles'::regclass"
            )
        ).fetchone()
        assert kind == ("p",)
        assert await (await conn.execute(CHECKSUM)).fetchone() == before
        # Every month from November 2022 to two months ahead, and nothing in the default.
        parts = await (
            await conn.execute(
                "select count(*) filter (where c.relname <> 'candles_default'),"
                " min(c.relname) filter (where c.relname <> 'candles_default'),"
                " (select count(*) from partitions.candles_default)"
                " from pg_inherits i join pg_class c on c.oid = i.inhrelid"
                " where i.inhparent = 'public.candles'::regclass"
            )
        ).fetchone()
        now = datetime.now(UTC)
        months = (now.year - START.year) * 12 + now.month - START.month + 3
        assert parts == (months, "candles_p20221101", 0)

        # Readers read what they read; partitions, anon and writes by users are refused.
        async with request_as(conn, user) as cur:
            await cur.execute("select count(*) as n from candles where symbol = 'ETH/USDT'")
            assert (await cur.fetchone() or {})["n"] == seen
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with request_as(conn, user) as cur:
                await cur.execute("select count(*) from partitions.candles_p20221101")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with request_as(conn, "anon") as cur:
                await cur.execute("select count(*) from public.candles")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with request_as(conn, user) as cur:
                await cur.execute(
                    "insert into candles (exchange, symbol, timeframe, open_time, open, high, low, close)"
                    " values ('binance', 'X/USDT', '1m', now(), 1, 1, 1, 1)"
                )

        # The latest candles were not touched by the move; the store's upsert still keeps
        # a stored candle and publishes a newer one.
        assert (
            await (
                await conn.execute(
                    "select exchange, symbol, timeframe, open_time, close from market_latest_candles"
                    " order by 1, 2, 3"
                )
            ).fetchall()
            == latest
        )
        first = START
        # Later than every stored candle (the series runs to the 4h candle nearest now).
        newest = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        d = Decimal
        one = Candle(first, d(1), d(1), d(1), d(1), d(1))
        fresh = Candle(newest, d(5), d(6), d(4), d(5), d(1))
        await store.write(conn, {("binance", "BTC/USDT", "4h"): [one, fresh]})
        rows = await (
            await conn.execute(
                "select open_time, close from candles where symbol = 'BTC/USDT' and timeframe = '4h'"
                " and open_time in (%s, %s) order by open_time",
                (first, newest),
            )
        ).fetchall()
        assert [r[1] for r in rows] == [101, 5]
        top = await (
            await conn.execute(
                "select open_time, close from market_latest_candles where symbol = 'BTC/USDT'"
                " and timeframe = '4h'"
            )
        ).fetchone()
        assert top is not None and top[1] == 5
