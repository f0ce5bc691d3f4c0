"""Shared market data: closed candles fetched once per (exchange, symbol, timeframe) per
candle close for every consumer on that market, gaps reported, stored in ``public.candles``.

``MarketData`` keeps a window of recent closed candles per market as float arrays (what
strategies compute on) and as exact ``Candle`` values (what the paper exchange fills
against); a ``CandleSource`` says where the candles come from.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from psycopg_pool import AsyncConnectionPool

from worker.candles import store
from worker.candles.model import Candle, to_arrays
from worker.candles.sources import CandleSource, market_name
from worker.candles.store import MarketKey
from worker.candles.timeframes import datetime_to_ms, timeframe_seconds
from worker.errors import Retryable
from worker.strategies.base import Candles

log = logging.getLogger("tradefleet.candles.market")


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
            self._arrays = to_arrays(self.candles)
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
    """Windows of closed candles for the markets a worker trades."""

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
        candles per market and the gaps found, and stores the new candles."""
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
        if self.cache and self.pool is not None:
            try:
                await store.write(self.pool, added)
            except Exception as e:  # the cache is an optimisation: never stop trading for it
                log.warning(
                    "candle cache write failed",
                    extra={"action": "candle_cache_failed", "error": str(e)},
                )
        return added, gaps
