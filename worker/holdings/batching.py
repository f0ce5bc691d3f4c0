"""Coalescing of concurrent calls into batches: one database round trip for many jobs.

A worker runs many account syncs at once; each ends with the same two statements (look the
account up, write what was fetched). A :class:`Coalescer` sends the first call at once and
gathers the calls that arrive while it is in flight into the next batch, so a lone job waits
for nothing and a busy worker makes one round trip (and one commit) per batch.
:class:`SyncBatches` holds the coalescers of the holdings sync's statements.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar
from uuid import UUID

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker import inbox
from worker.errors import Bug, Retryable
from worker.holdings import queries as q

T = TypeVar("T")
R = TypeVar("R")

# Per item: its result, or the exception that item alone raises.
RunMany = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]


class Coalescer(Generic[T, R]):
    def __init__(
        self, run_many: RunMany[T, R], *, max_batch: int = 64, max_in_flight: int = 1
    ) -> None:
        self._run_many = run_many
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def submit(self, item: T) -> R:
        """``item``'s result, computed in a batch with whatever else is waiting."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    results = await self._run_many([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"batch of {len(batch)} answered {len(results)} results")
                except BaseException as e:  # every caller of the batch sees why it failed
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(e)
                    if not isinstance(e, Exception):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue  # its job was cancelled (timeout); the write stands, it is idempotent
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._in_flight -= 1


AccountKey = tuple[str, str, str]  # provider, provider user id, provider account id
LoginKey = tuple[str, str]  # provider, provider user id


class SyncBatches:
    """The account lookups, the writes and the wakes of incremental syncs running at the
    same time in this process, coalesced into one round trip (or one transaction) each (see
    :mod:`worker.holdings.batching`)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.live: Coalescer[LoginKey, bool] = Coalescer(self._live_many)
        self.lookups: Coalescer[AccountKey, dict[str, Any] | None] = Coalescer(self._lookup_many)
        self.finishes: Coalescer[dict[str, Any], dict[str, Any]] = Coalescer(self._finish_many)
        self.wakes: Coalescer[LoginKey, None] = Coalescer(self._wake_many)
        self.aggregates: Coalescer[UUID, int] = Coalescer(self._aggregate_many)

    async def _aggregate_many(self, user_ids: Sequence[UUID]) -> list[int | BaseException]:
        """The pending aggregations of these users in one set-based call; each user's
        result is the number of aggregated rows the call changed (for all of them)."""
        rows = await self._fetch(q.AGGREGATE_PENDING, {"user_ids": sorted(set(user_ids), key=str)})
        changed = int(rows[0]["changed"]) if rows else 0
        return [changed] * len(user_ids)

    async def _live_many(self, keys: Sequence[LoginKey]) -> list[bool | BaseException]:
        """Has each provider user any connection that is not deleted?"""
        rows = await self._fetch(
            q.USERS_HAVE_LIVE_CONNECTION,
            {"providers": [k[0] for k in keys], "provider_user_ids": [k[1] for k in keys]},
        )
        live = {int(r["idx"]) - 1: bool(r["live"]) for r in rows}
        return [live.get(i, False) for i in range(len(keys))]

    async def _wake_many(self, keys: Sequence[LoginKey]) -> list[BaseException | None]:
        """Wake the events waiting for any connection of these provider users: one
        transaction per provider, its keys locked in one order (see :func:`inbox.lock_keys`)."""
        by_provider: dict[str, set[str]] = {}
        for provider, provider_user_id in keys:
            by_provider.setdefault(provider, set()).add(provider_user_id)
        async with self.pool.connection() as conn:
            for provider, users in sorted(by_provider.items()):
                async with conn.transaction():
                    cur = await conn.execute(
                        q.CONNECTION_KEYS_OF_USERS,
                        {"provider": provider, "provider_user_ids": sorted(users)},
                    )
                    row = await cur.fetchone()
                    names = list(row[0]) if row else []
                    if names:
                        # After an event that decided to wait at this moment has committed it.
                        await inbox.lock_keys(conn, provider, names)
                        await inbox.wake(conn, [provider], names)
        return [None] * len(keys)

    async def _fetch(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return await cur.fetchall()

    async def _lookup_many(
        self, keys: Sequence[AccountKey]
    ) -> list[dict[str, Any] | BaseException | None]:
        rows = await self._fetch(
            q.ACCOUNTS_FOR_SYNC,
            {
                "providers": [k[0] for k in keys],
                "provider_user_ids": [k[1] for k in keys],
                "provider_account_ids": [k[2] for k in keys],
            },
        )
        found: dict[int, dict[str, Any]] = {}
        for r in rows:
            found.setdefault(int(r.pop("idx")) - 1, r)
        return [found.get(i) for i in range(len(keys))]

    async def _finish_many(
        self, items: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any] | BaseException]:
        rows = await self._fetch(q.FINISH_ACCOUNT_SYNCS, {"items": Jsonb(list(items))})
        out: list[dict[str, Any] | BaseException] = [
            Bug("holdings_finish_account_syncs returned nothing for an account") for _ in items
        ]
        for r in rows:
            i = int(r["idx"])
            out[i] = (
                Retryable(
                    f"writing the sync of account {items[i]['account_id']} failed: {r['error']}"
                )
                if r["error"]
                else r
            )
        return out
