"""The webhook inbox (``public.webhook_events``): how a job records what became of an event.

A shared tool: billing and holdings both finish the events they handle through it, and it
speaks only the inbox table's SQL.

Providers deliver in any order. An event that cannot apply yet (a refund before its
payment, a disconnect before its connect) waits (:func:`wait`) with the keys of what it
waits for; the handler that applies the predecessor wakes (:func:`wake`) the events
waiting for its keys (the owning area's trigger enqueues them again); the capability's periodic sweep
(:func:`sweep_waiting`) retries the waiting ones and ends those still unmatched after the
capability's wait as ``ignored``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, Literal

import psycopg
from psycopg_pool import AsyncConnectionPool

Db = AsyncConnectionPool | psycopg.AsyncConnection[Any]
EventId = Any
"""A ``webhook_events.id`` (uuid, or its text)."""

FINISH = """
update public.webhook_events
   set status = %(status)s, error = %(error)s, attempts = attempts + 1, processed_at = now()
 where id = %(id)s
"""
FAIL = """
update public.webhook_events set status = 'failed', attempts = attempts + 1, error = %(error)s
 where id = %(id)s
"""
WAIT = """
update public.webhook_events
   set status = 'waiting', waiting_for = %(keys)s, error = %(reason)s, attempts = attempts + 1,
       processed_at = null
 where id = %(id)s
"""
WAKE = """
update public.webhook_events set status = 'received'
 where status = 'waiting' and provider = any(%(providers)s) and waiting_for && %(keys)s::text[]
"""
EXPIRE_WAITING = """
update public.webhook_events
   set status = 'ignored', processed_at = now(),
       error = format('nothing it waited for arrived within %%s h (%%s)', %(hours)s::text, error)
 where status = 'waiting' and provider = any(%(providers)s) and received_at <= now() - %(wait)s
"""
RETRY_WAITING = """
update public.webhook_events set status = 'received'
 where status = 'waiting' and provider = any(%(providers)s)
"""


async def _execute(db: Db, query: str, params: dict[str, Any]) -> None:
    await _count(db, query, params)


async def _count(db: Db, query: str, params: dict[str, Any]) -> int:
    if isinstance(db, AsyncConnectionPool):
        async with db.connection() as conn:
            cur = await conn.execute(query, params)
            return cur.rowcount
    cur = await db.execute(query, params)
    return cur.rowcount


async def finish(
    db: Db, event_id: EventId, status: Literal["processed", "ignored"], error: str | None = None
) -> None:
    """The event is done with: ``processed`` (it had its effect) or ``ignored`` (it has
    none), with a note in ``error`` when something about it needs a look."""
    await _execute(db, FINISH, {"id": event_id, "status": status, "error": error})


async def mark_processed(db: Db, event_id: EventId) -> None:
    """The event had its effect."""
    await finish(db, event_id, "processed")


async def mark_failed(db: Db, event_id: EventId, error: str) -> None:
    """Handling the event failed with ``error`` (the job's retries decide what follows)."""
    await _execute(db, FAIL, {"id": event_id, "error": error})


# Every key in one round trip, in the order given (unnest keeps it; the subquery's order by
# makes that explicit).
LOCK_KEYS = """
select count(pg_advisory_xact_lock(hashtextextended(k.name, 0)))
  from (select u.name from unnest(%(names)s::text[]) with ordinality as u(name, ord) order by u.ord) k
"""


async def lock_keys(conn: psycopg.AsyncConnection[Any], provider: str, keys: Iterable[str]) -> None:
    """Serialise, until the transaction ends, with every other transaction of ``provider``
    naming one of ``keys``: take it before looking for the predecessor (a waiter) and before
    applying an event (a waker), and a wake is never missed by an event deciding to wait at
    the same moment. Keys are taken in one order, so two events never wait on each other."""
    names = [f"webhook:{provider}:{key}" for key in sorted({k for k in keys if k})]
    if names:
        await conn.execute(LOCK_KEYS, {"names": names})


async def wait(db: Db, event_id: EventId, keys: Iterable[str], reason: str) -> None:
    """The event cannot apply yet: it waits until an event with one of ``keys`` is applied
    (see :func:`wake`), or its capability's wait runs out (see :func:`sweep_waiting`).
    ``reason`` says what it waits for."""
    names = sorted({k for k in keys if k})
    if not names:
        raise ValueError("a waiting event needs at least one key to wait for")
    await _execute(db, WAIT, {"id": event_id, "keys": names, "reason": reason})


async def wake(db: Db, providers: Sequence[str], keys: Iterable[str]) -> int:
    """Events of ``providers`` waiting for any of ``keys`` become ``received`` again (the
    owning area's trigger enqueues their jobs). Call it in the transaction that applied the
    predecessor. Returns how many woke."""
    names = sorted({k for k in keys if k})
    if not names:
        return 0
    return await _count(db, WAKE, {"providers": list(providers), "keys": names})


async def sweep_waiting(db: Db, providers: Sequence[str], wait_for: timedelta) -> dict[str, int]:
    """The periodic look at waiting events of ``providers``: those received longer than
    ``wait_for`` ago end ``ignored`` with the reason they waited; the others are tried again
    (a backstop: :func:`lock_keys` already orders a wait and the wake it needs)."""
    params = {
        "providers": list(providers),
        "wait": wait_for,
        "hours": f"{wait_for.total_seconds() / 3600:g}",
    }
    expired = await _count(db, EXPIRE_WAITING, params)
    retried = await _count(db, RETRY_WAITING, params)
    return {"events_expired": expired, "events_retried": retried}
