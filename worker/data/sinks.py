"""Where downloaded candles go: ``public.candles`` (``DatabaseSink``) or CSV files
(``FileSink``), each able to say where a download of a market resumes.

The database sink stores a batch in one transaction: COPY into a temporary table, then one
insert per month straight into that month's partition of ``candles`` (without a conflict
check when the market has no candle in that range yet, else keeping the candles already
stored); the batch's newest candle goes through ``candles`` itself, whose trigger publishes
a market's latest candle. The hole a download found before a market's first candle is
recorded with the batch after it (``private.candle_empty_ranges``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

from worker.candles.series import csv_name
from worker.candles.timeframes import datetime_to_ms, iso, ms_to_datetime
from worker.errors import Fatal

STAGE = """
create temporary table if not exists candles_download (
  t bigint, open numeric, high numeric, low numeric, close numeric, volume numeric
) on commit delete rows
"""
COPY = "copy candles_download (t, open, high, low, close, volume) from stdin"
SELECT_STAGED = """
select %(exchange)s, %(symbol)s, %(timeframe)s,
       timestamptz 'epoch' + t * interval '1 millisecond', open, high, low, close, volume
  from candles_download
"""
INSERT = "insert into {} (exchange, symbol, timeframe, open_time, open, high, low, close, volume)"
MONTH = INSERT + SELECT_STAGED + " where t >= %(first)s and t < %(end)s"
NEWEST = (
    INSERT.format("public.candles") + SELECT_STAGED + " where t = %(newest)s on conflict do nothing"
)
"""The batch's newest candle goes through ``public.candles``: its statement trigger
(``candles_publish_latest``) publishes each market's latest candle, and does not fire for
rows written into a partition."""
STORED = """
select exists (select 1 from public.candles
                where exchange = %(exchange)s and symbol = %(symbol)s and timeframe = %(timeframe)s
                  and open_time >= %(first)s and open_time < %(end)s)
"""
PARTITIONS = "select public.create_history_partitions_between('candles', %(first)s, %(last)s)"
"""Makes the monthly partitions of ``public.candles`` a batch falls in before it is written,
so that old candles go straight into their months, not through the default partition."""
PARTITION_NAMES = """
select n from unnest(%(names)s::text[]) n where pg_catalog.to_regclass('partitions.' || n) is not null
"""
RESUME = """
select (extract(epoch from max(open_time)) * 1000)::bigint
  from public.candles
 where exchange = %(exchange)s and symbol = %(symbol)s and timeframe = %(timeframe)s
   and open_time >= %(since)s and open_time < %(until)s
   and exists (select 1 from public.candles s
                where s.exchange = %(exchange)s and s.symbol = %(symbol)s
                  and s.timeframe = %(timeframe)s and s.open_time = %(since)s)
