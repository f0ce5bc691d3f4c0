"""Live positions protected on the exchange: the stop-loss (and take-profit where the market
can hold one) rests on the exchange from the moment the entry fills, so the position keeps
its stop while the fleet is down, deploying or cut off from the database.

- ``sync`` (after each step) places what the open position needs, replaces an order whose
  trigger moved (the owner edited the stop-loss, or a trailing stop followed the price up at
  a candle close) and cancels what no position needs any more. Client order ids derive from
  the bot, the trade, the leg and the trigger, so a step repeated after a crash finds the
  order it placed instead of placing a second one. An id never sent before is placed
  without a lookup first: the exchange refuses a second open order under one client id, and
  a refused or unanswered placement is looked up before the error counts.
- ``survey`` (before a close's steps) reads the open orders of each exchange account (and
  market type) once for all its bots; ``poll`` (before the fleet's own stop check) asks the
  exchange about a resting order only when it has left that list; the fill, with its real price, commission and time (``fetch_my_trades``), becomes
  the trade's exit. A worker adopting a bot loads its open protective orders (``adopt``), so
  a stop that filled while no worker ran is recorded once, on the adopting worker's next step.
- ``cancel_all`` runs before the fleet exits by another path (a signal, or a level the
  exchange does not hold): the exchange must not sell the same coins twice.
- Where the market has no such order type the bot logs it (``protection_unavailable``) and
  the fleet's candle-close check stays in charge; paper bots keep that check too.

Every change is a ``protective_orders`` row written in the step's transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from worker.candles import Candle
from worker.errors import Fatal, Retryable
from worker.exchanges import Order, OrderStatus, make_client_order_id
from worker.retry import retry

from .model import HUNDRED, BotState, Protective, StepOut, derived_id
from .trades import levels

if TYPE_CHECKING:
    from worker.exchanges.live import LiveExchange

    from .lanes import LiveLanes

log = logging.getLogger("tradefleet.bots.protection")

ONE = Decimal(1)
ATTEMPTS = 4
"""Client order ids tried for one trigger: an id whose order was canceled (a replaced stop
whose trigger came back) is not reused, the next one is."""

Kind = Literal["stop_loss", "take_profit"]
Hit = tuple[Order, str]
"""A protective order that filled, with its real fills, and the exit reason it records."""

LOAD_OPEN = """
select p.* from public.protective_orders p
  join public.trades t on t.id = p.trade_id and t.status = 'open'
 where p.bot_id = any(%(ids)s::uuid[])
 order by p.created_at
"""
LOAD_SETTINGS = """
select id::text, stop_loss, take_profit, metadata from public.bots where id = any(%(ids)s::uuid[])
"""


def _live(bot: BotState) -> LiveExchange | None:
    if bot.config.is_paper:
        return None
    from worker.exchanges.live import LiveExchange  # ccxt only for live bots

    ex = bot.exchange
    return ex if isinstance(ex, LiveExchange) else None


def _row(
    bot: BotState,
    p: Protective,
    status: str,
    reason: str | None = None,
    filled_at: datetime | None = None,
    limit: Decimal | None = None,
) -> dict[str, Any]:
    cfg = bot.config
    return {
        "id": str(derived_id(p.client_order_id, "protective")),
        "bot_id": cfg.id,
        "user_id": cfg.user_id,
        "trade_id": str(p.trade_id),
        "client_order_id": p.client_order_id,
        "exchange_order_id": p.exchange_order_id,
        "exchange": cfg.exchange,
        "symbol": cfg.symbol,
        "kind": p.kind,
        "side": p.side,
        "amount": str(p.amount),
        "trigger_price": str(p.trigger),
        "limit_price": None if limit is None else str(limit),
        "status": status,
        "status_reason": reason,
        "filled_at": None if filled_at is None else filled_at.isoformat(),
        "lease_epoch": bot.epoch,
    }


def _levels(bot: BotState) -> dict[Kind, Decimal | None]:
    pos = bot.position
    assert pos is not None
    return {"stop_loss": pos.stop_price, "take_profit": pos.take_price}


def _record_stops(bot: BotState, out: StepOut) -> None:
    pos = bot.position
    if pos is None:
        return
    out.stops.append(
        {
            "id": str(pos.trade_id),
            "bot_id": bot.id,
            "lease_epoch": bot.epoch,
            "stop_loss_price": None if pos.stop_price is None else str(pos.stop_price),
            "take_profit_price": None if pos.take_price is None else str(pos.take_price),
        }
    )


def _derive(bot: BotState) -> tuple[Decimal | None, Decimal | None]:
    """The stop and target the bot's settings give its open position."""
    pos = bot.position
    assert pos is not None
    return levels(bot.config, pos.entry_price, pos.long)


