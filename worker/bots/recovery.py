"""Orders a live bot's previous worker placed but never recorded.

A worker can die after the exchange accepted an entry and before the transaction that
records it committed. When a live bot is adopted, the entries that may be in that state
are looked up on the exchange by their client order ids:

- on a plan that charges credits per trade, the entry's credit hold committed before the
  order was placed, so each pending hold of the bot without an order row names one;
- on a plan that charges nothing, a flat bot's entry client ids of the candles after its
  committed progress (``last_candle_at``) are asked for, at most ``HORIZON`` of them: a
  worker writes a bot's progress at least every ``PROGRESS_EVERY`` candles, so an entry
  it placed and did not record was decided within that many candles of it.

An order the exchange has is recorded as its worker would have recorded it (the fill opens
the trade, the hold is posted), and the bot's progress moves to the candle that decided it,
so that candle is not replayed as a missed entry. A hold whose order the exchange does not
have stays pending: it is voided once the bot's progress passes its candle
(``void_orphans``).

Exits need no such record: an exit's client id is derived from the bot, the candle and
the leg, so replaying the candle that decided it finds the order placed under that id.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from psycopg_pool import AsyncConnectionPool

from worker.candles import timeframe_seconds
from worker.exchanges import Order, OrderStatus, make_client_order_id

from . import credit_gate, trades
from .model import BotState, InFlight, StepOut, derived_id

log = logging.getLogger("tradefleet.bots.recovery")

HORIZON = 16
"""Candles after a bot's committed progress whose entries are looked for when no credit
hold names them (more than the runner's ``PROGRESS_EVERY``)."""

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


async def recover_unrecorded_entries(
    pool: AsyncConnectionPool, bot: BotState, *, charged: bool, now: datetime
) -> int:
    """Record the entries of ``bot`` (live) that its exchange has and the database lacks;
    what is found goes to ``bot.pending_out`` (written on adoption). ``charged``: the
    bot's plan holds credits for entries. Returns how many were found."""
    cfg = bot.config
    found = 0
    if charged:
        async with pool.connection() as conn:
            rows = await (await conn.execute(UNRECORDED_ENTRIES, {"bot": bot.id})).fetchall()
        for cid, hold, decided_at in rows:
            order = await bot.exchange.fetch_order_by_client_id(str(cid), cfg.symbol)
            if order is not None:
                record(bot, order, str(cid), decided_at, uuid.UUID(str(hold)))
                found += 1
        return found
    if bot.position is not None or bot.in_flight:
        return 0
    step = timedelta(seconds=timeframe_seconds(cfg.timeframe))
    start = bot.last_candle_at
    if start is None:  # never written: the candles before now
        span = int(step.total_seconds())
        start = datetime.fromtimestamp(int(now.timestamp()) // span * span, now.tzinfo)
        start -= step * (HORIZON + 1)
    for k in range(1, HORIZON + 1):
        candle = start + step * k
        if candle + step > now:
            break
        cid = make_client_order_id(cfg.order_key, candle.isoformat(), "entry")
        order = await bot.exchange.fetch_order_by_client_id(cid, cfg.symbol)
        if order is not None:
            record(bot, order, cid, candle, None)
            return 1
    return 0


def record(
    bot: BotState, order: Order, cid: str, decided_at: datetime, hold: uuid.UUID | None
) -> None:
    """Record an entry found on the exchange as the worker that placed it would have."""
    cfg = bot.config
    out = bot.pending_out = bot.pending_out or StepOut()
    out.orders.append(trades.order_row(bot, order, cid, "signal", decided_at))
    if order.is_open or (order.status is OrderStatus.CLOSED and bot.position is not None):
        # Filled later (or after the exit of a reversal): the next step records the fill.
        bot.in_flight[cid] = InFlight(
            cid,
            derived_id(cid, "order"),
            "entry",
            order.side,
            order.amount,
            "signal",
            hold,
            decided_at,
            order.price if order.type == "limit" else None,  # a limit entry times out
        )
    elif order.status is OrderStatus.CLOSED and order.filled > 0:
        trades.open_trade(bot, order, decided_at, decided_at, out)
        if hold is not None:
            out.credits.append(credit_gate.post(cid, hold))
    elif hold is not None:
        out.credits.append(credit_gate.void(cid, hold))
    out.log(
        cfg,
        "warning",
        f"entry order {cid} was placed before a restart and not recorded: "
        f"found on the exchange ({getattr(order.status, 'value', order.status)}) and recorded now",
        action="entry_recovered",
        client_order_id=cid,
    )
    log.warning(
        "unrecorded entry recovered",
        extra={"bot_id": bot.id, "action": "entry_recovered", "client_order_id": cid},
    )
    advance(bot, decided_at)


def advance(bot: BotState, decided_at: datetime | None) -> None:
    """The bot's progress is at least the candle that decided its recorded orders: the
    worker that placed them had stepped through it."""
    if decided_at is not None and (bot.last_candle_at is None or bot.last_candle_at < decided_at):
        bot.last_candle_at = decided_at