"""


EMPTY_UNTIL = """
with recursive skipped (t) as (
  select %(since)s::timestamptz
  union
  select r.empty_until
    from skipped
    join private.candle_empty_ranges r
      on r.exchange = %(exchange)s and r.symbol = %(symbol)s and r.timeframe = %(timeframe)s
     and r.empty_from <= skipped.t and r.empty_until > skipped.t
)
select (extract(epoch from max(t)) * 1000)::bigint from skipped
"""
"""Where a download from ``since`` may find candles: after every period known empty that
holds ``since`` (periods found by downloads from different starts may follow each other)."""
RECORD_EMPTY = """
insert into private.candle_empty_ranges as r (exchange, symbol, timeframe, empty_from, empty_until)
values (%(exchange)s, %(symbol)s, %(timeframe)s, %(empty_from)s, %(empty_until)s)
on conflict (exchange, symbol, timeframe, empty_from)
do update set empty_until = excluded.empty_until, recorded_at = now()
"""


class CandleSink(Protocol):
    async def known_empty_until(self, symbol: str, timeframe: str, since: int) -> int:
        """The first open time (ms) at or after ``since`` that is not inside a period an
        earlier download found empty on the exchange (``since`` if none is known)."""

    async def resume_after(self, symbol: str, timeframe: str, since: int, until: int) -> int | None:
        """Open time (ms) of the last candle already stored for the period, if resuming."""

    async def store(
        self,
        symbol: str,
        timeframe: str,
        rows: list[list[Any]],
        empty: tuple[int, int] | None = None,
    ) -> None:
        """Store a batch of rows (in time order); ``empty``, a period before the batch in
        which the exchange has no candle, is recorded with it where the sink can."""


def _month_start(ms: int) -> datetime:
    at = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def _next_month(at: datetime) -> datetime:
    return datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)


class DatabaseSink:
    """Candles into ``public.candles`` through one connection (autocommit off)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], exchange: str) -> None:
        self.conn = conn
        self.exchange = exchange
        self._staged = False
        self._partitions: set[str] = set()  # partitions known to exist

    def _key(self, symbol: str, timeframe: str) -> dict[str, Any]:
        return {"exchange": self.exchange, "symbol": symbol, "timeframe": timeframe}

    async def known_empty_until(self, symbol: str, timeframe: str, since: int) -> int:
        params = {**self._key(symbol, timeframe), "since": ms_to_datetime(since)}
        async with self.conn.transaction(), self.conn.cursor() as cur:
            await cur.execute(EMPTY_UNTIL, params)
            row = await cur.fetchone()
        return since if row is None or row[0] is None else int(row[0])

    async def resume_after(self, symbol: str, timeframe: str, since: int, until: int) -> int | None:
        params = {
            **self._key(symbol, timeframe),
            "since": ms_to_datetime(since),
            "until": ms_to_datetime(until),
        }
        async with self.conn.transaction(), self.conn.cursor() as cur:
            await cur.execute(RESUME, params)
            row = await cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    async def _months(self, first: int, last: int) -> list[tuple[int, int, str | None]]:
        """The months from ``first`` to ``last`` (ms) as (start, end, partition name or
        None when the month has no partition of its own); missing partitions are made."""
        months: list[tuple[int, int, str]] = []
        at = _month_start(first)
        while datetime_to_ms(at) <= last:
            end = _next_month(at)
            months.append((datetime_to_ms(at), datetime_to_ms(end), f"candles_p{at:%Y%m}01"))
            at = end
        names = [name for _, _, name in months]
        if not set(names) <= self._partitions:
            async with self.conn.transaction(), self.conn.cursor() as cur:
                bounds = {"first": ms_to_datetime(first), "last": ms_to_datetime(last)}
                await cur.execute(PARTITIONS, bounds)
                await cur.execute(PARTITION_NAMES, {"names": names})
                self._partitions |= {str(r[0]) for r in await cur.fetchall()}
        return [(a, b, name if name in self._partitions else None) for a, b, name in months]

    async def store(
        self,
        symbol: str,
        timeframe: str,
        rows: list[list[Any]],
        empty: tuple[int, int] | None = None,
    ) -> None:
        """Store a batch of rows (in time order); candles already stored are kept."""
        if not rows:
            return
        first, newest = int(rows[0][0]), int(rows[-1][0])
        months = await self._months(first, newest)
        data = "".join(f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]}\t{r[4]}\t{r[5]}\n" for r in rows).encode()
        try:
            await self._write(symbol, timeframe, data, months, first, newest, empty, checked=True)
        except psycopg.errors.UniqueViolation:
            # A candle stored meanwhile (another download of the market): keep it.
            await self._write(symbol, timeframe, data, months, first, newest, empty, checked=False)

    async def _write(
        self,
        symbol: str,
        timeframe: str,
        data: bytes,
        months: list[tuple[int, int, str | None]],
        first: int,
        newest: int,
        empty: tuple[int, int] | None,
        *,
        checked: bool,
    ) -> None:
        key = self._key(symbol, timeframe)
        async with self.conn.transaction(), self.conn.cursor() as cur:
            if empty is not None:
                period = {
                    "empty_from": ms_to_datetime(empty[0]),
                    "empty_until": ms_to_datetime(empty[1]),
                }
                await cur.execute(RECORD_EMPTY, {**key, **period})
            if not self._staged:
                await cur.execute(STAGE)
                self._staged = True
            # A commit lost in a crash costs only a re-fetch: the next run resumes after
            # the last candle that was stored.
            await cur.execute("set local synchronous_commit = off")
            async with cur.copy(COPY) as copy:
                await copy.write(data)
            for start, end, name in months:
                part = {**key, "first": max(start, first), "end": min(end, newest)}
                if part["first"] >= part["end"]:
                    continue  # only the newest candle, written below through candles
                table = sql.Identifier("public", "candles")
                if name is not None:
                    table = sql.Identifier("partitions", name)
                conflict = " on conflict do nothing"
                if checked:
                    window = {
                        **key,
                        "first": ms_to_datetime(part["first"]),
                        "end": ms_to_datetime(part["end"]),
                    }
                    await cur.execute(STORED, window)
                    row = await cur.fetchone()
                    if row is not None and not row[0]:
                        conflict = ""  # nothing stored in the range: no conflict to look for
                await cur.execute(sql.SQL(MONTH + conflict).format(table), part)
            await cur.execute(NEWEST, {**key, "newest": newest})


class FileSink:
    """Candles into ``DIR/<BASE>_<QUOTE>-<timeframe>.csv`` (what backtests read), appended."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, symbol: str, timeframe: str) -> Path:
        return self.directory / csv_name(symbol, timeframe)

    async def known_empty_until(self, symbol: str, timeframe: str, since: int) -> int:
        return since  # files keep candles only

    async def resume_after(self, symbol: str, timeframe: str, since: int, until: int) -> int | None:
        path = self._path(symbol, timeframe)
        if not path.exists():
            return None
        with path.open("rb") as fh:
            fh.readline()
            second = fh.readline()
            if not second:
                return None
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 512))
            last = fh.read().decode().strip().splitlines()[-1]
        start = datetime_to_ms(datetime.fromisoformat(second.decode().split(",")[0]))
        end = datetime_to_ms(datetime.fromisoformat(last.split(",")[0]))
        if start != since:
            raise Fatal(
                f"{path} starts at {iso(start)}, not {iso(since)}: move it away or download "
                "from its start"
            )
        return end

    async def store(
        self,
        symbol: str,
        timeframe: str,
        rows: list[list[Any]],
        empty: tuple[int, int] | None = None,
    ) -> None:
        path = self._path(symbol, timeframe)
        self.directory.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with path.open("a") as fh:
            if new:
                fh.write("date,open,high,low,close,volume\n")
            fh.writelines(f"{iso(r[0])},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}\n" for r in rows)
