"""Shared market data: closed candles fetched once per (exchange, symbol, timeframe) per
candle close for every bot of the worker on that market, gaps reported, cached in
``public.candles``.

A ``CandleSource`` says where candles come from: an exchange through ccxt (public
endpoints, no keys), or recorded CSV files replayed under a clock. ``MarketData`` keeps a
window of recent closed candles per market as float arrays (what strategies compute on)
and as exact ``Candle`` values (what the paper exchange fills against).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import numpy as np
from psycopg_pool import AsyncConnectionPool

from worker.backtest.data import CandleSeries, load_csv
from worker.errors import Retryable
from worker.exchanges import Candle, Exchange
from worker.exchanges.models import datetime_to_ms, timeframe_seconds
from worker.exchanges.retry import retry
from worker.strategies import Candles

log = logging.getLogger("tradefleet.bots.market_data")

MarketKey = tuple[str, str, str]
"""(exchange, symbol, timeframe)"""

CACHE_CANDLES = """
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume)
select * from unnest(%(exchange)s::text[], %(symbol)s::text[], %(timeframe)s::text[],
                     %(open_time)s::timestamptz[], %(open)s::numeric[], %(high)s::numeric[],
                     %(low)s::numeric[], %(close)s::numeric[], %(volume)s::numeric[])
on conflict do nothing
"""


def market_name(key: MarketKey) -> str:
    return f"{key[0]} {key[1]} {key[2]}"


class CandleSource(Protocol):
    async def fetch_closed(
        self, key: MarketKey, since: datetime | None, until: datetime, limit: int
    ) -> list[Candle]:
        """Closed candles of ``key`` opening at or after ``since`` and closed by ``until``,
        oldest first; without ``since``, the latest ``limit`` of them."""


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


class ReplaySource:
    """Recorded candles (``<BASE>_<QUOTE>-<timeframe>.csv``), the same for every exchange."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._series: dict[tuple[str, str], CandleSeries | None] = {}

    def series(self, symbol: str, timeframe: str) -> CandleSeries | None:
        k = (symbol, timeframe)
        if k not in self._series:
            path = self.directory / f"{symbol.split(':')[0].replace('/', '_')}-{timeframe}.csv"
            self._series[k] = load_csv(path, timeframe) if path.exists() else None
        return self._series[k]

    def first_open(self, symbol: str, timeframe: str) -> datetime | None:
        s = self.series(symbol, timeframe)
        if s is None or len(s.candles) == 0:
            return None
        return datetime.fromtimestamp(int(s.candles.time[0]) / 1000, tz=UTC)

    async def fetch_closed(
        self, key: MarketKey, since: datetime | None, until: datetime, limit: int
    ) -> list[Candle]:
        s = self.series(key[1], key[2])
        if s is None:
            return []
        c = s.candles
        tf_ms = timeframe_seconds(key[2]) * 1000
        hi = int(np.searchsorted(c.time, datetime_to_ms(until) - tf_ms, side="right"))
        if since is None:
            lo = max(0, hi - limit)
        else:
            lo = int(np.searchsorted(c.time, datetime_to_ms(since), side="left"))
            hi = min(hi, lo + limit)
        return [
            Candle(
                time=datetime.fromtimestamp(int(c.time[i]) / 1000, tz=UTC),
                open=_dec(c.open[i]),
                high=_dec(c.high[i]),
                low=_dec(c.low[i]),
                close=_dec(c.close[i]),
                volume=_dec(c.volume[i]),
            )
            for i in range(lo, hi)
        ]


class ExchangeSource:
    """Candles from exchanges through their public API (one client per exchange id)."""

    def __init__(self, clients: dict[str, Exchange]) -> None:
        self.clients = clients

    async def fetch_closed(
        self, key: MarketKey, since: datetime | None, until: datetime, limit: int
    ) -> list[Candle]:
        client = self.clients[key[0]]
        rows = await retry(
            lambda: client.fetch_ohlcv(key[1], key[2], since=since, limit=limit),
            attempts=3,
            describe=f"fetch candles {market_name(key)}",
        )
        tf = timedelta(seconds=timeframe_seconds(key[2]))
        return [r for r in rows if r.time + tf <= until]


class LazyExchangeSource(ExchangeSource):
    """``ExchangeSource`` creating a public (keyless) ccxt client per exchange on first use."""

    def __init__(self) -> None:
        super().__init__({})

    async def fetch_closed(
        self, key: MarketKey, since: datetime | None, until: datetime, limit: int
    ) -> list[Candle]:
        if key[0] not in self.clients:
            from worker.exchanges.live import LiveExchange

            self.clients[key[0]] = LiveExchange(key[0])
        return await super().fetch_closed(key, since, until, limit)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        self.clients.clear()


@dataclass(frozen=True, slots=True)
class GapReport:
    key: MarketKey
    after: datetime
    before: datetime
    missing: int

    def describe(self) -> str:
        return (
            f"{self.missing} candle(s) missing on {market_name(self.key)} between "
            f"{self.after.isoformat()} and {self.before.isoformat()}"
        )


