"""The notify.deliver job: load a chunk of notifications with their users' channels,
deliver, record each channel's outcome; retry later (only what is still pending) when a
channel was temporarily unavailable."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from worker.errors import Retryable
from worker.fleet.registry import JobContext, Payload

from .channels import Channel
from .deliver import Outbound, deliver


class Deliver(Payload):
    """``notify.deliver``, enqueued by a trigger on ``notifications`` (100 ids a job)."""

    notification_ids: list[uuid.UUID]


LOAD = """
select n.id, n.title, n.body, n.channels, p.telegram_chat_id, p.discord_webhook_url
  from public.notifications n
  join public.profiles p on p.id = n.user_id
 where n.id = any(%(ids)s)
"""

RECORD = """
update public.notifications n
   set channels = n.channels || p.patch
  from jsonb_each(%(patches)s::jsonb) as p(id, patch)
 where n.id = p.id::uuid
"""


async def deliver_notifications(
    pool: AsyncConnectionPool, ids: list[uuid.UUID], channels: Mapping[str, Channel]
) -> dict[str, int]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(LOAD, {"ids": ids})
        rows = await cur.fetchall()
    notes = [
        Outbound(
            r["id"],
            r["title"],
            r["body"],
            {
                k: v
                for k, v in (
                    ("telegram", r["telegram_chat_id"]),
                    ("discord", r["discord_webhook_url"]),
                )
                if v
            },
            r["channels"] or {},
        )
        for r in rows
    ]
    patches = await deliver(notes, channels)
    if patches:
        async with pool.connection() as conn:
            await conn.execute(
                RECORD, {"patches": json.dumps({str(k): v for k, v in patches.items()})}
            )
    counts = {"sent": 0, "failed": 0, "retry": 0}
    for patch in patches.values():
        for state in patch.values():
            counts[state["status"]] += 1
    return counts


def make_handler(
    channels: Mapping[str, Channel] | Any,
) -> Callable[[JobContext[Deliver]], Awaitable[dict[str, int]]]:
    async def handle(ctx: JobContext[Deliver]) -> dict[str, int]:
        resolved = channels() if callable(channels) else channels
        counts = await deliver_notifications(ctx.pool, ctx.payload.notification_ids, resolved)
        if counts["retry"]:
            raise Retryable(
                f"{counts['retry']} channel deliveries still failing; retrying those only"
            )
        return counts

    return handle