# -- loading ------------------------------------------------------------------------------


async def adopt(pool: AsyncConnectionPool, bots: Sequence[BotState]) -> None:
    """Load the open protective orders of these (just adopted) bots; a stop the owner
    edited while no worker ran moves to the new setting."""
    held = [b for b in bots if b.position is not None and not b.config.is_paper]
    if not held:
        return
    # By trade: a multi-pair bot's legs share the bot's id, each holds its own trade.
    by_trade = {b.position.trade_id: b for b in held if b.position is not None}
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = await (await cur.execute(LOAD_OPEN, {"ids": list({b.id for b in held})})).fetchall()
    for r in rows:
        bot = by_trade.get(r["trade_id"])
        if bot is None or bot.position is None:
            continue
        bot.placed_ids.add(str(r["client_order_id"]))
        if r["status"] != "open":
            continue
        bot.protective[str(r["client_order_id"])] = Protective(
            client_order_id=str(r["client_order_id"]),
            exchange_order_id=r["exchange_order_id"],
            kind="take_profit" if r["kind"] == "take_profit" else "stop_loss",
            side="buy" if r["side"] == "buy" else "sell",
            amount=Decimal(r["amount"]),
            trigger=Decimal(r["trigger_price"]),
            trade_id=r["trade_id"],
        )
    for bot in held:
        await _discover(bot)
        _follow_settings(bot)


async def _discover(bot: BotState) -> None:
    """Orders the exchange took for this position that no step recorded (the worker died
    between the exchange's answer and its commit): found by their client order ids, so the
    fleet neither places a second stop nor sells beside one."""
    ex, pos = _live(bot), bot.position
    if ex is None or pos is None:
        return
    from worker.exchanges import protective as xp

    cfg = bot.config
    can = xp.support(ex, cfg.symbol)
    from . import protection_oco as oco

    if oco.pair(bot, can):
        await oco.discover(bot, ex)
        return
    side: Literal["buy", "sell"] = "sell" if pos.long else "buy"
    for kind, level in _levels(bot).items():
        if level is None or not can.holds(kind):
            continue
        if any(p.kind == kind for p in bot.protective.values()):
            continue
        trigger = ex.price_to_precision(cfg.symbol, level)
        for n in range(ATTEMPTS):
            cid = make_client_order_id(cfg.id, pos.trade_id, kind, trigger, n)
            order = await retry(partial(xp.fetch, ex, cfg.symbol, cid), attempts=3, describe="find")
            if order is None:
                break
            bot.placed_ids.add(cid)
            if order.is_open or order.status is OrderStatus.CLOSED:
                bot.protective[cid] = Protective(
                    cid, order.id, kind, side, pos.amount, trigger, pos.trade_id, recorded=False
                )
                break


def _follow_settings(bot: BotState) -> None:
    """Move the position's stop and target to what the settings give (a trailing stop keeps
    the level it reached)."""
    pos = bot.position
    if pos is None:
        return
    stop, take = _derive(bot)
    if bot.config.trailing_stop and pos.stop_price is not None and stop is not None:
        stop = max(stop, pos.stop_price) if pos.long else min(stop, pos.stop_price)
    if (stop, take) != (pos.stop_price, pos.take_price):
        pos.stop_price, pos.take_price = stop, take
        bot.stops_moved = True


async def refresh_settings(pool: AsyncConnectionPool, bots: Sequence[BotState]) -> None:
    """Before a close: live bots holding a position take their owner's current stop-loss,
    take-profit and trailing setting (one query for all of them)."""
    held = {b.id: b for b in bots if b.position is not None and not b.config.is_paper}
    if not held:
        return
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = await (await cur.execute(LOAD_SETTINGS, {"ids": list(held)})).fetchall()
    for r in rows:
        bot = held[r["id"]]
        cfg = bot.config
        stop = None if r["stop_loss"] is None else Decimal(r["stop_loss"]) / HUNDRED
        take = None if r["take_profit"] is None else Decimal(r["take_profit"]) / HUNDRED
        params = cfg.params
        if stop is None and params.stop_loss is not None:
            stop = Decimal(repr(params.stop_loss))
        if take is None and params.take_profit is not None:
            take = Decimal(repr(params.take_profit))
        trailing = (r["metadata"] or {}).get("trailing_stop") is True and stop is not None
        if (stop, take, trailing) == (cfg.stop_loss, cfg.take_profit, cfg.trailing_stop):
            continue
        bot.config = replace(cfg, stop_loss=stop, take_profit=take, trailing_stop=trailing)
        _follow_settings(bot)


# -- on the exchange ----------------------------------------------------------------------


