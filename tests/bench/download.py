"""Download 1,000,000 one-minute candles from the fake Binance (a process of its own,
over HTTP, 1,000 per request) into ``public.candles`` of a fresh database.

    scripts/bench download [--candles N] [--rate-limit-ms MS]

ccxt's rate limiter stays on; its delay is set to ``--rate-limit-ms`` (default 0: the
fake exchange has no limit; Binance's own, 50 ms per request weight, caps a real download
near 50,000 candles/s whatever the store does). The reference, measured in the same run:
the same candles written straight back into ``public.candles`` with one COPY from memory
(no HTTP, no parsing, no staging table), the database's own ceiling on this machine. Last
line: ``download: candles_per_s=… candles=… seconds=… requests=… ratio=…`` (ratio: the
download's rate over the reference's).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

import psycopg

from tests.bench._common import bench_database
from tests.support.fake_exchange import fake_exchange
from worker.data.download import download
from worker.data.sinks import DatabaseSink
from worker.exchanges.live import LiveExchange

FIRST = datetime(2020, 1, 1, tzinfo=UTC)


async def reference(conn: psycopg.AsyncConnection[tuple[object, ...]], candles: int) -> float:
    """Seconds to write the stored candles again with one COPY from memory."""
    data = bytearray()
    async with conn.cursor() as cur:
        async with cur.copy("copy (select * from public.candles) to stdout") as out:
            async for chunk in out:
                data += chunk
        await cur.execute("truncate public.candles")
        await conn.commit()
        started = time.perf_counter()
        async with cur.copy("copy public.candles from stdin") as into:
            await into.write(bytes(data))
        await conn.commit()
        elapsed = time.perf_counter() - started
        await cur.execute("select count(*) from public.candles")
        row = await cur.fetchone()
    assert row is not None and row[0] == candles, row
    return elapsed


async def run(
    url: str, fake_url: str, candles: int, rate_limit_ms: float
) -> tuple[float, int, float]:
    exchange = LiveExchange("binance", api_base_url=fake_url, enable_rate_limit=True)
    client = exchange.client
    client.rateLimit = rate_limit_ms
    requests = 0
    fetch = client.fetch_ohlcv

    async def counted(*args: object, **kwargs: object) -> list[list[object]]:
        nonlocal requests
        requests += 1
        rows: list[list[object]] = await fetch(*args, **kwargs)
        return rows

    client.fetch_ohlcv = counted
    until = datetime.fromtimestamp(FIRST.timestamp() + candles * 60, tz=UTC)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        started = time.perf_counter()
        results = await download(
            client, DatabaseSink(conn, "binance"), ["BTC/USDT"], ["1m"], FIRST, until
        )
        elapsed = time.perf_counter() - started
        cur = await conn.execute("select count(*) from public.candles")
        row = await cur.fetchone()
        assert row is not None and row[0] == candles == results[0].fetched, (row, results)
        ref = await reference(conn, candles)
    await exchange.close()
    return elapsed, requests, ref


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--rate-limit-ms", type=float, default=0.0)
    args = parser.parse_args()
    first_ms = int(FIRST.timestamp() * 1000)
    history = f"BTCUSDT:1m:{first_ms}:{args.candles}"
    with (
        bench_database("download") as url,
        fake_exchange("binance", args=("--history", history)) as fake,
    ):
        elapsed, requests, ref = asyncio.run(run(url, fake.url, args.candles, args.rate_limit_ms))
    print(f"reference, one COPY from memory: {args.candles / ref:.0f} candles/s ({ref:.2f} s)")
    print(
        f"download: candles_per_s={args.candles / elapsed:.0f} candles={args.candles} "
        f"seconds={elapsed:.2f} requests={requests} ratio={ref / elapsed:.2f}"
    )


if __name__ == "__main__":
    main()
