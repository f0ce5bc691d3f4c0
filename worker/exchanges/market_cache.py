"""The markets cache in the database (``public.exchange_markets``): what ccxt's
``load_markets()`` returned per exchange, stored by the fleet and read by paper and live
bots alike.

- ``unified_markets`` turns a ccxt client's markets into the JSON stored.
- ``store_markets`` replaces one exchange's cache (markets gone are kept, inactive and
  delisted; bots on them are stopped or told, see the migration).
- ``read_markets`` returns an exchange's cached markets, or ``None`` while it is not loaded.
- ``claim_refresh`` bounds refreshes across the fleet (at most one per exchange per interval).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg_pool import AsyncConnectionPool


def _plain(value: Any) -> Any:
    """JSON-safe copy: Decimals as numbers, non-finite floats as null."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def unified_markets(markets: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """ccxt markets by symbol, JSON-safe (``info`` kept: ccxt's exchange code reads it)."""
    return {
        str(symbol): {k: _plain(v) for k, v in market.items()}
        for symbol, market in markets.items()
        if isinstance(market, Mapping)
    }


async def store_markets(
    pool: AsyncConnectionPool,
    exchange_id: str,
    markets: Mapping[str, Mapping[str, Any]],
    fetched_at: datetime | None = None,
) -> int:
    """Replace the cache of ``exchange_id`` with ``markets``; the number stored."""
    payload = json.dumps(unified_markets(markets))
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select public.exchange_markets_store(%s, %s::jsonb, coalesce(%s, now()))",
            (exchange_id, payload, fetched_at),
        )
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def record_failure(pool: AsyncConnectionPool, exchange_id: str, error: str) -> None:
    """Note why the last refresh of ``exchange_id`` failed (the cache is left as it was)."""
    async with pool.connection() as conn:
        await conn.execute(
            """insert into public.exchange_market_loads (exchange, last_error) values (%s, %s)
               on conflict (exchange) do update set last_error = excluded.last_error""",
            (exchange_id, error[:2000]),
        )


async def read_markets(
    pool: AsyncConnectionPool, exchange_id: str
) -> tuple[datetime, dict[str, dict[str, Any]]] | None:
    """``(loaded_at, markets by symbol)`` of ``exchange_id``, or ``None`` if never loaded."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select loaded_at from public.exchange_market_loads "
            "where exchange = %s and loaded_at is not null",
            (exchange_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        cur = await conn.execute(
            "select symbol, market, active from public.exchange_markets where exchange = %s",
            (exchange_id,),
        )
        rows = await cur.fetchall()
    markets: dict[str, dict[str, Any]] = {}
    for symbol, market, active in rows:
        m = dict(market)
        m["active"] = bool(active)  # a delisted market is inactive whatever it said before
        markets[str(symbol)] = m
    return row[0], markets


async def loaded_at(pool: AsyncConnectionPool, exchange_id: str) -> datetime | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select loaded_at from public.exchange_market_loads where exchange = %s",
            (exchange_id,),
        )
        row = await cur.fetchone()
    return None if row is None else row[0]


async def claim_refresh(pool: AsyncConnectionPool, exchange_id: str, min_interval_s: float) -> bool:
    """True if this caller should refresh ``exchange_id`` now (none started within the interval)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select public.exchange_markets_claim_refresh(%s, %s)", (exchange_id, min_interval_s)
        )
        row = await cur.fetchone()
    return bool(row and row[0])
