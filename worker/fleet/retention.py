"""Retention of the history tables: the periodic job ``fleet.prune``.

Every ``RETENTION_INTERVAL_S`` (hourly by default) one worker of the fleet deletes what is
older than its keep (:class:`~worker.fleet.settings.RetentionSettings`) from

- ``bot_logs`` (every line, ``BOT_LOGS_KEEP_S``, 30 days),
- ``webhook_events`` processed or ignored (``WEBHOOK_EVENTS_KEEP_S``, 30 days),
- ``notifications`` read (``NOTIFICATIONS_KEEP_S``, 90 days),
- ``jobs`` succeeded or cancelled (``JOBS_KEEP_S``, 7 days),
- ``service_checks``, the history of the services' health (``SERVICE_CHECKS_KEEP_S``, 7 days),
- ``api_usage_minutes``, the per-minute API usage rollups (``API_USAGE_MINUTES_KEEP_S``,
  30 days; the per-day rollups stay).

Failed and waiting webhook events, unread notifications, and dead, queued or running jobs
are never history. A partitioned history (:data:`PARTITIONED`: ``bot_logs``,
``webhook_events`` and ``notifications``, one partition per week; ``api_usage_minutes``, one
per day) loses whole weeks or days: ``public.drop_history_partitions`` detaches and drops
every partition whose last day is older than the keep, without deleting a row. Webhook
events and notifications keep some old rows (those that are not history), so their old
weeks are folded: the rows that stay are copied into one partition ``<table>_kept`` before
the weeks are dropped. Only the rows of the default partition (days that had no
partition) and of ``_kept`` are deleted in batches. The periodic job ``fleet.partitions``
(every ``RETENTION_INTERVAL_S`` too) creates the partitions of the week ahead
(``public.create_history_partitions``).

Each call of ``public.prune_history`` deletes one batch
(``RETENTION_BATCH`` rows, oldest first) in its own short transaction and skips rows
another transaction holds, so writers (bots logging, the queue) are never blocked; a run
that takes longer than :data:`RUN_BUDGET_S` stops between batches and the next run goes on.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Literal

from psycopg_pool import AsyncConnectionPool
from pydantic import Field

from worker.fleet.registry import JobContext, Payload, Registry
from worker.fleet.settings import MAX_KEEP_S, RetentionSettings

History = Literal[
    "bot_logs", "webhook_events", "notifications", "jobs", "service_checks", "api_usage_minutes"
]
HISTORIES: tuple[History, ...] = (
    "bot_logs",
    "webhook_events",
    "notifications",
    "jobs",
    "service_checks",
    "api_usage_minutes",
)
PARTITIONED: frozenset[History] = frozenset(
    {"bot_logs", "webhook_events", "notifications", "api_usage_minutes"}
)
RUN_BUDGET_S = 600.0
PRUNE = "select public.prune_history(%(history)s, make_interval(secs => %(keep_s)s), %(batch)s)"
DROP = "select public.drop_history_partitions(%(history)s, make_interval(secs => %(keep_s)s))"
CREATE = "select public.create_history_partitions()"


class Partitions(Payload):
    """No arguments: each history's partitions up to its ``ahead``."""


async def drop_partitions(pool: AsyncConnectionPool, history: History, keep_s: float) -> int:
    """Detach and drop the partitions of ``history`` older than ``keep_s``; returns
    how many went."""
    async with pool.connection() as conn:
        cur = await conn.execute(DROP, {"history": history, "keep_s": keep_s})
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def create_partitions(pool: AsyncConnectionPool) -> int:
    """Create the partitions of the days ahead; returns how many were new."""
    async with pool.connection() as conn:
        cur = await conn.execute(CREATE)
        row = await cur.fetchone()
    return int(row[0]) if row else 0


class Prune(Payload):
    """Optional keeps (seconds) that override the settings for one run."""

    bot_logs_keep_s: float | None = Field(default=None, gt=0, le=MAX_KEEP_S)
    webhook_events_keep_s: float | None = Field(default=None, gt=0, le=MAX_KEEP_S)
    notifications_keep_s: float | None = Field(default=None, gt=0, le=MAX_KEEP_S)
    jobs_keep_s: float | None = Field(default=None, gt=0, le=MAX_KEEP_S)
    service_checks_keep_s: float | None = Field(default=None, gt=0, le=MAX_KEEP_S)
    api_usage_minutes_keep_s: float | None = Field(default=None, gt=0, le=MAX_KEEP_S)


async def prune_history(
    pool: AsyncConnectionPool,
    history: History,
    keep_s: float,
    *,
    batch: int = 1000,
    pause_s: float = 0.0,
    deadline: float | None = None,
) -> tuple[int, bool]:
    """Delete ``history`` older than ``keep_s`` batch after batch; returns how many rows
    went and whether it finished (False: ``deadline``, a ``time.monotonic()``, came first)."""
    total = 0
    while True:
        async with pool.connection() as conn:
            cur = await conn.execute(PRUNE, {"history": history, "keep_s": keep_s, "batch": batch})
            row = await cur.fetchone()
        deleted = int(row[0]) if row else 0
        total += deleted
        if deleted < batch:
            return total, True
        if deadline is not None and time.monotonic() >= deadline:
            return total, False
        if pause_s:
            await asyncio.sleep(pause_s)


def register(registry: Registry, settings: RetentionSettings) -> None:
    async def prune(ctx: JobContext[Prune]) -> dict[str, object]:
        deadline = time.monotonic() + RUN_BUDGET_S
        deleted: dict[str, int] = {}
        dropped: dict[str, int] = {}
        unfinished: list[str] = []
        for history in HISTORIES:
            override: float | None = getattr(ctx.payload, f"{history}_keep_s")
            keep_s: float = override or getattr(settings, f"{history}_keep_s")
            if history in PARTITIONED:
                dropped[history] = await drop_partitions(ctx.pool, history, keep_s)
            n, done = await prune_history(
                ctx.pool,
                history,
                keep_s,
                batch=settings.retention_batch,
                pause_s=settings.retention_pause_s,
                deadline=deadline,
            )
            deleted[history] = n
            if not done:
                unfinished.append(history)
        if unfinished or any(deleted.values()) or any(dropped.values()):
            ctx.log.info(
                "history pruned",
                extra={
                    "action": "history_pruned",
                    "deleted": deleted,
                    "partitions_dropped": dropped,
                    "unfinished": unfinished,
                },
            )
        return {"deleted": deleted, "partitions_dropped": dropped, "unfinished": unfinished}

    async def partitions(ctx: JobContext[Partitions]) -> dict[str, object]:
        created = await create_partitions(ctx.pool)
        if created:
            ctx.log.info(
                "history partitions created",
                extra={"action": "history_partitions_created", "partitions_created": created},
            )
        return {"created": created}

    registry.job("fleet.prune", payload=Prune, max_attempts=3, timeout_s=RUN_BUDGET_S + 300)(prune)
    registry.every("fleet.prune", timedelta(seconds=settings.retention_interval_s), "fleet.prune")
    registry.job("fleet.partitions", payload=Partitions, max_attempts=3, timeout_s=300)(partitions)
    registry.every(
        "fleet.partitions", timedelta(seconds=settings.retention_interval_s), "fleet.partitions"
    )
