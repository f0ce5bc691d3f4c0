"""The markets paper and live bots trade on, read from the database cache
(``public.exchange_markets``), and the job that fills that cache from the exchanges.

- ``refresh_markets`` calls ccxt's ``load_markets()`` (every market type the exchange's ccxt
  client loads: spot, swap, future, option) through the exchange factory and stores the
  result; ``markets.refresh`` runs it daily for every exchange bots use, and a bot whose
  market the cache lacks asks for it at once (at most once per exchange per
  ``TRADEFLEET_MARKETS_REFRESH_MIN_S`` across the fleet).
- ``MarketCatalog`` is one process's view of the cache: one ``MarketRules`` per exchange,
  shared by its bots and updated in place when the cache changes, so a market that turns
  inactive stops new entries of every bot on it.

A worker that refreshes loads an exchange the cache lacks before its first bot on it
trades. Where it does not (replayed candles, ``TRADEFLEET_MARKETS_REFRESH=false``) or the
refresh fails, paper bots on an exchange never loaded use the definitions shipped for the
tests and the offline demo (:func:`worker.bots.markets.paper_rules`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from psycopg_pool import AsyncConnectionPool

from worker.errors import Fatal, TradefleetError
from worker.exchanges import MarketRules
from worker.exchanges.market_cache import (
    claim_refresh,
    loaded_at,
    read_markets,
    record_failure,
    store_markets,
)
from worker.fleet.registry import Payload

from .markets import paper_rules

log = logging.getLogger("tradefleet.markets")

REFRESH_KIND = "markets.refresh"


class RefreshMarkets(Payload):
    """``markets.refresh``: one exchange (default: every exchange bots use), skipped where a
    refresh started less than ``min_interval_s`` seconds ago."""

    exchange: str | None = None
    min_interval_s: float = 0.0


class MarketSource(Protocol):
    """What a refresh needs of an exchange client (``LiveExchange`` without keys)."""

    async def load_markets(self, reload: bool = False) -> Any: ...

    @property
    def client(self) -> Any: ...

    async def close(self) -> None: ...


Connect = Callable[[str], MarketSource]


def public_client(exchange_id: str) -> MarketSource:
    """A keyless ccxt client of ``exchange_id`` (ccxt is loaded only when markets refresh)."""
    from worker.exchanges.live import LiveExchange

    return LiveExchange(exchange_id)


async def refresh_exchange(pool: AsyncConnectionPool, exchange_id: str, connect: Connect) -> int:
    """Load ``exchange_id``'s markets from the exchange and store them; the number stored.

    A failure is recorded on the exchange's load row and raised; the cache stays as it was.
    """
    client = connect(exchange_id)
    try:
        await client.load_markets(True)
        markets = dict(client.client.markets or {})
    except TradefleetError as e:
        await record_failure(pool, exchange_id, str(e))
        raise
    finally:
        await client.close()
    if not markets:
        await record_failure(pool, exchange_id, "the exchange returned no markets")
        raise Fatal(f"{exchange_id} returned no markets: the cache is left as it was")
    n = await store_markets(pool, exchange_id, markets)
    log.info(
        "markets refreshed",
        extra={"action": "markets_refreshed", "exchange": exchange_id, "markets": n},
    )
    return n


async def exchanges_in_use(pool: AsyncConnectionPool) -> list[str]:
    """Every exchange a bot is on, plus those already cached."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select exchange from public.bots union select exchange from public.exchange_market_loads "
            "order by 1"
        )
        return [str(r[0]) for r in await cur.fetchall()]


