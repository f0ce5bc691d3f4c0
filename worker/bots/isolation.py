"""Keeping a failed write local to the bot whose rows failed it.

The runner writes a close's steps of many bots (of many users) in one transaction per
chunk. When the database refuses that write for the data it was given (a value a column
cannot hold, a constraint one bot's order violates, a trigger refusing one bot's row:
``worker.db.refused_by_data``), writing the same chunk again fails the same way on every
close. ``persist_apart`` writes such a chunk again in halves, and the failing halves in
halves again, down to single bots: every bot whose rows commit keeps its step, and a bot
whose own rows are refused is named with its error. ``refusal`` is the step that stops
such a bot (``error``, with what failed as its ``error_message``).

A failure that may pass on its own (a restart, a deadlock, a lost connection) stops the
splitting: what was not written yet is reported as unwritten, for the runner to reload
and step again as after any failed write.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from worker.db import database_error, refused_by_data
from worker.errors import Fatal

from . import engine
from .model import BotState, StepOut
from .store import persist_steps

log = logging.getLogger("tradefleet.bots.runner")
Step = tuple[BotState, StepOut, datetime | None]


@dataclass
class Apart:
    """The outcome of writing a refused chunk in smaller groups."""

    written: set[str] = field(default_factory=set)
    """Bots whose step committed (or was fenced off: see ``stale``)."""
    stale: set[str] = field(default_factory=set)
    """Bots another worker leases now: nothing of theirs was written."""
    refused: dict[str, Exception] = field(default_factory=dict)
    """Bots whose own rows the database refused, written alone."""
    unwritten: set[str] = field(default_factory=set)
    """Bots not written because a write failed for another reason (``failure``)."""
    failure: Exception | None = None


async def persist_apart(
    pool: AsyncConnectionPool, chunk: Sequence[Step], error: Exception
) -> Apart:
    """Write the steps of ``chunk``, whose write as one transaction the database refused
    for its data (``error``), in halves (each its own transaction), splitting a refused
    half again until the bots it refuses are alone."""
    apart = Apart()
    if len(chunk) == 1:
        apart.refused[chunk[0][0].id] = error
        return apart
    middle = len(chunk) // 2
    groups = [list(chunk[middle:]), list(chunk[:middle])]
    while groups:
        group = groups.pop()
        try:
            apart.stale |= await persist_steps(pool, group)
        except Exception as e:
            if not refused_by_data(e):
                apart.failure = e
                apart.unwritten = {b.id for g in [group, *groups] for b, _, _ in g}
                return apart
            if len(group) == 1:
                apart.refused[group[0][0].id] = e
            else:
                middle = len(group) // 2
                groups += [group[middle:], group[:middle]]  # the first half first
            continue
        apart.written |= {b.id for b, _, _ in group}
    return apart


def refusal(bot: BotState, error: Exception, close: datetime) -> StepOut:
    """The step that stops a bot whose rows the database refused: status ``error``, its
    message naming what failed, logged and notified; nothing else of the step."""
    db_error = database_error(error)
    if db_error is not None:
        reason = db_error.diag.message_primary or str(db_error)
        where = f" (SQLSTATE {db_error.sqlstate})" if db_error.sqlstate else ""
    else:
        reason, where = str(error) or type(error).__name__, ""
    out = StepOut()
    engine.fail(
        bot,
        Fatal(
            f"the database refused this bot's orders and trades of the "
            f"{close:%Y-%m-%d %H:%M} UTC close: {reason}{where}"
        ),
        out,
    )
    return out


async def stop_refused(
    pool: AsyncConnectionPool, refused: Sequence[tuple[BotState, Exception]], close: datetime
) -> set[str]:
    """Stop the bots whose rows the database refused (``refusal``), fenced by their lease
    epochs; returns those another worker leases now. A failure is logged: the bots are
    reloaded, refused again and stopped on a later close."""
    log.warning(
        "the database refused some bots' rows: stopping those bots",
        extra={"action": "persist_refused", "bots": len(refused)},
    )
    try:
        return await persist_steps(pool, [(b, refusal(b, e, close), None) for b, e in refused])
    except Exception as e:
        log.warning(
            "stopping bots whose rows were refused failed",
            extra={"action": "persist_refused_failed", "error": str(e)},
        )
        return set()