@dataclass
class MarketWindow:
    """The latest closed candles of one market."""

    key: MarketKey
    size: int
    candles: deque[Candle] = field(default_factory=deque)
    _arrays: Candles | None = None

    @property
    def last(self) -> Candle | None:
        return self.candles[-1] if self.candles else None

    def extend(self, new: Sequence[Candle]) -> tuple[list[Candle], list[GapReport]]:
        """Append candles newer than the last one; returns them and the gaps before them."""
        tf = timedelta(seconds=timeframe_seconds(self.key[2]))
        added: list[Candle] = []
        gaps: list[GapReport] = []
        for c in new:
            last = self.candles[-1] if self.candles else None
            if last is not None and c.time <= last.time:
                continue
            if last is not None and c.time > last.time + tf:
                missing = int((c.time - last.time) / tf) - 1
                gaps.append(GapReport(self.key, last.time, c.time, missing))
            self.candles.append(c)
            added.append(c)
        while len(self.candles) > self.size:
            self.candles.popleft()
        if added:
            self._arrays = None
        return added, gaps

    def arrays(self) -> Candles:
        """The window as float arrays for strategies (built once per new candle)."""
        if self._arrays is None:
            cs = self.candles
            self._arrays = Candles.from_arrays(
                [datetime_to_ms(c.time) for c in cs],
                [float(c.open) for c in cs],
                [float(c.high) for c in cs],
                [float(c.low) for c in cs],
                [float(c.close) for c in cs],
                [float(c.volume) for c in cs],
            )
        return self._arrays

    def arrays_until(self, when: datetime) -> Candles:
        """Float arrays of the candles opened at or before ``when`` (catch-up after takeover)."""
        a = self.arrays()
        n = int(np.searchsorted(a.time, datetime_to_ms(when), side="right"))
        return a.slice(0, n)

    def since(self, after: datetime | None) -> list[Candle]:
        """Candles opened after ``after``, oldest first (scanned from the newest end:
        usually just the last one)."""
        if after is None:
            return list(self.candles)
        out: list[Candle] = []
        for c in reversed(self.candles):
            if c.time <= after:
                break
            out.append(c)
        out.reverse()
        return out


class MarketData:
    """Windows of closed candles for the markets the worker's bots trade."""

    def __init__(
        self,
        source: CandleSource,
        pool: AsyncConnectionPool | None = None,
        *,
        window: int = 400,
        cache: bool = True,
        concurrency: int = 16,
    ) -> None:
        self.source = source
        self.pool = pool
        self.window = window
        self.cache = cache and pool is not None
        self.windows: dict[MarketKey, MarketWindow] = {}
        self._sem = asyncio.Semaphore(concurrency)
        self.fetches = 0

    async def _fetch(self, key: MarketKey, until: datetime) -> tuple[MarketKey, list[Candle]]:
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = MarketWindow(key, self.window)
        last = w.last
        since = None if last is None else last.time + timedelta(seconds=timeframe_seconds(key[2]))
        async with self._sem:
            self.fetches += 1
            try:
                rows = await self.source.fetch_closed(key, since, until, self.window)
            except Retryable as e:
                log.warning(
                    "candles unavailable",
                    extra={"action": "candles_failed", "market": market_name(key), "error": str(e)},
                )
                rows = []
        return key, rows

    async def refresh(
        self, keys: Iterable[MarketKey], until: datetime
    ) -> tuple[dict[MarketKey, list[Candle]], list[GapReport]]:
        """Fetch what closed by ``until`` for every market (once each); returns the new
        candles per market and the gaps found, and caches the new candles."""
        results = await asyncio.gather(*(self._fetch(k, until) for k in set(keys)))
        added: dict[MarketKey, list[Candle]] = {}
        gaps: list[GapReport] = []
        for key, rows in results:
            new, found = self.windows[key].extend(rows)
            added[key] = new
            gaps.extend(found)
        for g in gaps:
            log.warning(
                "candle gap",
                extra={
                    "action": "candle_gap",
                    "market": market_name(g.key),
                    "missing": g.missing,
                    "detail": g.describe(),
                },
            )
        if self.cache:
            await self._store(added)
        return added, gaps

    async def _store(self, added: dict[MarketKey, list[Candle]]) -> None:
        cols: dict[str, list[object]] = {
            k: []
            for k in (
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
        }
        # Sorted, so two workers caching the same candles lock rows in the same order.
        for key, candles in sorted(added.items()):
            for c in candles:
                for name, value in zip(
                    cols, (*key, c.time, c.open, c.high, c.low, c.close, c.volume), strict=True
                ):
                    cols[name].append(value)
        if not cols["open_time"] or self.pool is None:
            return
        try:
            async with self.pool.connection() as conn:
                await conn.execute(CACHE_CANDLES, cols)
        except Exception as e:  # the cache is an optimisation: never stop trading for it
            log.warning(
                "candle cache write failed",
                extra={"action": "candle_cache_failed", "error": str(e)},
            )
