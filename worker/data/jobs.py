"""Candle downloads run by the fleet, with the code of ``tradefleet data download``.

* ``data.download``: an app inserts a ``data_requests`` row (market and period, within its
  plan's ``data_requests_per_month``); a trigger enqueues one job per request
  (``supabase/migrations/20261212500100_data_requests.sql``). The job downloads the
  period's closed candles into ``candles`` (resuming after the last candle already
  stored), reporting progress on the row, then the candles stored and the gaps, or the
  error (an unknown exchange or pair, a timeframe the exchange does not offer, a period
  with no data) as one line.
* ``data.refresh`` (every :data:`REFRESH_EVERY`): keeps the candles current for every
  market a running bot trades and every queued backtest whose period is open-ended
  (no ``end_date``): from the last candle stored, but never more than the last
  :data:`REFRESH_CANDLES` candles (history is what data requests are for).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker.candles.timeframes import iso, timeframe_ms
from worker.data.download import MarketResult, download
from worker.data.sinks import DatabaseSink
from worker.errors import Fatal
from worker.exchanges.settings import ExchangesSettings
from worker.fleet.registry import JobContext, Payload, Registry

KIND = "data.download"
REFRESH_KIND = "data.refresh"
REFRESH_EVERY = timedelta(minutes=5)
REFRESH_CANDLES = 1000
"""Candles fetched for a market that has none stored yet."""
PROGRESS_EVERY_S = 1.0
MAX_GAPS = 100
"""Gaps listed on a request row (all are counted in ``missing_candles``)."""

START = """
update public.data_requests
   set status = 'running', progress = 0, error = null, started_at = coalesce(started_at, now())
 where id = %(id)s and status in ('queued', 'running')
returning *
"""
PROGRESS = """
update public.data_requests set progress = greatest(progress, %(progress)s)
 where id = %(id)s and status = 'running'
"""
FINISH = """
update public.data_requests
   set status = %(status)s, progress = case when %(status)s = 'completed' then 1 else progress end,
       candles_stored = %(stored)s, missing_candles = %(missing)s, gaps = %(gaps)s,
       error = %(error)s, finished_at = now()
 where id = %(id)s and status = 'running'
"""
MARKETS = """
select b.exchange, p.pair as symbol, b.timeframe
  from public.bots b
 cross join lateral unnest(coalesce(b.pairs, array[b.trading_pair])) p(pair)
 where b.status = 'running'
union
select r.exchange, p.pair, r.timeframe
  from public.backtest_runs r
 cross join lateral unnest(coalesce(r.trading_pairs, array[r.trading_pair])) p(pair)
 where r.status = 'queued' and r.end_date is null
order by 1, 2, 3
"""
LAST_STORED = """
select max(open_time) from public.candles
 where exchange = %(exchange)s and symbol = %(symbol)s and timeframe = %(timeframe)s
