"""Keeping a failed write local to the bot whose rows failed it.

The runner writes many bots' steps (of many users) in one transaction: a close's steps
per chunk, the outcome of the owners' requests of a pass, the records of the bots it
loads. When the database refuses such a write for the data it was given (a value a column
cannot hold, a constraint one bot's order violates, a trigger refusing one bot's row:
``worker.db.refused_by_data``), writing the same bots again fails the same way every
time. ``persist_apart`` writes them again in halves, and the failing halves in halves
again, down to single bots: every bot whose rows commit keeps its step, and a bot whose
own rows are refused is named with its error. ``isolate`` then stops such a bot
(``refusal``: ``error``, with what failed as its ``error_message``) when other bots' rows
went in beside it; refused with nothing beside it written, the write itself may be at
fault (the schema, the code), and the bot is reloaded and stepped again instead.

A failure that may pass on its own (a restart, a deadlock, a lost connection) stops the
splitting: what was not written yet is reported as lost, for the caller to reload and
step again as after any failed write.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from psycopg_pool import AsyncConnectionPool

from worker.db import database_error, refused_by_data
from worker.errors import Fatal

from . import engine
from .model import BotState, StepOut
from .store import persist_steps

log = logging.getLogger("tradefleet.bots.runner")
Step = tuple[BotState, StepOut, datetime | None]
Write = Callable[[Sequence[Step]], Awaitable[set[str]]]
"""Writes some bots' steps in one transaction; returns the bots leased elsewhere now."""


@dataclass
class Apart:
    """The outcome of writing a refused write's bots in smaller groups."""

    written: set[str] = field(default_factory=set)
    """Bots whose step committed (or was fenced off: see ``stale``)."""
    stale: set[str] = field(default_factory=set)
    """Bots another worker leases now: nothing of theirs was written."""
    refused: dict[str, Exception] = field(default_factory=dict)
    """Bots whose own rows the database refused, written alone."""
    unwritten: set[str] = field(default_factory=set)
    """Bots not written because a write failed for another reason (``failure``)."""
    failure: Exception | None = None
    stopped: set[str] = field(default_factory=set)
    """Refused bots that ``isolate`` stopped (or tried to): memory holds their refused step."""
    lost: set[str] = field(default_factory=set)
    """Bots ``isolate`` wrote nothing of, because of ``failure``: to reload and step again."""


async def persist_apart(
    pool: AsyncConnectionPool, chunk: Sequence[Step], error: Exception, write: Write | None = None
) -> Apart:
    """Write the steps of ``chunk``, whose write as one transaction the database refused
    for its data (``error``), in halves (each its own transaction, through ``write``:
    ``persist_steps`` by default), splitting a refused half again until the bots it
    refuses are alone."""
    write = write or partial(persist_steps, pool)
    apart = Apart()
    if len(chunk) == 1:
        apart.refused[chunk[0][0].id] = error
        return apart
    middle = len(chunk) // 2
    groups = [list(chunk[middle:]), list(chunk[:middle])]
    while groups:
        group = groups.pop()
        try:
            apart.stale |= await write(group)
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


async def isolate(
    pool: AsyncConnectionPool,
    steps: Sequence[Step],
    error: Exception,
    what: str,
    write: Write | None = None,
) -> Apart:
    """Write ``steps``, refused for their data as one write (``error``), apart
    (``persist_apart``); stop the bots refused alone while other bots' rows commit
    (``refusal``, ``what`` naming the write), else report them ``lost`` with
    ``failure``. The caller forgets ``stale`` and throws ``stopped`` and ``lost`` away."""
    apart = await persist_apart(pool, steps, error, write)
    if apart.failure is not None:
        apart.lost = apart.unwritten | set(apart.refused)
        return apart
    if not apart.written:
        # Only a bot refused while other bots' rows go in is taken to be at fault itself.
        # With nothing beside it written (every bot refused, a bot replaying alone, a
        # one-bot write) the write may be at fault (the schema, the code): the bots are
        # reloaded and stepped again as after any failed write instead of being stopped.
        apart.lost, apart.failure = set(apart.refused), error
        return apart
    if apart.refused:
        bots = {b.id: b for b, _, _ in steps}
        refused = [(bots[b], e) for b, e in sorted(apart.refused.items())]
        stale = await stop_refused(pool, refused, what)
        apart.stale |= stale
        apart.stopped = set(apart.refused) - stale
    return apart


def refusal(bot: BotState, error: Exception, what: str) -> StepOut:
    """The step that stops a bot whose rows the database refused: status ``error``, its
    message naming what failed (``what``: the rows refused, e.g. ``of_close``), logged
    and notified; nothing else of the step."""
    db_error = database_error(error)
    if db_error is not None:
        reason = db_error.diag.message_primary or str(db_error)
        where = f" (SQLSTATE {db_error.sqlstate})" if db_error.sqlstate else ""
    else:
        reason, where = str(error) or type(error).__name__, ""
    out = StepOut()
    engine.fail(
        bot,
        Fatal(f"the database refused {what}: {reason}{where}"),
        out,
    )
    return out


def of_close(close: datetime) -> str:
    """``refusal``'s words for a candle close's write."""
    return f"this bot's orders and trades of the {close:%Y-%m-%d %H:%M} UTC close"


async def stop_refused(
    pool: AsyncConnectionPool, refused: Sequence[tuple[BotState, Exception]], what: str
) -> set[str]:
    """Stop the bots whose rows the database refused (``refusal``), fenced by their lease
    epochs; returns those another worker leases now. A failure is logged: the bots are
    reloaded, refused again and stopped on a later write."""
    log.warning(
        "the database refused some bots' rows: stopping those bots",
        extra={"action": "persist_refused", "bots": len(refused)},
    )
    try:
        return await persist_steps(pool, [(b, refusal(b, e, what), None) for b, e in refused])
    except Exception as e:
        log.warning(
            "stopping bots whose rows were refused failed",
            extra={"action": "persist_refused_failed", "error": str(e)},
        )
        return set()
