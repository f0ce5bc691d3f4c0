"""Historical candles from an exchange's public API into ``public.candles`` (or CSV files).

Each market (pair and timeframe) is fetched page by page through ccxt's ``fetch_ohlcv``
with the client's rate limiter on, from ``since`` (or just after the last candle already
stored, so an interrupted download resumes) up to ``until``, several pages in flight at
once. Pages are stored in batches as they arrive: COPY into a temporary table, then one
insert per month straight into that month's partition of ``candles`` (without a conflict
check when the market has no candle in that range yet, else keeping the candles already
stored); the batch's newest candle goes through ``candles`` itself, whose trigger publishes
a market's latest candle. Gaps (candles the exchange does not have) are reported, never
filled; an exchange that answers for one window at a time is stepped through its empty
windows (a halted market, a listing later than ``since``) up to the period's end. The hole
before a market's first candle is recorded (``private.candle_empty_ranges``) with the
candles after it, so a later download from inside it starts at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import ccxt
import psycopg
from psycopg import sql

from worker.candles.series import Gap, csv_name
from worker.candles.timeframes import datetime_to_ms, iso, ms_to_datetime, timeframe_ms
from worker.errors import Fatal

RAW_ROW_EXCHANGES = frozenset({"binance"})
"""Exchanges whose kline answers are documented as rows ``[time, open, high, low, close,
volume, …]``, oldest first, from the time asked for, with prices as decimal text: ccxt's
``fetch_ohlcv`` hands those rows on as they came (exact decimal text, and no Python work
per row: ccxt's own parser converts every price to a float one row at a time). Other
exchanges go through ccxt's own parser."""

WINDOWED_EXCHANGES = frozenset({"bitget", "mexc", "okx"})
"""Exchanges whose kline request ccxt bounds to a window from ``since`` (OKX and Bitget
the page's length, MEXC spot 500 candles) where Binance, Bybit and Kraken answer from the
first candle at or after it. An empty answer from them says only that the window has no
candles (a halted market, a listing later than ``since``), not that nothing newer exists:
the downloader asks them for exactly the window it wants (ccxt's ``until``) and steps over
empty windows up to the period's end."""

PAGE = 1000
"""Most candles asked for per request (Binance's documented maximum for klines); fewer on
an exchange whose ccxt ``features`` give a lower ``fetchOHLCV`` limit (OKX 300, Bitget
200, Kraken 720): a page then covers exactly the window it is asked for."""

WINDOWS = 8
"""Pages requested at once (ccxt's rate limiter queues them by the exchange's limit)."""

BATCH = 50_000
"""Candles stored per transaction."""

RETRIES = 2
"""Further attempts at a page after a network error before the download stops."""

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


class OhlcvExchange(Protocol):
    """What the downloader needs of a ccxt async client."""

    id: str
    timeframes: dict[str, Any]
    markets: dict[str, Any]

    async def load_markets(self, reload: bool = False) -> Any: ...

    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        since: int | None,
        limit: int | None,
        params: dict[str, Any] = ...,
    ) -> list[list[Any]]: ...

    def milliseconds(self) -> int: ...


@dataclass
class MarketResult:
    """What one market's download did."""

    symbol: str
    timeframe: str
    resumed_from: int | None = None  # open time (ms) the download restarted after
    fetched: int = 0
    first: int | None = None
    last: int | None = None
    gaps: list[Gap] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return sum(g.missing for g in self.gaps)

    def describe(self) -> str:
        if self.fetched == 0:
            return f"{self.symbol} {self.timeframe}: up to date"
        assert self.first is not None and self.last is not None
        text = (
            f"{self.symbol} {self.timeframe}: {self.fetched} candles "
            f"{iso(self.first)} .. {iso(self.last)}"
        )
        if self.resumed_from is not None:
            text += f" (resumed after {iso(self.resumed_from)})"
        if self.gaps:
            text += f", {len(self.gaps)} gap(s), {self.missing} candle(s) missing"
        return text


Progress = Callable[[str, int, int], None]
"""progress(market label, candles done, candles expected)"""


def _rows_as_sent(client: Any) -> None:
    """Keep kline rows as the exchange sent them (see :data:`RAW_ROW_EXCHANGES`); the
    downloader keeps only the rows of the window it asked for."""

    def parse_ohlcvs(
        ohlcvs: list[Any] | None, market: Any = None, *args: Any, **kwargs: Any
    ) -> list[Any]:
        return ohlcvs or []

    client.parse_ohlcvs = parse_ohlcvs


