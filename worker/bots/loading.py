"""Loading leased bots into the runner and indexing them by market.

``adopt`` is the runner's adoption: holds of bots whose order never happened are voided,
the bots are read from the database and rebuilt (``adoption``; a multi-pair bot as its
legs, ``multipair``), their protective orders adopted, and the bots that cannot run are
recorded with their reason (a record the database refuses for one bot's rows stops that
bot alone: ``isolation``). ``index``/``unindex`` keep the runner's market index (the
bots stepped when a market's candle closes): a multi-pair bot under each of its markets.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from . import multipair, protection
from .credit_gate import CreditGate
from .model import BotConfig, BotState, StepOut
from .store import load_bots

if TYPE_CHECKING:
    from .runner import BotRunner

log = logging.getLogger("tradefleet.bots.runner")
ADOPTED = "what this bot's worker recorded on loading it"
"""``isolation.refusal``'s words for the rows written when a bot is loaded."""


async def close(bot: BotState) -> None:
    """Release the bot's exchange clients (every leg's share of a live account)."""
    for leg in bot.legs or [bot]:
        await leg.exchange.close()


def index(runner: BotRunner, bot: BotState) -> None:
    for key in multipair.markets_of(bot):
        runner.markets[key].add(bot.id)


def unindex(runner: BotRunner, bot: BotState) -> None:
    for key in multipair.markets_of(bot):
        runner.markets[key].discard(bot.id)
        if not runner.markets[key]:
            del runner.markets[key]


async def adopt(runner: BotRunner, leased: dict[str, int]) -> None:
    """Load bots the runner now leases (under its lock); reconcile their orders before they
    trade. Holds of these bots whose order never happened (their worker died or lost them
    between the hold and the persist) are voided first."""
    fresh = {b: e for b, e in leased.items() if b not in runner.bots}
    voided = await CreditGate.void_orphans(runner.pool, fresh)
    if voided:
        log.info(
            "orphaned holds voided",
            extra={"action": "orphan_holds_voided", "count": voided},
        )
    rows, trades, orders = await load_bots(runner.pool, sorted(leased))
    await runner.credits.load_terms(str(r["user_id"]) for r in rows)
    trades_by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    orders_by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in trades:
        trades_by[str(t["bot_id"])].append(t)
    for o in orders:
        orders_by[str(o["bot_id"])].append(o)
    failed: list[tuple[BotState, StepOut, datetime | None]] = []
    built: list[BotState] = []
    for row in rows:
        bot_id = str(row["id"])
        runner._reload.discard(bot_id)
        if row["status"] != "running" or bot_id in runner.bots:
            continue
        try:
            args = (row, leased[bot_id], trades_by[bot_id], orders_by[bot_id])
            if multipair.is_multi(BotConfig.from_row(row)):
                bot = await multipair.build(runner.builder, *args)
            else:
                bot = await runner.builder.build(*args)
        except (psycopg.Error, OSError):
            raise  # the database, not the bot: the caller tries again
        except Exception as e:  # one bad bot never stops the others
            failed.append((*runner.builder.failed(row, leased[bot_id], e), None))
            continue
        for leg in bot.legs or [bot]:
            if leg.pending_out is not None:
                failed.append((bot, leg.pending_out, None))
                leg.pending_out = None
        built.append(bot)
        runner.bots[bot_id] = bot
        index(runner, bot)
        log.info(
            "bot adopted",
            extra={"bot_id": bot_id, "action": "bot_adopted", "epoch": bot.epoch},
        )
    await protection.adopt(runner.pool, [leg for b in built for leg in b.legs or [b]])
    if failed:
        await _record(runner, failed)


async def _record(
    runner: BotRunner, steps: list[tuple[BotState, StepOut, datetime | None]]
) -> None:
    """Write what adoption found (orders reconciled with the exchange, entries recovered)
    and the errors of the bots that cannot run, in one transaction. Refused for one bot's
    rows (``worker.db.refused_by_data``), the bots are written apart (``isolation``): the
    others' records go in, and the refused bot stops with the database's message. A bot
    whose records did not commit is thrown away and loaded again (memory never runs ahead
    of the database); a failure that may pass is raised, as is a refusal with nothing
    beside it written."""
    apart = await runner.persist(steps, ADOPTED, "adopt")
    # Bots stopped for their own rows were thrown away; built or not, they and the bots of
    # which nothing committed are loaded again (a bot in ``error`` is not built).
    runner._reload |= (apart.stopped | apart.lost) - apart.stale
    if apart.lost:
        assert apart.failure is not None  # set with every lost bot
        await runner._throw_away(apart.lost, "adopt", apart.failure)
        raise apart.failure
