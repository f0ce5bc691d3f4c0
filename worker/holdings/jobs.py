"""Job kinds of the holdings capability and their registration with the fleet.

Kinds (enqueued by SQL triggers from ``webhook_events`` and ``sync_runs``, or periodically):

- ``holdings.connection_added``   CONNECTION_ADDED/UPDATED/FIXED: accounts + positions of it
- ``holdings.sync_account``       ACCOUNT_HOLDINGS_UPDATED: incremental sync of that account
- ``holdings.aggregate``          aggregate a user's holdings once after a burst of account syncs
- ``holdings.connection_status``  CONNECTION_BROKEN / CONNECTION_DELETED
- ``holdings.full_sync``          a requested ``sync_runs`` row (manual refresh or nightly)
- ``holdings.nightly``            daily: a nightly sync run for every linked user
- ``holdings.update_prices``      every few minutes: prices of watched symbols
- ``holdings.place_order``        route an order to the connection holding the symbol
- ``holdings.webhook_sweep``      periodically: retry waiting SnapTrade events, end the
  unmatched ones after ``HOLDINGS_WEBHOOK_WAIT_H``

Connection events apply in the order they happened (their ``eventTimestamp``), whatever
their arrival: a CONNECTION_BROKEN or CONNECTION_DELETED naming a connection not known yet
waits for it (``worker.inbox``), and is woken when a connection event or an account sync
establishes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from worker import inbox
from worker.errors import Fatal, TradefleetError
from worker.fleet.registry import JobContext, NoPayload, Payload, Registry
from worker.holdings import queries as q
from worker.holdings.alpaca import AlpacaClient, Quote
from worker.holdings.batching import SyncBatches
from worker.holdings.prices import QuoteSource, update_prices
from worker.holdings.provider import HoldingsProvider, ProviderCredentials
from worker.holdings.routing import route_order
from worker.holdings.settings import HoldingsSettings
from worker.holdings.snaptrade import SnapTradeClient, SnapTradeConfig
from worker.holdings.sync import HoldingsSync, SyncStats
from worker.inbox import mark_failed, mark_processed
from worker.sealing import MASTER_KEYS_ENV, Keyring

PRICE_INTERVAL = timedelta(minutes=5)
NIGHTLY_INTERVAL = timedelta(days=1)
WEBHOOK_SWEEP_INTERVAL = timedelta(minutes=5)


class SnapTradeEvent(Payload):
    """The webhook kinds' payload, built by a trigger from a stored SnapTrade webhook.
    Fields a kind needs are checked by its handler, which marks the webhook failed."""

    webhook_event_id: UUID | None = None
    event_type: str | None = None
    provider_user_id: str | None = None
    provider_account_id: str | None = None
    provider_connection_id: str | None = None
    occurred_at: datetime | None = None


class FullSync(Payload):
    """``holdings.full_sync``, enqueued by a trigger on ``sync_runs``."""

    sync_run_id: UUID


class Aggregate(Payload):
    """``holdings.aggregate``, enqueued by ``holdings_request_aggregate`` in SQL."""

    user_id: UUID


class PlaceOrder(Payload):
    user_id: UUID
    symbol: str
    action: str
    units: Decimal
    order_type: str = "Market"
    time_in_force: str = "Day"
    price: Decimal | None = None
    client_order_id: str | None = None


@dataclass
class HoldingsDeps:
    """What the handlers need besides the pool; built from :class:`HoldingsSettings` by default.
    Without a keyring (``TRADEFLEET_MASTER_KEYS`` unset) brokerage syncs and orders are off;
    price updates still run."""

    keyring: Keyring | None
    providers: dict[str, HoldingsProvider] = field(default_factory=dict)
    snaptrade: SnapTradeClient | None = None
    quotes: QuoteSource | None = None
    # Accounts of one user synced at once (full syncs).
    concurrency: int = 8
    # Provider requests in flight at once across all holdings jobs of this process: enough
    # to hide the providers' latency, few enough for their rate limits and for httpx's pool
    # (which scans its connections on every request).
    max_fetches: int = 16
    # How long a SnapTrade event that cannot apply yet waits for its predecessor.
    webhook_wait: timedelta = timedelta(hours=72)
    _fetch_gate: asyncio.Semaphore | None = field(default=None, init=False, repr=False)
    _batches: dict[int, SyncBatches] = field(default_factory=dict, init=False, repr=False)

    def batches(self, pool: AsyncConnectionPool) -> SyncBatches:
        """This process's coalesced account lookups and sync writes on ``pool``."""
        found = self._batches.get(id(pool))
        if found is None or found.pool is not pool:
            found = self._batches[id(pool)] = SyncBatches(pool)
        return found

    @property
    def fetch_gate(self) -> asyncio.Semaphore:
        if self._fetch_gate is None:
            self._fetch_gate = asyncio.Semaphore(self.max_fetches)
        return self._fetch_gate

    @classmethod
    def from_settings(cls, settings: HoldingsSettings) -> HoldingsDeps:
        providers: dict[str, HoldingsProvider] = {}
        snaptrade = None
        if settings.snaptrade_client_id and settings.snaptrade_consumer_key:
            snaptrade = SnapTradeClient(
                SnapTradeConfig(
                    client_id=settings.snaptrade_client_id,
                    consumer_key=settings.snaptrade_consumer_key.get_secret_value(),
                    base_url=settings.snaptrade_api_url,
                )
            )
            providers["snaptrade"] = snaptrade
        alpaca = AlpacaClient(base_url=settings.alpaca_api_url, data_url=settings.alpaca_data_url)
        providers["alpaca"] = alpaca
        quotes: QuoteSource | None = None
        if settings.alpaca_data_key_id and settings.alpaca_data_secret:
            quotes = AlpacaQuotes(
                alpaca,
                ProviderCredentials(
                    settings.alpaca_data_key_id, settings.alpaca_data_secret.get_secret_value()
                ),
            )
        return cls(
            keyring=settings.sealing.keyring() if settings.sealing.configured else None,
            providers=providers,
            snaptrade=snaptrade,
            quotes=quotes,
            webhook_wait=timedelta(hours=settings.holdings_webhook_wait_h),
        )