async def survey(bots: Sequence[BotState], lanes: LiveLanes) -> None:
    """Before a close's steps: one open-orders query per exchange account (and market type)
    for every bot with resting orders; an order still listed open needs no question of its
    own this close. A failed query leaves each bot to ask about its own orders. The queries
    run within the live bounds (``lanes``)."""
    accounts: defaultdict[int, list[BotState]] = defaultdict(list)
    for bot in bots:
        for p in bot.protective.values():
            p.listed = False
        if bot.protective and _live(bot) is not None:
            accounts[id(bot.exchange)].append(bot)
    if accounts:
        await lanes.run([(m[0], partial(_survey_account, m)) for m in accounts.values()])


async def _survey_account(bots: Sequence[BotState]) -> None:
    from worker.exchanges import protective as xp

    ex = _live(bots[0])
    assert ex is not None
    symbols = {b.config.symbol for b in bots}
    cids = [cid for b in bots for cid in b.protective]
    try:
        listed = await retry(
            partial(xp.open_protective, ex, symbols, cids), attempts=2, describe="open orders"
        )
    except (Retryable, Fatal) as e:
        log.warning(
            "open orders unavailable: each bot asks about its own",
            extra={"exchange": ex.id, "action": "survey_failed", "error": str(e)},
        )
        return
    for bot in bots:
        for cid, p in bot.protective.items():
            p.listed = cid in listed


async def poll(bot: BotState, out: StepOut) -> Hit | None:
    """Ask the exchange about the resting orders: the one that filled closes the position.
    An order the close's survey found open is not asked about again."""
    ex = None if not bot.protective else _live(bot)
    if ex is None:
        return None
    from worker.exchanges import protective as xp

    symbol = bot.config.symbol
    gone: list[tuple[Protective, Order | None]] = []
    for p in list(bot.protective.values()):
        cid = p.client_order_id
        order: Order | None = None
        if p.listed:
            p.listed = False  # good for this poll only
            is_open = True
        else:
            order = await retry(
                partial(xp.fetch, ex, symbol, cid), attempts=3, describe="poll stop"
            )
            is_open = order is not None and order.is_open
        if is_open:
            if not p.recorded:
                p.recorded = True
                limit = p.trigger if p.oco and p.kind == "take_profit" else None
                limit = limit or xp.limit_price(ex, symbol, p.side, p.trigger)
                out.protective.append(_row(bot, p, "open", limit=limit))
            continue
        gone.append((p, order))
    for p, order in gone:  # a fill first: the other leg of an OCO list expired with it
        if order is not None and order.status is OrderStatus.CLOSED:
            del bot.protective[p.client_order_id]
            return await _filled(bot, ex, p, order, out)
    for p, order in gone:
        cid = p.client_order_id
        del bot.protective[cid]
        why = "unknown to the exchange" if order is None else f"{order.status} on the exchange"
        out.protective.append(_row(bot, p, "canceled", why))
        out.log(
            bot.config,
            "warning",
            f"{p.kind.replace('_', '-')} order {cid} is {why}: placing it again",
            action="protective_lost",
            client_order_id=cid,
        )
    return None


async def take_off(
    bot: BotState, ex: LiveExchange, held: list[Protective], out: StepOut
) -> Hit | None:
    """Cancel protective orders being replaced. One that filled meanwhile is the position's
    exit (its hit is returned at once); the others are recorded as replaced."""
    from worker.exchanges import protective as xp

    for p in held:
        order = await retry(
            partial(xp.cancel, ex, bot.config.symbol, p.client_order_id),
            attempts=4,
            describe="cancel",
        )
        del bot.protective[p.client_order_id]
        if order is not None and order.status is OrderStatus.CLOSED and order.filled > 0:
            return await _filled(bot, ex, p, order, out)
        out.protective.append(_row(bot, p, "canceled", "replaced"))
    return None


async def _filled(
    bot: BotState, ex: LiveExchange, p: Protective, order: Order, out: StepOut
) -> Hit:
    from worker.exchanges import protective as xp

    symbol = bot.config.symbol
    filled = await retry(partial(xp.with_fills, ex, symbol, order), attempts=3, describe="fills")
    filled = replace(filled, client_order_id=p.client_order_id, type="stop")
    out.protective.append(_row(bot, p, "filled", "filled", filled.updated_at))
    return filled, p.kind


async def cancel_all(bot: BotState, out: StepOut, reason: str) -> Hit | None:
    """Cancel every resting order (the position exits by another path, or is gone). One that
    filled meanwhile is returned: the position is already closed on the exchange."""
    ex = _live(bot)
    hit: Hit | None = None
    if ex is None:
        bot.protective.clear()
        return None
    from worker.exchanges import protective as xp

    symbol = bot.config.symbol
    for p in list(bot.protective.values()):
        cid = p.client_order_id
        order = await retry(partial(xp.cancel, ex, symbol, cid), attempts=4, describe="cancel")
        del bot.protective[cid]
        if order is not None and order.status is OrderStatus.CLOSED and order.filled > 0:
            if hit is None and bot.position is not None:
                hit = await _filled(bot, ex, p, order, out)
                continue
        out.protective.append(_row(bot, p, "canceled", reason))
    return hit


