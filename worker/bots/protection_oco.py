"""A spot long's stop-loss and take-profit resting together as one OCO order list (Binance
spot): one leg filling expires the other, so the coins the position holds are sold once,
and either level moving replaces the list as a whole (cancelling one leg cancels both).

The legs are ``protective_orders`` rows like any stop (``kind`` ``stop_loss`` and
``take_profit``); their client ids derive from the bot, the trade and both levels, so a list
the exchange took but no step recorded is found by them after a restart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING

from worker.errors import Fatal, Retryable
from worker.exchanges import OrderStatus, make_client_order_id
from worker.retry import retry

from .model import BotState, Protective, StepOut
from .protection import ATTEMPTS, Hit, _row, take_off

if TYPE_CHECKING:
    from worker.exchanges.live import LiveExchange
    from worker.exchanges.protective import Support


def pair(bot: BotState, can: Support) -> bool:
    pos = bot.position
    return (
        can.oco
        and pos is not None
        and pos.long
        and pos.stop_price is not None
        and pos.take_price is not None
    )


def _levels(bot: BotState, ex: LiveExchange) -> tuple[Decimal, Decimal]:
    pos, symbol = bot.position, bot.config.symbol
    assert pos is not None and pos.stop_price is not None and pos.take_price is not None
    return ex.price_to_precision(symbol, pos.stop_price), ex.price_to_precision(
        symbol, pos.take_price
    )


def _ids(bot: BotState, stop: Decimal, take: Decimal, n: int) -> tuple[str, str, str]:
    """Client ids of a list's stop leg, take-profit leg and the list: from the bot, the
    trade and both levels (a list moves as a whole)."""
    pos = bot.position
    assert pos is not None
    ids = [make_client_order_id(bot.id, pos.trade_id, "oco", stop, take, n, leg) for leg in LEGS]
    return ids[0], ids[1], ids[2]


LEGS = ("stop_loss", "take_profit", "list")


def _legs(bot: BotState, stop: Decimal, take: Decimal, cids: Sequence[str]) -> list[Protective]:
    pos = bot.position
    assert pos is not None
    return [
        Protective(cids[0], None, "stop_loss", "sell", pos.amount, stop, pos.trade_id, oco=True),
        Protective(cids[1], None, "take_profit", "sell", pos.amount, take, pos.trade_id, oco=True),
    ]


async def discover(bot: BotState, ex: LiveExchange) -> None:
    """A list the exchange took that no step recorded: found by its legs' client ids."""
    from worker.exchanges import protective as xp

    if bot.protective:
        return
    stop, take = _levels(bot, ex)
    for n in range(ATTEMPTS):
        cids = _ids(bot, stop, take, n)
        found = [
            await retry(partial(xp.fetch, ex, bot.config.symbol, c), attempts=3, describe="find")
            for c in cids[:2]
        ]
        if found[0] is None:
            break
        bot.placed_ids.update(cids)
        if any(o is not None and (o.is_open or o.status is OrderStatus.CLOSED) for o in found):
            for p, o in zip(_legs(bot, stop, take, cids), found, strict=True):
                if o is not None:
                    bot.protective[p.client_order_id] = replace(
                        p, exchange_order_id=o.id, recorded=False
                    )
            return


async def sync(bot: BotState, ex: LiveExchange, out: StepOut) -> Hit | None:
    """Rest the stop-loss and take-profit as one OCO list; either level moving replaces the
    list (cancelling one leg cancels both)."""
    from worker.exchanges import protective as xp

    pos, cfg = bot.position, bot.config
    assert pos is not None
    stop, take = _levels(bot, ex)
    held = {(p.kind, p.trigger, p.amount) for p in bot.protective.values()}
    want = {("stop_loss", stop, pos.amount), ("take_profit", take, pos.amount)}
    if held == want and len(bot.protective) == 2:
        return None
    # replaced: the old list (or order) comes off
    if (hit := await take_off(bot, ex, list(bot.protective.values()), out)) is not None:
        return hit
    for n in range(ATTEMPTS):
        cids = _ids(bot, stop, take, n)
        if cids[0] in bot.placed_ids:
            continue  # sent before (a list since cancelled, or refused): the next ids
        bot.placed_ids.update(cids)
        try:
            legs = await retry(
                partial(xp.place_oco, ex, cfg.symbol, pos.amount, stop, take, cids),
                attempts=2,
                describe="place OCO",
            )
        except (Retryable, Fatal) as e:
            out.log(
                cfg,
                "warning",
                f"stop-loss and take-profit not placed on the exchange ({e}): the fleet "
                "checks them at each candle close",
                action="protective_failed",
            )
            return None
        for p, order in zip(_legs(bot, stop, take, cids), legs, strict=True):
            p = replace(p, exchange_order_id=order.id)
            bot.protective[p.client_order_id] = p
            limit = (
                take if p.kind == "take_profit" else xp.limit_price(ex, cfg.symbol, "sell", stop)
            )
            out.protective.append(_row(bot, p, "open", limit=limit))
        out.log(
            cfg,
            "info",
            f"stop-loss at {stop} and take-profit at {take} resting on {cfg.exchange} as one "
            f"OCO list for {pos.amount} {cfg.symbol}",
            action="protective_placed",
            client_order_id=cids[2],
        )
        return None
    return None
