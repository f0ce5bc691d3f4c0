"""The signals job kinds: fan a signal out to its subscribers (copy execution and
notifications, set-based in SQL), charge the copies' credits in chunks, renew strategy
subscriptions."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import Field

from worker.errors import Retryable
from worker.fleet.registry import JobContext, Payload

FAN_OUT = "select executed, skipped, notified from public.signal_fan_out(%(signal_id)s, %(phase)s)"
CHARGE = "select charged, rejected from public.signal_charge_copies(%(signal_id)s, %(chunk)s)"
# Copies a chunk would charge still pending once the chunks found nothing more to charge:
# another transaction holds them (a chunk in flight on a worker whose job was taken over).
PENDING = """
select count(*) as pending from public.signal_executions e
  join public.credit_accounts a on a.user_id = e.subscriber_id and a.kind = 'user'
 where e.signal_id = %(signal_id)s and e.charge_status = 'pending'
"""
RENEW = "select renewed, expired from public.renew_strategy_subscriptions(%(limit)s)"

# Copies charged per transaction: a chunk is charged set-based, so bigger chunks cost little
# more per copy; the chunk's payers' accounts stay locked until it commits.
CHARGE_CHUNK = 5000


class Fanout(Payload):
    """``signals.fanout``, enqueued by a trigger on ``signals``."""

    signal_id: uuid.UUID
    phase: Literal["open", "update", "close"] = "open"


class Renew(Payload):
    limit: int = Field(default=1000, gt=0)


async def fan_out(
    pool: AsyncConnectionPool, signal_id: uuid.UUID | str, phase: str = "open"
) -> dict[str, int]:
    """Run one phase of a signal for every subscriber in one transaction (orders persisted
    at its commit), then charge the copies' credits chunk by chunk. Safe to repeat; ends
    with :class:`Retryable` while copies another transaction holds are still pending."""
    try:
        async with pool.connection() as conn:
            async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(FAN_OUT, {"signal_id": signal_id, "phase": phase})
                result: dict[str, int] = dict(await cur.fetchone() or {})
            result.update(charged=0, rejected=0)
            while phase == "open":
                async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(CHARGE, {"signal_id": signal_id, "chunk": CHARGE_CHUNK})
                    row = await cur.fetchone() or {"charged": 0, "rejected": 0}
                result["charged"] += row["charged"]
                result["rejected"] += row["rejected"]
                if row["charged"] + row["rejected"] == 0:
                    break
            if phase == "open":
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(PENDING, {"signal_id": signal_id})
                    pending = (await cur.fetchone() or {"pending": 0})["pending"]
                if pending:
                    # Charged by chunks that skip locked copies: the job ends only when no
                    # copy waits for its charge, or a chunk rolled back elsewhere leaves its
                    # copies uncharged for good.
                    raise Retryable(
                        f"{pending} copies of signal {signal_id} still pending, "
                        "locked by another charge"
                    )
            return result
    except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected) as e:
        raise Retryable(f"fan-out of signal {signal_id} raced another writer") from e
    except psycopg.OperationalError as e:
        raise Retryable(f"database unavailable: {e}") from e


async def handle_fanout(ctx: JobContext[Fanout]) -> dict[str, int]:
    signal_id, phase = ctx.payload.signal_id, ctx.payload.phase
    result = await fan_out(ctx.pool, signal_id, phase)
    ctx.log.info(
        "signal fanned out",
        extra={"action": "signal_fanout", "signal_id": signal_id, "phase": phase, **result},
    )
    return result


async def handle_renew(ctx: JobContext[Renew]) -> dict[str, Any]:
    async with ctx.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(RENEW, {"limit": ctx.payload.limit})
        return dict(await cur.fetchone() or {})
