"""Prices of watched symbols: held in a linked brokerage or traded by a running bot.

Stocks are priced from a quote source (Alpaca market data); bot markets from the shared
candles the bots already fetch. Applying prices revalues aggregated holdings in SQL, which
Realtime streams to their owners; ``portfolio_value`` adds today's change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker.holdings import queries as q
from worker.holdings.alpaca import Quote


class QuoteSource(Protocol):
    name: str

    async def quotes(self, symbols: Sequence[str]) -> list[Quote]: ...


@dataclass(frozen=True)
class PriceUpdate:
    watched: int
    priced: int
    holdings_revalued: int


async def watched_symbols(pool: AsyncConnectionPool) -> list[tuple[str, str]]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.WATCHED_SYMBOLS)
        return [(r["symbol"], r["source"]) for r in await cur.fetchall()]


async def update_prices(pool: AsyncConnectionPool, source: QuoteSource | None) -> PriceUpdate:
    watched = await watched_symbols(pool)
    stocks = sorted({s for s, src in watched if src == "brokerage" and "/" not in s})
    quotes = await source.quotes(stocks) if source is not None and stocks else []
    revalued = 0
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        if quotes:
            await cur.execute(
                q.APPLY_PRICES,
                {
                    "prices": Jsonb(
                        [
                            {
                                "symbol": x.symbol,
                                "price": str(x.price),
                                "previous_close": None
                                if x.previous_close is None
                                else str(x.previous_close),
                                "source": source.name if source else "unknown",
                                "as_of": x.as_of.isoformat(),
                            }
                            for x in quotes
                        ]
                    )
                },
            )
            row = await cur.fetchone()
            revalued += int(row["changed"]) if row else 0
        await cur.execute(q.PRICES_FROM_CANDLES)
        row = await cur.fetchone()
        revalued += int(row["changed"]) if row else 0
    return PriceUpdate(watched=len(watched), priced=len(quotes), holdings_revalued=revalued)