async def refresh_markets(
    pool: AsyncConnectionPool,
    connect: Connect,
    exchanges: Iterable[str] | None = None,
    *,
    min_interval_s: float = 0.0,
) -> dict[str, int | str]:
    """Refresh each exchange (default: those in use) not refreshed within ``min_interval_s``.

    Returns per exchange the number of markets stored, ``"skipped"`` (refreshed recently
    elsewhere) or the error; one failing exchange does not stop the others.
    """
    result: dict[str, int | str] = {}
    for exchange_id in exchanges if exchanges is not None else await exchanges_in_use(pool):
        if not await claim_refresh(pool, exchange_id, min_interval_s):
            result[exchange_id] = "skipped"
            continue
        try:
            result[exchange_id] = await refresh_exchange(pool, exchange_id, connect)
        except TradefleetError as e:
            log.warning(
                "markets refresh failed",
                extra={
                    "action": "markets_refresh_failed",
                    "exchange": exchange_id,
                    "error": str(e),
                },
            )
            result[exchange_id] = f"error: {e}"
    return result


@dataclass
class MarketCatalog:
    """This process's markets per exchange, from the cache (see the module docstring)."""

    pool: AsyncConnectionPool
    connect: Connect | None = None  # None: never refresh from the exchanges (replay, offline)
    min_refresh_s: float = 300.0
    markets_dir: Path | None = None
    _rules: dict[str, MarketRules] = field(default_factory=dict, init=False, repr=False)
    _loaded: dict[str, datetime | None] = field(default_factory=dict, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def rules(self, exchange_id: str) -> MarketRules:
        """The exchange's rules, from the cache (or the shipped definitions until it is loaded)."""
        async with self._lock:
            if exchange_id not in self._loaded:
                await self._load(exchange_id)
            return self._rules[exchange_id]

    async def is_loaded(self, exchange_id: str) -> bool:
        """True once the fleet has stored the exchange's markets in the cache."""
        await self.rules(exchange_id)
        return self._loaded.get(exchange_id) is not None

    async def _load(self, exchange_id: str) -> None:
        cached = await read_markets(self.pool, exchange_id)
        if cached is None:
            self._loaded[exchange_id] = None
            self._rules[exchange_id] = paper_rules(exchange_id, self.markets_dir)
            return
        when, markets = cached
        current = self._rules.get(exchange_id)
        if current is None or self._loaded.get(exchange_id) is None:
            self._rules[exchange_id] = MarketRules.from_markets(exchange_id, markets)
        else:
            current.replace_markets(markets)
        self._loaded[exchange_id] = when

    async def poll(self) -> None:
        """Reload every exchange whose cache changed since this process read it."""
        async with self._lock:
            for exchange_id, seen in list(self._loaded.items()):
                if await loaded_at(self.pool, exchange_id) != seen:
                    await self._load(exchange_id)

    async def watch(self, every_s: float = 60.0) -> None:
        """Poll until cancelled (a side task of the bot runner)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.poll()
            except Exception as e:  # a database hiccup: try again next time
                log.warning(
                    "markets cache poll failed", extra={"action": "markets_poll", "error": str(e)}
                )

    async def market_rules(self, exchange_id: str, symbol: str) -> MarketRules:
        """The rules of an exchange that lists ``symbol``; ``Fatal`` naming the market if it
        does not. Refreshes the cache first (at most once per exchange per ``min_refresh_s``
        across the fleet) when it lacks the market or has never loaded the exchange."""
        rules = await self.rules(exchange_id)
        known = symbol in rules.symbols
        if known and (self.connect is None or self._loaded.get(exchange_id) is not None):
            return rules
        if self.connect is not None and await claim_refresh(
            self.pool, exchange_id, self.min_refresh_s
        ):
            try:
                await refresh_exchange(self.pool, exchange_id, self.connect)
            except TradefleetError as e:
                log.warning(
                    "markets refresh failed",
                    extra={"action": "markets_refresh_failed", "exchange": exchange_id},
                )
                if not known:
                    raise Fatal(
                        f"{exchange_id} market {symbol} is not in the markets cache and "
                        f"refreshing it failed: {e}"
                    ) from e
        async with self._lock:
            await self._load(exchange_id)
        rules = self._rules[exchange_id]
        if symbol in rules.symbols:
            return rules
        raise Fatal(f"{exchange_id} does not list the market {symbol}")