def _trail(bot: BotState, candle: Candle) -> None:
    """A trailing stop follows the close: never back, only with the position."""
    pos, cfg = bot.position, bot.config
    if pos is None or not cfg.trailing_stop or cfg.stop_loss is None or pos.stop_price is None:
        return
    away = ONE if pos.long else -ONE
    level = candle.close * (ONE - away * cfg.stop_loss)
    if (level > pos.stop_price) if pos.long else (level < pos.stop_price):
        pos.stop_price = level
        bot.stops_moved = True


async def sync(bot: BotState, candle: Candle | None, out: StepOut) -> Hit | None:
    """After a step: the resting orders match the open position (placed, replaced or
    cancelled). Returns a protective order found filled while replacing it. Without a
    candle (between closes) a trailing stop keeps its level."""
    if candle is not None:
        _trail(bot, candle)
    pos = bot.position
    if pos is None:
        hit = await cancel_all(bot, out, "exit") if bot.protective else None
        if not bot.protective:
            bot.placed_ids.clear()  # ids derive from the trade: the next one has its own
        return hit
    if bot.stops_moved:
        bot.stops_moved = False
        _record_stops(bot, out)
    ex = _live(bot)
    if ex is None or any(f.purpose == "exit" for f in bot.in_flight.values()):
        return None  # an exit on its way closes the position: nothing to rest beside it
    from worker.exchanges import protective as xp

    cfg = bot.config
    can = xp.support(ex, cfg.symbol)
    if not can.stop_loss and pos.stop_price is not None and bot.unprotected != pos.trade_id:
        bot.unprotected = pos.trade_id
        out.log(cfg, "warning", can.missing or "no stop orders", action="protection_unavailable")
    from . import protection_oco as oco

    if oco.pair(bot, can):
        return await oco.sync(bot, ex, out)
    side: Literal["buy", "sell"] = "sell" if pos.long else "buy"
    for kind, level in _levels(bot).items():
        trigger = None if level is None else ex.price_to_precision(cfg.symbol, level)
        current = [p for p in bot.protective.values() if p.kind == kind]
        if not can.holds(kind):
            trigger = None
        if current and current[0].trigger == trigger and current[0].amount == pos.amount:
            continue
        # replaced: the new one goes on once the old one is off
        if (hit := await take_off(bot, ex, current, out)) is not None:
            return hit
        if trigger is not None:
            hit = await _place(bot, ex, kind, side, pos.amount, trigger, pos.trade_id, out)
            if hit is not None:
                return hit
    return None


async def _place(
    bot: BotState,
    ex: LiveExchange,
    kind: Kind,
    side: Literal["buy", "sell"],
    amount: Decimal,
    trigger: Decimal,
    trade_id: uuid.UUID,
    out: StepOut,
) -> Hit | None:
    from worker.exchanges import protective as xp

    cfg = bot.config
    what = kind.replace("_", "-")
    for n in range(ATTEMPTS):
        cid = make_client_order_id(cfg.id, trade_id, kind, trigger, n)
        # A lookup first only for an id that may be on the exchange already (sent before,
        # in this process or a previous one); every retry looks first.
        sent = [cid in bot.placed_ids]
        bot.placed_ids.add(cid)

        async def once(cid: str = cid, sent: list[bool] = sent) -> Order:
            look, sent[0] = sent[0], True
            return await xp.place(ex, cfg.symbol, kind, side, amount, trigger, cid, look_first=look)

        try:
            order = await retry(once, attempts=4, describe=f"place {what}")
        except (Retryable, Fatal) as e:
            # Not placed: the fleet's own check at candle close keeps the position covered.
            out.log(
                cfg,
                "warning",
                f"{what} not placed on the exchange ({e}): the fleet checks it at each candle close",
                action="protective_failed",
            )
            return None
        p = Protective(cid, order.id, kind, side, amount, trigger, trade_id)
        if order.is_open:
            bot.protective[cid] = p
            limit = xp.limit_price(ex, cfg.symbol, side, trigger)
            out.protective.append(_row(bot, p, "open", limit=limit))
            out.log(
                cfg,
                "info",
                f"{what} resting on {cfg.exchange} at {trigger} for {amount} {cfg.symbol}",
                action="protective_placed",
                client_order_id=cid,
                exchange_order_id=order.id,
            )
            return None
        if order.status is OrderStatus.CLOSED and order.filled > 0:
            return await _filled(bot, ex, p, order, out)
    return None
