"""The webhook inbox (``public.webhook_events``): how a job records what became of an event.

A shared tool: billing and holdings both finish the events they handle through it, and it
speaks only the inbox table's SQL.
"""

from __future__ import annotations

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


async def _execute(db: Db, query: str, params: dict[str, Any]) -> None:
    if isinstance(db, AsyncConnectionPool):
        async with db.connection() as conn:
            await conn.execute(query, params)
    else:
        await db.execute(query, params)


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
