"""The bot runner's SQL: load leased bots with their open trades and orders, and persist
a batch of candle steps (orders, trades, logs, notifications, bot state, credit posts and
voids) in one transaction, fenced by each bot's lease epoch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from worker.credits import TransferRequest
from worker.db import jsonb

from .credit_gate import CreditGate
from .model import BotState, StepOut

# Ownership: orders and trades with a signal_id are copies of a signal, owned by copy
# execution (public.signal_fan_out opens them, the signal's close closes them). The runner
# leaves them out of everything it loads, so a bot taken over never adopts a copy as its
# position, never closes one by its stop-loss, take-profit or strategy exit, and its paper
# account, balance and daily loss limit are its own. Bot statistics (SQL trigger) and the
# fan-out's own checks count both. See docs/bots.md, "Copies of signals".
LOAD_BOTS = """
select b.*, c.sealed_secret, c.is_testnet, s.content as strategy_content,
       (select p.preferences ->> 'notify_fills' from public.profiles p where p.id = b.user_id)
         as notify_fills,
       (select coalesce(sum(t.profit), 0) from public.trades t
         where t.bot_id = b.id and t.status = 'closed' and t.signal_id is null) as realized,
       (select coalesce(sum(t.profit), 0) from public.trades t
         where t.bot_id = b.id and t.status = 'closed' and t.signal_id is null
           and t.exit_time >= date_trunc('day', b.last_candle_at)) as day_pnl
  from public.bots b
  left join public.exchange_credentials c on c.id = b.exchange_credential_id
  left join public.strategies s on s.id = b.strategy_id
 where b.id = any(%(ids)s::uuid[])
"""
LOAD_OPEN_TRADES = """
select t.*,
       -- the position's limit exits that timed out (cancelled unfilled or in part)
       (select count(*) from public.orders o
         where o.bot_id = t.bot_id and o.symbol = t.trading_pair and o.reason = 'signal'
           and o.order_type = 'limit' and o.status = 'canceled' and o.side <> t.side
           and o.decided_at >= t.entry_time)::int as exit_timeouts
  from public.trades t
 where t.bot_id = any(%(ids)s::uuid[]) and t.status = 'open' and t.signal_id is null
 order by t.entry_time
"""
LOAD_OPEN_ORDERS = """
select * from public.orders
 where bot_id = any(%(ids)s::uuid[]) and status in ('pending', 'open') and signal_id is null
 order by created_at
"""
RECORD_PROTECTION = "select public.bot_record_protection(%(orders)s, %(trades)s)"
RECORD_EQUITY = "select public.bot_record_equity(%(rows)s, %(trades)s)"
APPLY_STEPS = """
select stale_bot_id::text from public.bot_apply_steps(%(steps)s, %(orders)s, %(trades)s, %(logs)s, %(notes)s)
"""


def _equity_only(out: StepOut) -> bool:
    """A step whose only write is the bot's equity row (a bot holding through the candle)."""
    return not (
        out.orders
        or out.trades
        or out.logs
        or out.notes
        or out.credits
        or out.protective
        or out.stops
        or out.resized
        or out.status
    )


async def load_bots(
    pool: AsyncConnectionPool, ids: Sequence[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Bot rows (with their key, realized and today's profit), open trades, open orders."""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        params = {"ids": list(ids)}
        bots = await (await cur.execute(LOAD_BOTS, params)).fetchall()
        trades = await (await cur.execute(LOAD_OPEN_TRADES, params)).fetchall()
        orders = await (await cur.execute(LOAD_OPEN_ORDERS, params)).fetchall()
    return bots, trades, orders


async def persist_steps(
    pool: AsyncConnectionPool,
    steps: Sequence[tuple[BotState, StepOut, datetime | None]],
    also: Callable[[psycopg.AsyncConnection[Any], set[str]], Awaitable[None]] | None = None,
    settled: Collection[str] = (),
) -> set[str]:
    """Write the steps of many bots in one transaction; returns the bots whose lease epoch
    is stale (nothing of theirs was written: another worker owns them now). ``also`` writes
    more in the same transaction, given the stale bots (the outcome of owners' requests).
    ``settled``: bots stopped, paused (or set to error) once the close their stop waited for
    was settled; their status goes through while that stop still waits (``bots_pause_settles_close``
    holds anyone else's, and keeps the bot running once its owner set it running since)."""
    if not steps:
        return set()
    heads: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    trades: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    protective: list[dict[str, Any]] = []
    stops: list[dict[str, Any]] = []
    equity: list[dict[str, Any]] = []
    resized: list[dict[str, Any]] = []
    credit_ops: dict[str, list[TransferRequest]] = {}
    for bot, out, candle_at in steps:
        resized.extend(out.resized)
        if out.equity is not None:
            equity.append(out.equity)
            if candle_at is None and _equity_only(out):
                continue  # fenced by bot_record_equity itself: no lease or bot lock
        heads.append(
            {
                "bot_id": bot.id,
                "epoch": bot.epoch,
                "candle_at": None if candle_at is None else candle_at.isoformat(),
                "status": out.status,
                "status_reason": out.status_reason,
                "error_message": out.error_message,
            }
        )
        orders.extend(out.orders)
        trades.extend(out.trades)
        logs.extend(out.logs)
        notes.extend(out.notes)
        protective.extend(out.protective)
        stops.extend(out.stops)
        if out.credits:
            credit_ops[bot.id] = out.credits
    # A step may open and close the same trade (entry filled at the open, stop hit in the
    # candle) or place and fill the same order: the last state of each row wins.
    orders = list({o["client_order_id"]: o for o in orders}.values())
    trades = list({t["id"]: t for t in trades}.values())
    async with pool.connection() as conn, conn.transaction():
        if settled:
            await conn.execute(
                "select pg_catalog.set_config('tradefleet.settled_bots', %s, true)",
                (",".join(sorted(settled)),),
            )
        cur = await conn.execute(
            APPLY_STEPS,
            {
                "steps": jsonb(heads),
                "orders": jsonb(orders),
                "trades": jsonb(trades),
                "logs": jsonb(logs),
                "notes": jsonb(notes),
            },
        )
        stale = {str(r[0]) for r in await cur.fetchall()}
        if protective or stops:
            await conn.execute(
                RECORD_PROTECTION,
                {
                    "orders": jsonb(list({p["client_order_id"]: p for p in protective}.values())),
                    "trades": jsonb(list({t["id"]: t for t in stops}.values())),
                },
            )
        # One statement for the batch, fenced by the epochs. The equity rows take no lock
        # (a row is recomputed each candle, never written over a newer epoch or candle);
        # the resized trades' bots are the steps', so their leases are locked above, in
        # the one bot-id order: locking more here could deadlock with lease renewals.
        if equity or resized:
            await conn.execute(
                RECORD_EQUITY,
                {
                    "rows": jsonb([e for e in equity if e["bot_id"] not in stale]),
                    "trades": jsonb([t for t in resized if t["bot_id"] not in stale]),
                },
            )
        ops = [
            op for bot_id, bot_ops in credit_ops.items() if bot_id not in stale for op in bot_ops
        ]
        await CreditGate.settle(conn, ops)
        if also is not None:
            await also(conn, stale)
    return stale