"""


class DownloadRequest(Payload):
    """``data.download``, enqueued by a trigger on ``data_requests``."""

    request_id: uuid.UUID


class RefreshMarkets(Payload):
    """``data.refresh``: no payload."""


def _client(exchange: str, settings: ExchangesSettings) -> Any:
    from worker.exchanges.live import LiveExchange

    return LiveExchange(exchange, api_base_url=settings.exchange_urls.get(exchange))


async def _download(
    pool: AsyncConnectionPool,
    settings: ExchangesSettings,
    exchange: str,
    pair: str,
    timeframe: str,
    since: datetime,
    until: datetime | None,
    progress: Any = None,
) -> MarketResult:
    """One market and period into ``candles`` (see :func:`worker.data.download.download`)."""
    live = _client(exchange, settings)
    try:
        async with pool.connection() as conn:
            sink = DatabaseSink(conn, exchange)
            (result,) = await download(
                live.client, sink, [pair], [timeframe], since, until, progress
            )
            return result
    except OSError as e:
        raise Fatal(f"download failed: {e}") from e
    finally:
        await live.close()


async def _update(pool: AsyncConnectionPool, query: str, params: Mapping[str, Any]) -> None:
    async with pool.connection() as conn:
        await conn.execute(query, params)


async def run_download(
    ctx: JobContext[DownloadRequest], settings: ExchangesSettings
) -> dict[str, Any]:
    """The ``data.download`` handler (see the module docstring)."""
    request_id = ctx.payload.request_id
    async with ctx.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(START, {"id": request_id})
        req = await cur.fetchone()
    if req is None:
        return {"request_id": str(request_id), "status": "skipped"}
    last = 0.0
    pending: set[asyncio.Task[None]] = set()

    def progress(label: str, done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if total <= 0 or now - last < PROGRESS_EVERY_S:
            return
        last = now
        share = Decimal(str(round(min(done / total, 1.0) * 0.99, 4)))
        task = asyncio.ensure_future(
            _update(ctx.pool, PROGRESS, {"id": request_id, "progress": share})
        )
        pending.add(task)
        task.add_done_callback(pending.discard)

    finish: dict[str, Any] = {"id": request_id, "stored": None, "missing": None, "gaps": None}
    try:
        result = await _download(
            ctx.pool,
            settings,
            str(req["exchange"]),
            str(req["trading_pair"]),
            str(req["timeframe"]),
            req["start_date"],
            req["end_date"],
            progress,
        )
    except Fatal as e:
        await asyncio.gather(*pending, return_exceptions=True)
        await _update(ctx.pool, FINISH, {**finish, "status": "failed", "error": str(e)})
        return {"request_id": str(request_id), "status": "failed", "error": str(e)}
    except Exception as e:
        # Retried by the queue; the last attempt leaves the row failed, not running.
        await asyncio.gather(*pending, return_exceptions=True)
        if ctx.job.attempts >= ctx.job.max_attempts:
            message = f"internal error: {type(e).__name__}; the candles stored so far are kept"
            with contextlib.suppress(Exception):
                await _update(ctx.pool, FINISH, {**finish, "status": "failed", "error": message})
        raise
    await asyncio.gather(*pending, return_exceptions=True)
    gaps = [
        {"after": iso(g.after), "before": iso(g.before), "missing": g.missing}
        for g in result.gaps[:MAX_GAPS]
    ]
    await _update(
        ctx.pool,
        FINISH,
        {
            **finish,
            "status": "completed",
            "stored": result.fetched,
            "missing": result.missing,
            "gaps": Jsonb(gaps),
            "error": None,
        },
    )
    return {"request_id": str(request_id), "status": "completed", "stored": result.fetched}


async def refresh_markets(
    pool: AsyncConnectionPool, settings: ExchangesSettings, log: Any = None
) -> dict[str, Any]:
    """The ``data.refresh`` handler: every market in use brought up to the last closed candle."""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(MARKETS)
        markets = await cur.fetchall()
    stored, failed = 0, []
    now = datetime.now(UTC)
    for m in markets:
        async with pool.connection() as conn:
            row = await (await conn.execute(LAST_STORED, m)).fetchone()
        last = row[0] if row else None
        step = timedelta(milliseconds=timeframe_ms(str(m["timeframe"])))
        # Never a backfill: at most the last REFRESH_CANDLES candles (data requests fetch history).
        since = max(last, now - REFRESH_CANDLES * step) if last else now - REFRESH_CANDLES * step
        label = f"{m['exchange']} {m['symbol']} {m['timeframe']}"
        try:
            result = await _download(
                pool, settings, m["exchange"], m["symbol"], m["timeframe"], since, None
            )
            stored += result.fetched
        except Fatal as e:
            failed.append(f"{label}: {e}")
            if log is not None:
                log.warning(
                    "candle refresh failed",
                    extra={"action": "candle_refresh_failed", "market": label, "error": str(e)},
                )
    return {"markets": len(markets), "stored": stored, "failed": failed}


def register(registry: Registry, settings: ExchangesSettings | None = None) -> None:
    """``data.download`` (app requests) and ``data.refresh`` (every five minutes)."""
    config = settings if settings is not None else ExchangesSettings()

    async def handle(ctx: JobContext[DownloadRequest]) -> dict[str, Any]:
        return await run_download(ctx, config)

    async def refresh(ctx: JobContext[RefreshMarkets]) -> dict[str, Any]:
        return await refresh_markets(ctx.pool, config, ctx.log)

    registry.job(KIND, payload=DownloadRequest, max_attempts=3, timeout_s=3600)(handle)
    registry.job(REFRESH_KIND, payload=RefreshMarkets, max_attempts=1, timeout_s=600)(refresh)
    registry.every(REFRESH_KIND, REFRESH_EVERY, REFRESH_KIND)


__all__ = ["KIND", "REFRESH_KIND", "refresh_markets", "register", "run_download"]
