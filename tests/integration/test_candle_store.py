"""The one candle store: what bots write is what a backtest reads, once per candle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from worker.candles import Candle, Candles, store

T0 = datetime(2018, 1, 12, tzinfo=UTC)
ETH = ("binance", "ETH/BTC", "5m")
LTC = ("binance", "LTC/BTC", "5m")


def candle(minutes: int, close: str) -> Candle:
    d = Decimal(close)
    return Candle(T0 + timedelta(minutes=minutes), d, d, d, d, Decimal("12.5"))


async def test_written_candles_read_back_by_market_and_period(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    await store.write(
        conn,
        {
            ETH: [candle(0, "0.09"), candle(5, "0.091"), candle(10, "0.092")],
            LTC: [candle(0, "0.017")],
        },
    )
    eth = await store.read(conn, ETH)
    assert eth.close.tolist() == [0.09, 0.091, 0.092]
    assert eth.time.tolist()[0] == int(T0.timestamp() * 1000)
    part = await store.read(conn, ETH, T0 + timedelta(minutes=5), T0 + timedelta(minutes=10))
    assert part.close.tolist() == [0.091]  # start <= open time < end
    assert (await store.read(conn, LTC)).close.tolist() == [0.017]
    assert len(await store.read(conn, ("kraken", "ETH/BTC", "5m"))) == 0


async def test_a_candle_stored_twice_keeps_its_first_values(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    await store.write(conn, {ETH: [candle(0, "0.09")]})
    arrays = Candles.from_arrays(
        [int((T0 + timedelta(minutes=m)).timestamp() * 1000) for m in (0, 5)],
        [0.5, 0.0925],
        [0.5, 0.0925],
        [0.5, 0.0925],
        [0.5, 0.0925],
        [1.0, 3.0],
    )
    await store.write_arrays(conn, ETH, arrays)
    rows = await (
        await conn.execute(
            "select open_time, close, volume from public.candles where symbol = 'ETH/BTC' "
            "order by open_time"
        )
    ).fetchall()
    assert rows == [
        (T0, Decimal("0.09"), Decimal("12.5")),
        (T0 + timedelta(minutes=5), Decimal("0.0925"), Decimal("3.0")),
    ]
