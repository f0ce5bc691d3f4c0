"""The holdings sync: accounts and positions from providers into Postgres, then aggregation.

Every write goes through SQL that enforces the rules (as-of guard, removal of positions no
longer reported, set-based aggregation); this module only fetches and hands rows over.
One failing account is recorded on the account and in the run's errors; the rest go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker.errors import Bug, Fatal, Retryable, TradefleetError
from worker.holdings import queries as q
from worker.holdings.batching import LoginKey, SyncBatches
from worker.holdings.models import BrokerageAccount
from worker.holdings.provider import (
    CashProvider,
    HoldingsProvider,
    ProviderCredentials,
    ProviderRejected,
)
from worker.inbox import mark_processed
from worker.sealing import Keyring

log = logging.getLogger(__name__)


@dataclass
class SyncStats:
    accounts_synced: int = 0
    positions_upserted: int = 0
    positions_removed: int = 0
    stale_skipped: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def add(self, other: SyncStats) -> None:
        self.accounts_synced += other.accounts_synced
        self.positions_upserted += other.positions_upserted
        self.positions_removed += other.positions_removed
        self.stale_skipped += other.stale_skipped
        self.errors.extend(other.errors)

    @property
    def status(self) -> str:
        if not self.errors:
            return "completed"
        return "partial" if self.accounts_synced else "failed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "accounts_synced": self.accounts_synced,
            "positions_upserted": self.positions_upserted,
            "positions_removed": self.positions_removed,
            "stale_skipped": self.stale_skipped,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class _Login:
    provider: str
    provider_user_id: str
    sealed_secret: str


def _describe(error: BaseException) -> str:
    # Our errors carry messages meant for users; anything else is reduced to its type.
    if isinstance(error, TradefleetError):
        return str(error)
    return f"{type(error).__name__} while syncing"


class HoldingsSync:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        keyring: Keyring,
        providers: Mapping[str, HoldingsProvider],
        *,
        concurrency: int = 8,
        fetch_gate: asyncio.Semaphore | None = None,
        batches: SyncBatches | None = None,
    ) -> None:
        self.pool = pool
        self.keyring = keyring
        self.providers = providers
        self.concurrency = concurrency
        # Provider requests in flight at once, shared by every job of the process: keeps the
        # shared HTTP client's pool small (httpcore scans it on every request) and providers'
        # rate limits respected.
        self.fetch_gate = fetch_gate or asyncio.Semaphore(concurrency)
        self.batches = batches or SyncBatches(pool)
        # Provider users of which this sync has made a connection known: events waiting for
        # it are woken by :meth:`wake_established` (the sync that establishes a connection
        # wakes its waiters; a sync of an account already known has nobody to wake).
        self.established: set[LoginKey] = set()

    # --- helpers -----------------------------------------------------------------------

    def provider(self, name: str) -> HoldingsProvider:
        try:
            return self.providers[name]
        except KeyError as e:
            raise Fatal(f"brokerage provider {name!r} is not configured on this worker") from e

    def credentials(self, provider_user_id: str | None, sealed: str | None) -> ProviderCredentials:
        if not provider_user_id or not sealed:
            raise Fatal("this brokerage connection has no stored login; link it again")
        return ProviderCredentials(provider_user_id, self.keyring.open_bytes(sealed).decode())

    async def _fetch(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return await cur.fetchall() if cur.description else []

    async def _one(self, sql: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = await self._fetch(sql, params)
        return rows[0] if rows else None

    async def wake_established(self) -> None:
        """Wake the events waiting for a connection this sync has established (with the wakes
        of the other syncs finishing now, in one transaction)."""
        established, self.established = self.established, set()
        await asyncio.gather(*(self.batches.wakes.submit(k) for k in sorted(established)))

    async def aggregate(self, user_ids: Sequence[UUID]) -> None:
        """Recompute the users' aggregated holdings (set-based, in SQL)."""
        if user_ids:
            await self._fetch(q.REFRESH_AGGREGATES, {"user_ids": list(user_ids)})

    async def aggregate_pending(self, user_ids: Sequence[UUID]) -> int:
        """Aggregate those of the users whose positions changed since their last aggregation.
        Calls made at the same time in this process are aggregated in one batch."""
        results = await asyncio.gather(*(self.batches.aggregates.submit(u) for u in user_ids))
        return max(results, default=0)

    # --- accounts ------------------------------------------------------------------------

    async def _store_accounts(
        self,
        user_id: UUID,
        login: _Login,
        accounts: Sequence[BrokerageAccount],
        connection_ids: Mapping[str, UUID] | None = None,
    ) -> dict[str, UUID]:
        """Upsert listed accounts under their connections; returns provider account id -> id."""
        by_connection: dict[str, list[BrokerageAccount]] = {}
        for acc in accounts:
            by_connection.setdefault(acc.provider_connection_id, []).append(acc)
        ids: dict[str, UUID] = {}
        for provider_connection_id, accs in by_connection.items():
            connection_id = (connection_ids or {}).get(provider_connection_id)
            if connection_id is None:
                row = await self._one(
                    q.ENSURE_CONNECTION,
                    {
                        "provider": login.provider,
                        "provider_user_id": login.provider_user_id,
                        "provider_connection_id": provider_connection_id,
                        "brokerage_name": accs[0].institution_name,
                    },
                )
                connection_id = row["id"] if row else None
                if connection_id is not None:
                    self.established.add((login.provider, login.provider_user_id))
            else:
                await self._fetch(
                    q.CONNECTION_NAME, {"id": connection_id, "name": accs[0].institution_name}
                )
            if connection_id is None:
                continue  # deleted connection: its accounts are not ours to show any more
            rows = await self._fetch(
                q.UPSERT_ACCOUNTS,
                {
                    "connection_id": connection_id,
                    "user_id": user_id,
                    "accounts": Jsonb(
                        [
                            {
                                "provider_account_id": a.provider_account_id,
                                "name": a.name,
                                "number_masked": a.number_masked,
                                "institution_name": a.institution_name,
                                "currency": a.currency,
                                "total_value": None
                                if a.total_value is None
                                else str(a.total_value),
                                "cash": None if a.cash is None else str(a.cash),
                            }
                            for a in accs
                        ]
                    ),
                },
            )
            ids.update({r["provider_account_id"]: r["id"] for r in rows})
        return ids

    # --- positions -----------------------------------------------------------------------

    async def sync_positions(
        self,
        provider: HoldingsProvider,
        creds: ProviderCredentials,
        account_id: UUID,
        provider_account_id: str,
    ) -> SyncStats:
        """Fetch one account's positions and apply them behind the as-of guard."""
        stats = SyncStats()
        async with self.fetch_gate:
            snapshot = await provider.positions(creds, provider_account_id)
        row = await self._one(
            q.APPLY_POSITIONS,
            {
                "account_id": account_id,
                "as_of": snapshot.as_of,
                "positions": Jsonb([h.as_json() for h in snapshot.holdings]),
            },
        )
        if row is None:
            raise Bug("holdings_apply_positions returned nothing")
        if row["applied"]:
            stats.accounts_synced = 1
            stats.positions_upserted = row["upserted"]
            stats.positions_removed = row["removed"]
        else:
            stats.stale_skipped = 1
            stats.accounts_synced = 1
        return stats

    async def _sync_accounts_positions(
        self,
        provider: HoldingsProvider,
        creds: ProviderCredentials,
        accounts: Mapping[str, UUID],
        *,
        reraise_retryable: bool = False,
    ) -> SyncStats:
        total = SyncStats()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(provider_account_id: str, account_id: UUID) -> SyncStats:
            async with gate:
                try:
                    return await self.sync_positions(
                        provider, creds, account_id, provider_account_id
                    )
                except Retryable:
                    if reraise_retryable:
                        raise  # a single-account job is simply tried again later
                    message = "the brokerage is busy; will retry on the next sync"
                    await self._fetch(
                        q.ACCOUNT_SYNC_ERROR, {"account_id": account_id, "error": message}
                    )
                    return SyncStats(errors=[{"account_id": str(account_id), "error": message}])
                except (TradefleetError, OSError) as e:
                    message = _describe(e)
                    log.warning(
                        "account sync failed",
                        extra={"account_id": str(account_id), "action": "sync", "error": message},
                    )
                    await self._fetch(
                        q.ACCOUNT_SYNC_ERROR, {"account_id": account_id, "error": message}
                    )
                    return SyncStats(errors=[{"account_id": str(account_id), "error": message}])

        for result in await asyncio.gather(*(one(p, a) for p, a in accounts.items())):
            total.add(result)
        return total

    # --- whole users ---------------------------------------------------------------------

    async def sync_user(self, user_id: UUID, *, connection_id: UUID | None = None) -> SyncStats:
        """Full sync: list accounts of every login, drop unlisted ones, fetch every account."""
        stats = SyncStats()
        rows = await self._fetch(
            q.CONNECTIONS_OF_USER, {"user_id": user_id, "connection_id": connection_id}
        )
        logins: dict[_Login, list[dict[str, Any]]] = {}
        for r in rows:
            logins.setdefault(
                _Login(r["provider"], r["provider_user_id"], r["sealed_user_secret"]), []
            ).append(r)
        for login, conns in logins.items():
            known = {
                c["provider_connection_id"]: c["id"] for c in conns if c["provider_connection_id"]
            }
            try:
                provider = self.provider(login.provider)
                creds = self.credentials(login.provider_user_id, login.sealed_secret)
                async with self.fetch_gate:
                    listed = await provider.accounts(creds)
            except (TradefleetError, OSError) as e:
                message = _describe(e)
                stats.errors.append(
                    {"connection_ids": ",".join(str(c["id"]) for c in conns), "error": message}
                )
                if isinstance(e, ProviderRejected) and e.connection_broken:
                    await self._fetch(
                        q.CONNECTIONS_BROKEN,
                        {"connection_ids": [c["id"] for c in conns], "reason": message},
                    )
                continue
            if login.provider == "alpaca":
                # One Alpaca login is one connection: its account belongs to it.
                listed = [
                    _with_connection(
                        a, conns[0]["provider_connection_id"] or a.provider_connection_id
                    )
                    for a in listed
                ]
                if conns[0]["provider_connection_id"] is None:
                    known[listed[0].provider_connection_id] = conns[0]["id"]
            if connection_id is not None:
                wanted = {c["provider_connection_id"] for c in conns if c["id"] == connection_id}
                listed = [a for a in listed if a.provider_connection_id in wanted]
            listed = await self._with_cash(provider, creds, listed)
            accounts = await self._store_accounts(user_id, login, listed, known)
            touched = sorted(
                {*known.values(), *(c["id"] for c in conns if c["provider_connection_id"])}, key=str
            )
            if connection_id is not None:
                touched = [connection_id]
            removed = await self._one(
                q.REMOVE_UNLISTED_ACCOUNTS,
                {
                    "connection_ids": touched,
                    "kept": list(accounts.values()),
                },
            )
            if removed:
                stats.positions_removed += int(removed["positions"])
            stats.add(await self._sync_accounts_positions(provider, creds, accounts))
            await self._fetch(q.CONNECTIONS_SYNCED, {"connection_ids": touched})
        await self.aggregate([user_id])
        return stats

    async def _with_cash(
        self,
        provider: HoldingsProvider,
        creds: ProviderCredentials,
        listed: Sequence[BrokerageAccount],
    ) -> list[BrokerageAccount]:
        """Accounts with their cash from the provider's balances, where the listing has none.
        Best effort: an account whose balances fail keeps the cash it had."""
        if not isinstance(provider, CashProvider):
            return list(listed)

        async def one(acc: BrokerageAccount) -> BrokerageAccount:
            if acc.cash is not None:
                return acc
            try:
                async with self.fetch_gate:
                    cash = await provider.account_cash(creds, acc.provider_account_id, acc.currency)
            except (TradefleetError, OSError) as e:
                log.warning(
                    "account balances failed", extra={"action": "balances", "error": _describe(e)}
                )
                return acc
            return acc if cash is None else replace(acc, cash=cash)

        return list(await asyncio.gather(*(one(a) for a in listed)))

    async def sync_account(
        self,
        provider_name: str,
        provider_user_id: str,
        provider_account_id: str,
        *,
        webhook_event_id: str | None = None,
    ) -> tuple[UUID, SyncStats]:
        """Incremental: one account's positions (its connection is set up first if unknown),
        recorded as a webhook sync run; the webhook event, when given, is marked processed.

        On success everything after the fetch is one call (positions behind the as-of guard,
        the run, the event, and a request to aggregate the user's holdings, which a
        ``holdings.aggregate`` job does once for a burst of account syncs). A ``Retryable``
        fetch error is raised (the job is tried again); other errors are recorded on the
        account and in the run.
        """
        started = time.monotonic()
        params = {
            "provider": provider_name,
            "provider_user_id": provider_user_id,
            "provider_account_id": provider_account_id,
        }
        row = await self.batches.lookups.submit(
            (provider_name, provider_user_id, provider_account_id)
        )
        if row is None:
            login_row = await self._one(
                q.LOGIN_BY_PROVIDER_USER,
                {"provider": provider_name, "provider_user_id": provider_user_id},
            )
            if login_row is None:
                raise Fatal(
                    f"{provider_name} user {provider_user_id} is not linked to any Tradefleet user"
                )
            login = _Login(provider_name, provider_user_id, login_row["sealed_user_secret"])
            creds = self.credentials(provider_user_id, login.sealed_secret)
            async with self.fetch_gate:
                everything = await self.provider(provider_name).accounts(creds)
            listed = [a for a in everything if a.provider_account_id == provider_account_id]
            await self._store_accounts(login_row["user_id"], login, listed)
            row = await self._one(q.ACCOUNT_FOR_SYNC, params)
            if row is None:
                raise Fatal(
                    f"{provider_name} does not list account {provider_account_id} for this user"
                )
        user_id: UUID = row["user_id"]
        account_id: UUID = row["account_id"]
        stats = SyncStats()
        if row["status"] != "deleted":
            creds = self.credentials(row["provider_user_id"], row["sealed_user_secret"])
            try:
                async with self.fetch_gate:
                    snapshot = await self.provider(provider_name).positions(
                        creds, provider_account_id
                    )
            except Retryable:
                raise  # a single-account job is simply tried again later
            except (TradefleetError, OSError) as e:
                message = _describe(e)
                log.warning(
                    "account sync failed",
                    extra={"account_id": str(account_id), "action": "sync", "error": message},
                )
                await self._fetch(
                    q.ACCOUNT_SYNC_ERROR, {"account_id": account_id, "error": message}
                )
                stats.errors.append({"account_id": str(account_id), "error": message})
            else:
                done = await self.batches.finishes.submit(
                    {
                        "account_id": str(account_id),
                        "as_of": snapshot.as_of.isoformat(),
                        "positions": [h.as_json() for h in snapshot.holdings],
                        "webhook_event_id": webhook_event_id,
                        "duration_ms": int((time.monotonic() - started) * 1000),
                    }
                )
                stats.accounts_synced = 1
                if done["applied"]:
                    stats.positions_upserted, stats.positions_removed = (
                        done["upserted"],
                        done["removed"],
                    )
                else:
                    stats.stale_skipped = 1
                return user_id, stats
        # Nothing applied (deleted connection, or a failed fetch): record it the long way.
        await self.record_run(user_id, stats, started, trigger="webhook", scope="incremental")
        if webhook_event_id is not None:
            await mark_processed(self.pool, webhook_event_id)
        return user_id, stats

    # --- sync runs ---------------------------------------------------------------------------

    async def run_requested(self, sync_run_id: UUID) -> SyncStats | None:
        """Carry out a requested sync run (manual or nightly) and record its stats."""
        run = await self._one(q.START_SYNC_RUN, {"id": sync_run_id})
        if run is None:
            return None  # already finished (a duplicate job) or gone with its user
        started = time.monotonic()
        try:
            stats = await self.sync_user(run["user_id"], connection_id=run["connection_id"])
        except Retryable:
            raise
        except TradefleetError as e:
            stats = SyncStats(errors=[{"error": _describe(e)}])
        finally:
            # A listing may have made connections known that events wait for.
            await self.wake_established()
        await self.finish_run(sync_run_id, stats, started)
        return stats

    async def start_run(
        self,
        user_id: UUID,
        *,
        trigger: str,
        scope: str,
        connection_id: UUID | None = None,
        account_id: UUID | None = None,
    ) -> UUID:
        row = await self._one(
            q.INSERT_SYNC_RUN,
            {
                "user_id": user_id,
                "connection_id": connection_id,
                "account_id": account_id,
                "trigger": trigger,
                "scope": scope,
            },
        )
        if row is None:
            raise Bug("sync_runs insert returned nothing")
        run_id: UUID = row["id"]
        return run_id

    async def record_run(
        self, user_id: UUID, stats: SyncStats, started: float, *, trigger: str, scope: str
    ) -> None:
        """One finished run in one statement (webhook-driven syncs, which nobody requested)."""
        await self._fetch(
            q.RECORD_SYNC_RUN,
            {
                "user_id": user_id,
                "trigger": trigger,
                "scope": scope,
                "status": stats.status,
                "accounts_synced": stats.accounts_synced,
                "positions_upserted": stats.positions_upserted,
                "positions_removed": stats.positions_removed,
                "errors": json.dumps(stats.errors),
                "duration_ms": int((time.monotonic() - started) * 1000),
            },
        )

    async def finish_run(self, run_id: UUID, stats: SyncStats, started: float) -> None:
        await self._fetch(
            q.FINISH_SYNC_RUN,
            {
                "id": run_id,
                "status": stats.status,
                "accounts_synced": stats.accounts_synced,
                "positions_upserted": stats.positions_upserted,
                "positions_removed": stats.positions_removed,
                "errors": json.dumps(stats.errors),
                "duration_ms": int((time.monotonic() - started) * 1000),
            },
        )


def _with_connection(account: BrokerageAccount, provider_connection_id: str) -> BrokerageAccount:
    return BrokerageAccount(
        provider_account_id=account.provider_account_id,
        provider_connection_id=provider_connection_id,
        name=account.name,
        number_masked=account.number_masked,
        institution_name=account.institution_name,
        currency=account.currency,
        total_value=account.total_value,
        cash=account.cash,
    )
