"""Orders a live bot's previous worker placed but never recorded.

A worker can die after the exchange accepted an entry and before the transaction that
records it committed. The entry's credit hold committed before the order was placed, so
the hold names it: when a live bot is adopted, each pending hold of the bot without an
order row is looked up on the exchange by its client order id. An order the exchange has
is recorded as its worker would have recorded it (the fill opens the trade, the hold is
posted), and the bot's progress moves to the candle that decided it, so that candle is
not replayed as a missed entry. A hold whose order the exchange does not have stays
pending: it is voided once the bot's progress passes its candle (``void_orphans``).

Exits need no such record: an exit's client id is derived from the bot, the candle and
the leg, so replaying the candle that decided it finds the order placed under that id.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from worker.exchanges import OrderStatus

from . import credit_gate, engine
from .model import BotState, InFlight, StepOut, derived_id

log = logging.getLogger("tradefleet.bots.recovery")

UNRECORDED_ENTRIES = """
select h.reference_id, h.id, (h.metadata ->> 'decided_at')::timestamptz
  from public.credit_transfers h
 where h.reference_type = 'order'
   and h.phase = 'pending'
   and h.metadata ->> 'bot_id' = %(bot)s
   and h.metadata ? 'decided_at'
   and not exists (select 1 from public.credit_transfers r where r.pending_id = h.id)
   and not exists (select 1 from public.orders o where o.client_order_id = h.reference_id)
 order by 3, 1
"""


async def recover_unrecorded_entries(pool: AsyncConnectionPool, bot: BotState) -> int:
    """Record the entries of ``bot`` (live) that its exchange has and the database lacks;
    what is found goes to ``bot.pending_out`` (written on adoption). Returns how many."""
    async with pool.connection() as conn:
        rows = await (await conn.execute(UNRECORDED_ENTRIES, {"bot": bot.id})).fetchall()
    cfg = bot.config
    found = 0
    for cid, hold, decided_at in rows:
        order = await bot.exchange.fetch_order_by_client_id(str(cid), cfg.symbol)
        if order is None:
            continue
        found += 1
        hold_id = uuid.UUID(str(hold))
        out = bot.pending_out = bot.pending_out or StepOut()
        out.orders.append(engine.order_row(bot, order, str(cid), "signal", decided_at))
        if order.is_open or (order.status is OrderStatus.CLOSED and bot.position is not None):
            # Filled later (or after the exit of a reversal): the next step records the fill.
            bot.in_flight[str(cid)] = InFlight(
                str(cid),
                derived_id(str(cid), "order"),
                "entry",
                order.side,
                order.amount,
                "signal",
                hold_id,
                decided_at,
            )
        elif order.status is OrderStatus.CLOSED and order.filled > 0:
            engine._open_trade(bot, order, decided_at, decided_at, out)
            out.credits.append(credit_gate.post(str(cid), hold_id))
        else:
            out.credits.append(credit_gate.void(str(cid), hold_id))
        out.log(
            cfg,
            "warning",
            f"entry order {cid} was placed before a restart and not recorded: "
            f"found on the exchange ({order.status}) and recorded now",
            action="entry_recovered",
            client_order_id=str(cid),
        )
        log.warning(
            "unrecorded entry recovered",
            extra={"bot_id": bot.id, "action": "entry_recovered", "client_order_id": str(cid)},
        )
        advance(bot, decided_at)
    return found


def advance(bot: BotState, decided_at: datetime | None) -> None:
    """The bot's progress is at least the candle that decided its recorded orders: the
    worker that placed them had stepped through it."""
    if decided_at is not None and (bot.last_candle_at is None or bot.last_candle_at < decided_at):
        bot.last_candle_at = decided_at
