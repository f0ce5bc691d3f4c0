"""Bot leases: which worker runs which running bot, and the epoch that fences its writes.

How a bot runner uses it (the runner is a capability; the fleet only keeps the leases)::

    def register(registry: Registry) -> None:
        registry.lease_task("bots.runner", run_bots)

    async def run_bots(leases: LeaseManager) -> None:
        async for change in leases.changes():          # gained/lost, in order
            if change.gained:
                start_bot(change.bot_id, change.epoch)  # write orders with lease_epoch=epoch
            else:
                stop_bot(change.bot_id)                 # stop at once: another worker owns it

- Registering a ``lease_task`` makes the worker take part in bot leasing (it announces
  ``metadata.leases = true`` and its ``WORKER_CAPACITY``). The worker calls
  :meth:`LeaseManager.sync` every ``LEASE_TTL_S / 3``: it renews held leases, frees bots
  that stopped running, gives up leases above its fair share when workers join and takes
  free/expired ones below it (``public.acquire_bot_leases``, balanced by capacity).
- :attr:`LeaseManager.owned` maps ``bot_id -> epoch`` for every lease held now. Every order
  or trade written for a bot must carry that epoch as ``lease_epoch``: the database rejects a
  stale one (``serialization_failure``, constraint ``bot_leases_fencing``), so a worker that
  lost a bot (paused, partitioned) cannot write for it. Treat that error as "lost the bot".
- If the database cannot be reached for a whole TTL, every lease is reported lost locally
  (peers may already have taken them over); they come back, with a new epoch, on
  reconnection.
- On shutdown the worker first awaits the hooks given to :meth:`LeaseManager.before_release`
  (the runner finishes the step it is in, so nothing it committed a part of is left for a
  peer to clean up), then emits ``lost`` for every bot and releases the leases so peers take
  over at once instead of after the TTL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg_pool import AsyncConnectionPool

ACQUIRE = "select bot_id::text, epoch from public.acquire_bot_leases(%(worker_id)s, %(ttl_s)s, %(live_s)s)"
RELEASE = "select public.release_bot_leases(%(worker_id)s, %(bot_ids)s::uuid[]) as n"

log = logging.getLogger("tradefleet.leases")


@dataclass(frozen=True)
class LeaseChange:
    """A bot this worker gained (start running it with ``epoch``) or lost (stop now)."""

    bot_id: str
    epoch: int
    gained: bool


Listener = Callable[[LeaseChange], Awaitable[None] | None]


class LeaseManager:
    """Holds this worker's bot leases and tells its listeners what it gained and lost."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        worker_id: str,
        *,
        ttl_s: float,
        live_s: float | None = None,
    ) -> None:
        self.pool = pool
        self.worker_id = worker_id
        self.ttl_s = ttl_s
        self.live_s = live_s
        self.owned: dict[str, int] = {}
        self._valid_until = 0.0
        self._listeners: list[Listener] = []
        self._before_release: list[Callable[[], Awaitable[None]]] = []
        self._queues: list[asyncio.Queue[LeaseChange | None]] = []
        self._lock = asyncio.Lock()
        self._closed = False

    def epoch(self, bot_id: str) -> int | None:
        """The epoch to write for ``bot_id``, or None if this worker does not hold it."""
        if time.monotonic() >= self._valid_until:
            return None
        return self.owned.get(bot_id)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(change)`` (sync or async) for every gain and loss."""
        self._listeners.append(listener)

    def before_release(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Await ``hook()`` on shutdown before the leases are released (bounded by the TTL,
        after which peers may take the bots over anyway)."""
        self._before_release.append(hook)

    async def quiesce(self) -> None:
        """Run the :meth:`before_release` hooks once (the worker is about to drain: its
        leases may go at the next sync), each bounded by the TTL."""
        hooks, self._before_release = self._before_release, []
        if not hooks:
            return
        tasks = [asyncio.ensure_future(hook()) for hook in hooks]
        done, late = await asyncio.wait(tasks, timeout=self.ttl_s)
        for task in late:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning(
                    "lease holder failed to stop",
                    extra={"action": "lease_quiesce_failed", "error": str(task.exception())},
                )

    async def changes(self) -> AsyncIterator[LeaseChange]:
        """Async iterator of changes, starting with a ``gained`` for every lease held now;
        ends when the worker shuts down (after the final ``lost`` changes)."""
        q: asyncio.Queue[LeaseChange | None] = asyncio.Queue()
        for bot_id, epoch in sorted(self.owned.items()):
            q.put_nowait(LeaseChange(bot_id, epoch, True))
        self._queues.append(q)
        try:
            while (change := await q.get()) is not None:
                yield change
        finally:
            self._queues.remove(q)

    async def sync(self) -> list[LeaseChange]:
        """Acquire/renew in the database and emit the differences; returns them."""
        async with self._lock:
            if self._closed:
                return []
            started = time.monotonic()
            try:
                async with self.pool.connection() as conn:
                    cur = await conn.execute(
                        ACQUIRE,
                        {"worker_id": self.worker_id, "ttl_s": self.ttl_s, "live_s": self.live_s},
                    )
                    rows = await cur.fetchall()
            except (psycopg.Error, OSError) as e:
                log.warning(
                    "lease sync failed", extra={"action": "lease_sync_failed", "error": str(e)}
                )
                if started >= self._valid_until and self.owned:
                    return await self._apply({})
                return []
            self._valid_until = started + self.ttl_s
            return await self._apply({str(r[0]): int(r[1]) for r in rows})

    async def release(self, bot_ids: Sequence[str] | None = None) -> None:
        """Give up some (or all) leases now, so a peer takes them over without waiting."""
        async with self._lock:
            keep = (
                {}
                if bot_ids is None
                else {b: e for b, e in self.owned.items() if b not in set(bot_ids)}
            )
            await self._apply(keep)
            async with self.pool.connection() as conn:
                await conn.execute(
                    RELEASE,
                    {
                        "worker_id": self.worker_id,
                        "bot_ids": None if bot_ids is None else list(bot_ids),
                    },
                )

    async def close(self) -> None:
        """Shutdown: let the holders finish, report every bot lost, release them all, end
        the ``changes()`` iterators."""
        await self.quiesce()
        try:
            await self.release()
        except (psycopg.Error, OSError) as e:
            log.warning(
                "lease release failed", extra={"action": "lease_release_failed", "error": str(e)}
            )
        self._closed = True
        for q in self._queues:
            q.put_nowait(None)

    async def _apply(self, now_owned: dict[str, int]) -> list[LeaseChange]:
        changes: list[LeaseChange] = []
        for bot_id, epoch in sorted(self.owned.items()):
            if now_owned.get(bot_id) != epoch:
                changes.append(LeaseChange(bot_id, epoch, False))
        for bot_id, epoch in sorted(now_owned.items()):
            if self.owned.get(bot_id) != epoch:
                changes.append(LeaseChange(bot_id, epoch, True))
        self.owned = dict(now_owned)
        for change in changes:
            log.info(
                "bot lease gained" if change.gained else "bot lease lost",
                extra={
                    "action": "lease_gained" if change.gained else "lease_lost",
                    "bot_id": change.bot_id,
                    "epoch": change.epoch,
                },
            )
            for q in self._queues:
                q.put_nowait(change)
            for listener in self._listeners:
                try:
                    result = listener(change)
                    if result is not None:
                        await result
                except Exception:
                    log.exception(
                        "lease listener failed", extra={"action": "lease_listener_failed"}
                    )
        return changes