@dataclass
class AlpacaQuotes:
    client: AlpacaClient
    creds: ProviderCredentials
    name: str = "alpaca"

    async def quotes(self, symbols: Sequence[str]) -> list[Quote]:
        return await self.client.latest_quotes(self.creds, symbols)


async def _mark_webhook(ctx: JobContext[SnapTradeEvent], error: str | None) -> None:
    event_id = ctx.payload.webhook_event_id
    if not event_id:
        return
    async with ctx.pool.connection() as conn:
        if error is None:
            await mark_processed(conn, event_id)
        else:
            await mark_failed(conn, event_id, error[:500])


def _required(payload: SnapTradeEvent, key: str) -> str:
    value = getattr(payload, key)
    if not value:
        raise Fatal(f"job payload is missing {key!r}")
    return str(value)


def register(
    registry: Registry,
    deps: HoldingsSettings | HoldingsDeps | Callable[[], HoldingsDeps] | None = None,
) -> None:
    """Declare the holdings job kinds and periodic jobs. ``deps`` (or a factory) is built
    lazily on the first job from the settings given (or the environment's) otherwise."""
    cache: list[HoldingsDeps] = []

    def get() -> HoldingsDeps:
        if not cache:
            cache.append(
                deps
                if isinstance(deps, HoldingsDeps)
                else deps()
                if callable(deps)
                else HoldingsDeps.from_settings(deps or HoldingsSettings())
            )
        return cache[0]

    def keyring(d: HoldingsDeps) -> Keyring:
        if d.keyring is None:
            raise Fatal(
                f"{MASTER_KEYS_ENV} is not set on this worker: brokerage holdings sync is off"
            )
        return d.keyring

    def engine(ctx: JobContext[Any]) -> HoldingsSync:
        d = get()
        return HoldingsSync(
            ctx.pool,
            keyring(d),
            d.providers,
            concurrency=d.concurrency,
            fetch_gate=d.fetch_gate,
            batches=d.batches(ctx.pool),
        )

    def webhook_job(
        kind: str,
        body: Callable[[JobContext[SnapTradeEvent], HoldingsSync], Awaitable[dict[str, Any]]],
        *,
        marks_processed: bool = False,
    ) -> None:
        """``marks_processed``: the body marks the event processed itself (in its last write)."""

        @registry.job(kind, payload=SnapTradeEvent)
        async def handler(ctx: JobContext[SnapTradeEvent]) -> dict[str, Any]:
            try:
                result = await body(ctx, engine(ctx))
            except TradefleetError as e:
                await _mark_webhook(ctx, str(e))
                raise
            event_id = ctx.payload.webhook_event_id
            if "waiting" in result:
                pass  # the body set the event waiting
            elif "ignored" in result and event_id:
                async with ctx.pool.connection() as conn:
                    await inbox.finish(conn, event_id, "ignored", str(result["ignored"]))
            elif not marks_processed:
                await _mark_webhook(ctx, None)
            return result

    async def connection_added(
        ctx: JobContext[SnapTradeEvent], sync: HoldingsSync
    ) -> dict[str, Any]:
        p = ctx.payload
        provider_user_id = _required(p, "provider_user_id")
        async with ctx.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                q.ENSURE_CONNECTION,
                {
                    "provider": "snaptrade",
                    "provider_user_id": provider_user_id,
                    "provider_connection_id": _required(p, "provider_connection_id"),
                    "brokerage_name": None,
                },
            )
            row = await cur.fetchone()
            if row is None or row["id"] is None:
                return {"ignored": "connection was deleted"}
            # Active again, unless a later event (a CONNECTION_BROKEN) already came.
            await cur.execute(
                q.CONNECTION_EVENT,
                {
                    "provider": "snaptrade",
                    "provider_connection_id": p.provider_connection_id,
                    "status": "active",
                    "reason": None,
                    "occurred_at": p.occurred_at,
                },
            )
            await cur.execute(
                "select user_id from public.brokerage_connections where id = %(id)s", row
            )
            owner = await cur.fetchone()
        assert owner is not None
        started = time.monotonic()
        run_id = await sync.start_run(
            owner["user_id"], trigger="connection_added", scope="accounts", connection_id=row["id"]
        )
        try:
            stats = await sync.sync_user(owner["user_id"], connection_id=row["id"])
            await sync.finish_run(run_id, stats, started)
        finally:
            sync.established.add(("snaptrade", provider_user_id))
            await sync.wake_established()
        return stats.as_dict()

    async def sync_account(ctx: JobContext[SnapTradeEvent], sync: HoldingsSync) -> dict[str, Any]:
        p = ctx.payload
        event_id = p.webhook_event_id
        provider_user_id = _required(p, "provider_user_id")
        if not await sync.batches.live.submit(("snaptrade", provider_user_id)):
            # A late update of an account whose connection is gone: nothing to show.
            return {"ignored": f"every connection of snaptrade user {provider_user_id} is deleted"}
        try:
            _, stats = await sync.sync_account(
                "snaptrade",
                provider_user_id,
                _required(p, "provider_account_id"),
                webhook_event_id=str(event_id) if event_id else None,
            )
        finally:
            # Only a sync that found the account unknown set up its connection (even if it
            # failed after): its waiting events are woken. A known account has nobody to wake.
            await sync.wake_established()
        return stats.as_dict()

    async def connection_status(
        ctx: JobContext[SnapTradeEvent], sync: HoldingsSync
    ) -> dict[str, Any]:
        p = ctx.payload
        deleted = p.event_type == "CONNECTION_DELETED"
        status = "deleted" if deleted else "broken"
        connection = _required(p, "provider_connection_id")
        reason = (
            "deleted at the brokerage link provider"
            if deleted
            else "the brokerage disconnected; reconnect it from your brokerage settings"
        )
        async with (
            ctx.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            # A wake for this connection comes after we decided to wait, or we see it.
            await inbox.lock_keys(conn, "snaptrade", [f"connection:{connection}"])
            await cur.execute(
                q.CONNECTION_EVENT,
                {
                    "provider": "snaptrade",
                    "provider_connection_id": connection,
                    "status": status,
                    "reason": reason,
                    "occurred_at": p.occurred_at,
                },
            )
            rows = await cur.fetchall()
            if not rows and p.webhook_event_id:
                # Before its CONNECTION_ADDED: wait for the connection to be known.
                why = f"{p.event_type} waits for connection {connection}"
                await inbox.wait(conn, p.webhook_event_id, [f"connection:{connection}"], why)
                return {"waiting": why}
        changed = [r for r in rows if r["applied"]]
        await sync.aggregate(sorted({r["user_id"] for r in changed}, key=str))
        return {"connections": len(changed), "status": status}

    webhook_job("holdings.connection_added", connection_added)
    webhook_job("holdings.sync_account", sync_account, marks_processed=True)
    webhook_job("holdings.connection_status", connection_status)

    @registry.job("holdings.full_sync", payload=FullSync)
    async def full_sync(ctx: JobContext[FullSync]) -> dict[str, Any] | None:
        stats: SyncStats | None = await engine(ctx).run_requested(ctx.payload.sync_run_id)
        return None if stats is None else stats.as_dict()

    @registry.job("holdings.aggregate", payload=Aggregate)
    async def aggregate(ctx: JobContext[Aggregate]) -> dict[str, Any]:
        changed = await engine(ctx).aggregate_pending([ctx.payload.user_id])
        return {"changed": changed}

    @registry.job("holdings.nightly", payload=NoPayload)
    async def nightly(ctx: JobContext[NoPayload]) -> dict[str, Any]:
        async with ctx.pool.connection() as conn:
            cur = await conn.execute(q.NIGHTLY_SYNC_RUNS)
            return {"sync_runs": cur.rowcount}

    @registry.job("holdings.update_prices", payload=NoPayload)
    async def prices(ctx: JobContext[NoPayload]) -> dict[str, Any]:
        result = await update_prices(ctx.pool, get().quotes)
        return {
            "watched": result.watched,
            "priced": result.priced,
            "revalued": result.holdings_revalued,
        }

    @registry.job("holdings.place_order", payload=PlaceOrder, max_attempts=1)
    async def place_order(ctx: JobContext[PlaceOrder]) -> dict[str, Any]:
        d = get()
        if d.snaptrade is None:
            raise Fatal(
                "SnapTrade is not configured on this worker (SNAPTRADE_CLIENT_ID/CONSUMER_KEY)"
            )
        p = ctx.payload
        routed = await route_order(
            ctx.pool,
            keyring(d),
            d.snaptrade,
            user_id=p.user_id,
            symbol=p.symbol,
            action=p.action,
            units=p.units,
            order_type=p.order_type,
            time_in_force=p.time_in_force,
            price=p.price,
            client_order_id=p.client_order_id,
        )
        return {
            "connection_id": str(routed.connection_id),
            "account_id": str(routed.account_id),
            "brokerage_order_id": routed.brokerage_order_id,
            "status": routed.status,
        }

    @registry.job("holdings.webhook_sweep", payload=NoPayload)
    async def webhook_sweep(ctx: JobContext[NoPayload]) -> dict[str, Any]:
        # Not get(): the sweep needs no provider nor master keys.
        if isinstance(deps, HoldingsDeps):
            wait = deps.webhook_wait
        elif callable(deps):
            wait = get().webhook_wait
        else:
            wait = timedelta(hours=(deps or HoldingsSettings()).holdings_webhook_wait_h)
        async with ctx.pool.connection() as conn:
            return await inbox.sweep_waiting(conn, ["snaptrade"], wait)

    registry.every("holdings.nightly", NIGHTLY_INTERVAL, "holdings.nightly")
    registry.every("holdings.webhook_sweep", WEBHOOK_SWEEP_INTERVAL, "holdings.webhook_sweep")
    registry.every("holdings.update_prices", PRICE_INTERVAL, "holdings.update_prices")
