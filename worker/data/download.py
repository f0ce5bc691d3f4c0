"""Historical candles from an exchange's public API into ``public.candles`` (or CSV files).

Each market (pair and timeframe) is fetched page by page through ccxt's ``fetch_ohlcv``
with the client's rate limiter on, from ``since`` (or just after the last candle already
stored, so an interrupted download resumes) up to ``until``, several pages in flight at
once. Pages are stored in batches as they arrive, through a sink (``worker.data.sinks``:
``public.candles`` or CSV files). Gaps (candles the exchange does not have) are reported,
never filled; an exchange that answers for one window at a time is stepped through its
empty windows (a halted market, a listing later than ``since``) up to the period's end. The
hole before a market's first candle goes to the sink with the candles after it, so a later
download from inside it starts at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import ccxt

from worker.candles.series import Gap
from worker.candles.timeframes import datetime_to_ms, iso, timeframe_ms
from worker.errors import Fatal

from .sinks import CandleSink

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
