"""A live exchange account's balance, read once per candle close for all its bots.

Bots on one key share one client (``adoption``); when several of them decide an entry on
the same close, each sizes it from the account's free balance. One read per account and
candle serves them all: the first bot to ask starts it, the others wait for the same
answer. Every entry of a close is placed after every decision of that close (the credit
hold comes between), so a read per bot would have seen the same balance; the next close
reads it again. A failed read is not kept: the next bot to ask reads again.

Paper bots keep their own in-memory balance (no network): read as before.
"""

from __future__ import annotations

import asyncio
import weakref
from datetime import datetime

from worker.exchanges import Balance, Exchange

from .model import BotState

_Read = tuple[datetime, asyncio.Future[dict[str, Balance]]]
_reads: weakref.WeakKeyDictionary[Exchange, _Read] = weakref.WeakKeyDictionary()


async def balance(bot: BotState, candle_at: datetime) -> dict[str, Balance]:
    """The bot's account balance as of the close of the candle opening at ``candle_at``."""
    ex = bot.exchange
    if bot.config.is_paper:
        return await ex.fetch_balance()
    held = _reads.get(ex)
    if held is None or held[0] != candle_at:
        held = (candle_at, asyncio.ensure_future(ex.fetch_balance()))
        _reads[ex] = held
    try:
        # shielded: one bot's step cancelled does not cancel the read its peers wait for
        return await asyncio.shield(held[1])
    except Exception:
        if _reads.get(ex) is held:
            del _reads[ex]
        raise