def _check(client: OhlcvExchange, pairs: Sequence[str], timeframes: Sequence[str]) -> None:
    offered = sorted(client.timeframes or {})
    for tf in timeframes:
        if tf not in (client.timeframes or {}):
            raise Fatal(
                f"{client.id} does not offer timeframe {tf!r} (it offers {', '.join(offered)})"
            )
        try:
            timeframe_ms(tf)
        except ValueError:
            raise Fatal(
                f"timeframe {tf!r} cannot be stored (candles are counted in m, h, d or w)"
            ) from None
    for pair in pairs:
        if pair not in client.markets:
            raise Fatal(f"unknown pair {pair!r} on {client.id}")


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


def _gaps(previous: int | None, rows: list[list[Any]], step: int) -> list[Gap]:
    out: list[Gap] = []
    for r in rows:
        t = int(r[0])
        if previous is not None and t - previous > step:
            out.append(Gap(after=previous, before=t, missing=(t - previous) // step - 1))
        previous = t
    return out


def page_size(client: Any, symbol: str) -> int:
    """Candles per request for the market: ccxt's documented ``features`` limit of its
    market type, at most :data:`PAGE`."""
    kind = str((client.markets or {}).get(symbol, {}).get("type") or "spot")
    features = getattr(client, "features", None) or {}
    limit = (features.get(kind) or {}).get("fetchOHLCV") or {}
    return min(PAGE, int(limit.get("limit") or PAGE))


async def _fetch(
    client: OhlcvExchange,
    symbol: str,
    timeframe: str,
    since: int,
    limit: int,
    end: int | None = None,
) -> list[list[Any]]:
    """One page (only candles opening before ``end`` when given); a network error, an
    unavailable exchange or a rate-limit answer is tried again (after 1 s, then 2 s) before
    the download stops."""
    for attempt in range(RETRIES + 1):
        try:
            if end is None:
                return await client.fetch_ohlcv(symbol, timeframe, since, limit)
            # ccxt's ``until`` bounds the window: exclusive on OKX and Bitget (whose
            # history endpoint then answers the page before it), inclusive on MEXC (its
            # candle at ``end`` is dropped with the rest outside the window).
            return await client.fetch_ohlcv(symbol, timeframe, since, limit, {"until": end})
        except ccxt.NetworkError as e:
            if attempt == RETRIES:
                raise Fatal(
                    f"{client.id}: fetching {timeframe} candles of {symbol} failed "
                    f"{RETRIES + 1} times: {e}"
                ) from e
            await asyncio.sleep(2**attempt)
        except ccxt.BaseError as e:
            raise Fatal(f"{client.id}: fetching {timeframe} candles of {symbol} failed: {e}") from e
    raise AssertionError("unreachable")


async def _window(
    client: OhlcvExchange, symbol: str, timeframe: str, start: int, end: int, step: int, limit: int
) -> tuple[list[list[Any]], bool]:
    """Every candle with ``start <= open time < end``, page after page (an exchange may
    answer fewer than asked for), and whether the exchange may have candles after the
    window: an exchange that answers from the first candle at or after the time asked for
    has none when its answer is empty; a windowed one (:data:`WINDOWED_EXCHANGES`), asked
    for this window only, has none in the rest of the window."""
    windowed = client.id in WINDOWED_EXCHANGES
    out: list[list[Any]] = []
    cursor = start
    while cursor < end:
        page = await _fetch(client, symbol, timeframe, cursor, limit, end if windowed else None)
        if not page:
            return out, windowed
        rows = [r for r in page if cursor <= r[0] < end]
        out += rows
        if not rows or int(page[-1][0]) >= end - step:
            break
        cursor = int(rows[-1][0]) + step
    return out, True


async def download_market(
    client: OhlcvExchange,
    sink: CandleSink,
    symbol: str,
    timeframe: str,
    since: int,
    until: int,
    progress: Progress | None = None,
) -> MarketResult:
    """Download the closed candles of one market with ``since <= open time < until``.

    The first page finds where the exchange's data starts (not on a windowed exchange, see
    :data:`WINDOWED_EXCHANGES`: every window is asked for, so a venue that has nothing at
    all costs one request per window of the period); after it, windows of one page
    each are fetched :data:`WINDOWS` at a time (ccxt's rate limiter still spaces the
    requests) and stored in order, :data:`BATCH` candles per transaction, so the stored
    candles always end at a point a later run resumes from.
    """
    step = timeframe_ms(timeframe)
    since -= since % step
    result = MarketResult(symbol, timeframe)
    until = min(until, client.milliseconds() // step * step)  # closed candles only
    # A period an earlier download found empty at the start is not asked for again.
    start = min(until, await sink.known_empty_until(symbol, timeframe, since))
    resumed = await sink.resume_after(symbol, timeframe, start, until)
    cursor = start
    previous: int | None = None
    empty: tuple[int, int] | None = None  # the hole before the first candle, to record
    if resumed is not None:
        result.resumed_from = previous = resumed
        cursor = resumed + step
        if start > since:  # the hole known at the start is still the period's gap
            result.gaps.append(
                Gap(after=since - step, before=start, missing=(start - since) // step)
            )
    label = f"{symbol} {timeframe}"
    expected = max(0, (until - since) // step)
    batch: list[list[Any]] = []
    storing: asyncio.Task[None] | None = None

    async def flush(wait: bool = False) -> None:
        # One batch is stored while the next is fetched; stores stay in order.
        nonlocal storing, batch, empty
        if storing is not None:
            await storing
            storing = None
        if batch:
            storing = asyncio.ensure_future(sink.store(symbol, timeframe, batch, empty))
            batch, empty = [], None
        if wait and storing is not None:
            await storing
            storing = None

    def take(rows: list[list[Any]]) -> None:
        nonlocal previous, empty
        if not rows:
            return
        result.gaps.extend(_gaps(previous, rows, step))
        if result.first is None:
            result.first = int(rows[0][0])
            if previous is None and result.first > since:
                missing = (result.first - since) // step
                result.gaps.append(Gap(after=since - step, before=result.first, missing=missing))
                empty = since, result.first
        previous = result.last = int(rows[-1][0])
        result.fetched += len(rows)
        batch.extend(rows)

    limit = page_size(client, symbol)
    if cursor < until and client.id not in WINDOWED_EXCHANGES:
        # The first page: the exchange answers from where its candles start (a windowed
        # exchange answers for one window only: the windows below step over an empty
        # start, one request per empty window up to ``until``).
        page = await _fetch(client, symbol, timeframe, cursor, limit)
        first = [r for r in page if r[0] < until]
        take(first)
        cursor = int(first[-1][0]) + step if first else until
    span = limit * step
    try:
        while cursor < until:
            starts = [cursor + i * span for i in range(WINDOWS) if cursor + i * span < until]
            windows = await asyncio.gather(
                *(
                    _window(client, symbol, timeframe, s, min(until, s + span), step, limit)
                    for s in starts
                )
            )
            for rows, _ in windows:
                take(rows)
            cursor = starts[-1] + span
            if not all(more for _, more in windows):
                cursor = until  # the exchange has nothing newer
            if len(batch) >= BATCH:
                await flush()
            if progress is not None:
                progress(label, (min(cursor, until) - since) // step, expected)
        await flush(wait=True)
    except Fatal:
        # Keep what was fetched (contiguous from the start): a new run resumes after it.
        await flush(wait=True)
        raise
    finally:
        if storing is not None and not storing.done():
            storing.cancel()
            with contextlib.suppress(BaseException):
                await storing
    if progress is not None:
        progress(label, expected, expected)
    if previous is not None and previous + step < until and result.fetched:
        result.gaps.append(
            Gap(after=previous, before=until, missing=(until - previous) // step - 1)
        )
    if result.fetched == 0 and resumed is None:
        raise Fatal(
            f"{client.id} has no {timeframe} candles of {symbol} between {iso(since)} and "
            f"{iso(until)}"
        )
    return result


async def download(
    client: Any,
    sink: CandleSink,
    pairs: Sequence[str],
    timeframes: Sequence[str],
    since: datetime,
    until: datetime | None = None,
    progress: Progress | None = None,
) -> list[MarketResult]:
    """Download every pair and timeframe; checks pairs and timeframes before fetching."""
    try:
        await client.load_markets()
    except ccxt.BaseError as e:
        raise Fatal(f"{client.id}: cannot load its markets: {e}") from e
    _check(client, pairs, timeframes)
    if client.id in RAW_ROW_EXCHANGES:
        _rows_as_sent(client)
    start = datetime_to_ms(since)
    end = datetime_to_ms(until) if until is not None else client.milliseconds()
    if end <= start:
        raise Fatal(f"--until ({iso(end)}) must be after --since ({iso(start)})")
    return [
        await download_market(client, sink, pair, tf, start, end, progress)
        for pair in pairs
        for tf in timeframes
    ]
