"""Where closed candles come from: an exchange's public API, or recorded CSV files
replayed under a clock (demo, tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np

from worker.candles.model import Candle, exact
from worker.candles.series import CandleSeries, csv_name, load_csv
from worker.candles.store import MarketKey
from worker.candles.timeframes import datetime_to_ms, timeframe_seconds
from worker.retry import retry


def market_name(key: MarketKey) -> str:
    return f"{key[0]} {key[1]} {key[2]}"


class CandleSource(Protocol):
    async def fetch_closed(
        self, key: MarketKey, since: datetime | None, until: datetime, limit: int
    ) -> list[Candle]:
        """Closed candles of ``key`` opening at or after ``since`` and closed by ``until``,
        oldest first; without ``since``, the latest ``limit`` of them."""


class OhlcvClient(Protocol):
    """What a candle source needs of an exchange client (``worker.exchanges.Exchange``)."""

    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Candle]: ...

    async def close(self) -> None: ...


class ReplaySource:
    """Recorded candles (``<BASE>_<QUOTE>-<timeframe>.csv``), the same for every exchange."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._series: dict[tuple[str, str], CandleSeries | None] = {}

    def series(self, symbol: str, timeframe: str) -> CandleSeries | None:
        k = (symbol, timeframe)
        if k not in self._series:
            path = self.directory / csv_name(symbol, timeframe)
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
                open=exact(c.open[i]),
                high=exact(c.high[i]),
                low=exact(c.low[i]),
                close=exact(c.close[i]),
                volume=exact(c.volume[i]),
            )
            for i in range(lo, hi)
        ]


class ExchangeSource:
    """Candles from exchanges through their public API (one client per exchange id).

    With ``connect``, a client for an exchange not in ``clients`` is made on first use
    (and closed by :meth:`close`).
    """

    def __init__(
        self,
        clients: dict[str, OhlcvClient] | None = None,
        connect: Callable[[str], OhlcvClient] | None = None,
    ) -> None:
        self.clients: dict[str, OhlcvClient] = {} if clients is None else clients
        self.connect = connect

    async def fetch_closed(
        self, key: MarketKey, since: datetime | None, until: datetime, limit: int
    ) -> list[Candle]:
        client = self.clients.get(key[0])
        if client is None:
            if self.connect is None:
                raise KeyError(key[0])
            client = self.clients[key[0]] = self.connect(key[0])
        rows = await retry(
            lambda: client.fetch_ohlcv(key[1], key[2], since=since, limit=limit),
            attempts=3,
            describe=f"fetch candles {market_name(key)}",
        )
        tf = timedelta(seconds=timeframe_seconds(key[2]))
        return [r for r in rows if r.time + tf <= until]

    async def close(self) -> None:
        """Close the clients this source made."""
        if self.connect is None:
            return
        for client in self.clients.values():
            await client.close()
        self.clients.clear()
