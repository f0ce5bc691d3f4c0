"""The candle store: ``public.candles``, read and written by one query each.

Candles are shared by every bot and backtest on a market: the bots' market data writes
the candles it fetched, a backtest reads the period it needs (and writes recorded candles
it had to load from a file, so the next run reads them from the table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from worker.candles.model import Candle
from worker.strategies.base import Candles

MarketKey = tuple[str, str, str]
"""(exchange, symbol, timeframe)"""

Db = AsyncConnectionPool | psycopg.AsyncConnection[Any]

READ = """
select (extract(epoch from open_time) * 1000)::bigint as t,
       open::float8 as o, high::float8 as h, low::float8 as l, close::float8 as c, volume::float8 as v
  from public.candles
 where exchange = %(exchange)s and symbol = %(symbol)s and timeframe = %(timeframe)s
   and (%(start)s::timestamptz is null or open_time >= %(start)s::timestamptz)
   and (%(end)s::timestamptz is null or open_time < %(end)s::timestamptz)
 order by open_time
"""
WRITE = """
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume)
select * from unnest(%(exchange)s::text[], %(symbol)s::text[], %(timeframe)s::text[],
                     %(open_time)s::timestamptz[], %(open)s::numeric[], %(high)s::numeric[],
                     %(low)s::numeric[], %(close)s::numeric[], %(volume)s::numeric[])
on conflict do nothing
"""
_COLUMNS = (
    "exchange",
    "symbol",
    "timeframe",
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
)


async def _execute(db: Db, query: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    if isinstance(db, AsyncConnectionPool):
        async with db.connection() as conn:
            return await _execute(conn, query, params)
    async with db.cursor() as cur:
        await cur.execute(query, params)
        return await cur.fetchall() if cur.description else []


async def read(
    db: Db, key: MarketKey, start: datetime | None = None, end: datetime | None = None
) -> Candles:
    """Stored candles of a market with ``start <= open_time < end`` (either bound may be
    None), oldest first, as float arrays."""
    exchange, symbol, timeframe = key
    params = {
        "exchange": exchange,
        "symbol": symbol,
        "timeframe": timeframe,
        "start": start,
        "end": end,
    }
    rows = await _execute(db, READ, params)
    if not rows:
        return Candles.from_arrays([], [], [], [], [], [])
    return Candles.from_arrays(*zip(*rows, strict=True))


async def write(db: Db, candles: Mapping[MarketKey, Sequence[Candle]]) -> None:
    """Store exact candles of many markets in one statement; candles already stored stay."""
    cols: dict[str, list[object]] = {name: [] for name in _COLUMNS}
    # Sorted, so two workers storing the same candles lock rows in the same order.
    for key, rows in sorted(candles.items()):
        for c in rows:
            for name, value in zip(
                _COLUMNS, (*key, c.time, c.open, c.high, c.low, c.close, c.volume), strict=True
            ):
                cols[name].append(value)
    if cols["open_time"]:
        await _execute(db, WRITE, cols)


async def write_arrays(db: Db, key: MarketKey, c: Candles) -> None:
    """Store float candles (recorded files) of one market, prices as their shortest text."""

    def text(a: Any) -> list[str]:
        return [repr(float(x)) for x in a]

    n = len(c)
    params: dict[str, object] = {
        "exchange": [key[0]] * n,
        "symbol": [key[1]] * n,
        "timeframe": [key[2]] * n,
        "open_time": [datetime.fromtimestamp(int(t) / 1000, tz=UTC) for t in c.time],
        "open": text(c.open),
        "high": text(c.high),
        "low": text(c.low),
        "close": text(c.close),
        "volume": text(c.volume),
    }
    if n:
        await _execute(db, WRITE, params)
