"""What owners' requests become (``worker.bots.requests``): their outcomes, and the steps a
close shares — taking the position's protective orders off the exchange before it, resting
them again for what it left open, recording what filled, and the bot's status once the
requests it waited for ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from worker.exchanges import Order

from . import orders, protection
from .model import BotState, StepOut
from .paper import BotPaperExchange
from .trades import close_trade, order_row

ONE = Decimal(1)
CLOSE_REASON = "manual_close"
KEPT = "the bot was stopped keeping the position: the close was cancelled"
SETTLED = {
    "paused": "the bot was paused: the close was cancelled, the position is kept",
    "error": "the bot stopped with an error: the close was cancelled, the position is kept",
}
OPEN_REASON = "manual"
Status = Literal["working", "done", "cancelled", "failed"]


@dataclass(slots=True)
class Outcome:
    """What a request became (written with the bot's step)."""

    id: str
    bot_id: str
    status: Status
    reason: str | None = None
    client_order_id: str | None = None
    deadline_at: datetime | None = None
    trade_id: str | None = None
    # What the request says instead when its bot's owner set the bot running before the
    # stop (or pause) it was settled for was written (``run_on``)
    overridden: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "bot_id": self.bot_id,
            "status": self.status,
            "status_reason": None if self.reason is None else self.reason[:2000],
            "overridden_reason": None if self.overridden is None else self.overridden[:2000],
            "client_order_id": self.client_order_id,
            "deadline_at": None if self.deadline_at is None else self.deadline_at.isoformat(),
            "trade_id": self.trade_id,
        }


async def unprotect(
    bot: BotState, rid: str, decided: datetime, now: datetime, out: StepOut
) -> Outcome | None:
    """Before a close: the position's resting stop and target come off the exchange. One
    that filled meanwhile is the exit (the request is done: the position is closed)."""
    hit = await protection.cancel_all(bot, out, "closed by its owner")
    if hit is None:
        return None
    return hit_outcome(bot, rid, hit, decided, now, out)


async def protect_rest(bot: BotState, now: datetime, out: StepOut) -> None:
    """A close that left part of the position open (a part closed, a limit close cancelled)
    rests its stop-loss (and take-profit) for what is left at once, not at the next candle
    close. A protective order that filled meanwhile is the exit of what was left."""
    if bot.position is None:
        return
    hit = await protection.sync(bot, None, out)
    if hit is not None:
        order, reason = hit
        out.orders.append(order_row(bot, order, order.client_order_id or "", reason, now))
        close_trade(bot, order, reason, order.updated_at or now, out)
        await protection.sync(bot, None, out)


def hit_outcome(
    bot: BotState, rid: str, hit: protection.Hit, decided: datetime, now: datetime, out: StepOut
) -> Outcome:
    """A protective order that filled is the position's exit: the request is done."""
    order, reason = hit
    cid = order.client_order_id or ""
    out.orders.append(order_row(bot, order, cid, reason, decided))
    close_trade(bot, order, reason, order.updated_at or now, out)
    what = reason.replace("_", "-")
    return Outcome(rid, bot.id, "done", f"the {what} on the exchange closed it first", cid)


def close_amount(bot: BotState, part: Any) -> Decimal:
    """What a close request closes: its part of the position (``close_position``'s
    ``p_amount`` or ``p_fraction``), rounded to the market's amount step, or all of it."""
    pos = bot.position
    assert pos is not None
    if part is None or Decimal(str(part)) >= pos.amount:
        return pos.amount
    return bot.exchange.amount_to_precision(bot.config.symbol, Decimal(str(part)))


def record_close(bot: BotState, order: Order, now: datetime, out: StepOut, how: str) -> str:
    """Record a close that filled: the whole position, or the part that filled (a trade of
    its own; the rest stays open under the position's trade id). Returns what happened."""
    pos = bot.position
    assert pos is not None
    if order.filled < pos.amount:
        orders.close_part(bot, order, CLOSE_REASON, now, out)
        return f"closed {order.filled} of {pos.amount} {bot.config.symbol} {how}"
    close_trade(bot, order, CLOSE_REASON, now, out)
    return f"closed {how}"


def slipped(ex: BotPaperExchange, side: str, price: Decimal) -> Decimal:
    return price * (ONE + ex.slippage if side == "buy" else ONE - ex.slippage)


def keeps(req: dict[str, Any]) -> bool:
    """The owner stopped the bot keeping its position while this request worked, or the
    bot was paused (or set to error) meanwhile: the close is cancelled, the stop rests."""
    if not req["stop_after"]:
        return False
    return req.get("stop_status") is not None or req.get("stop_positions") == "keep"


def run_on(outcome: Outcome, req: dict[str, Any]) -> None:
    """A request settled for a stop (or pause) that waited for it: what it says if the
    owner set the bot running before the worker's write committed (the database picks)."""
    if not req["stop_after"] or outcome.status == "working":
        return
    what = {"paused": "pause", "error": "error"}.get(req.get("stop_status") or "", "stop")
    done = outcome.reason
    if outcome.status == "cancelled" and keeps(req):
        done = "the close was cancelled, the position is kept"
    outcome.overridden = (
        f"{done}; the bot was set running again before its {what} settled: it runs on"
    )


def stopped(out: StepOut, outcome: Outcome, req: dict[str, Any]) -> None:
    """``stop_bot(…, 'close')``: the close ended; ``stop_bot(…, 'keep')``: the working close
    was cancelled and the position protected again. The bot stops. A pause (or an error)
    that waited for the working close: the bot goes to that status with its reason. The
    status goes through only while the stop (or pause) still waits, and the database logs
    which way it went (``bots_pause_settles_close``)."""
    keep = keeps(req)
    if (status := req.get("stop_status")) is not None:
        out.status = status
        out.status_reason = req.get("stop_reason")
        if status == "error":
            out.error_message = req.get("bot_error_message")
        return
    out.status = "stopped"
    if outcome.status == "done":
        out.status_reason = "stopped by its owner: the open position was closed"
    elif keep:
        out.status_reason = "stopped by its owner: the open position is kept"
    else:
        out.status_reason = (
            f"stopped by its owner; closing the position {outcome.status}: {outcome.reason}"
        )
