"""Paper accounts of bots: the ``PaperExchange`` plus protective (stop/target) fills, and
rebuilt from the database after a takeover.

A paper account lives in the memory of the worker that leases the bot, so after a crash
its state is rebuilt from what the database holds (the bot's own trades and orders; copies
of signals belong to copy execution): the quote balance is the initial balance plus the
profit of closed trades minus what an open long cost (plus what an open short sold for),
the base balance is the open long (minus the open short: a bot with ``allow_short`` has a
margin account), and orders that were placed but not yet filled are placed again under
their own client order ids (the paper exchange returns the same order for an id it knows,
so nothing is ever placed twice).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from worker.exchanges import CheckedOrder, Order, OrderStatus, OrderType, PaperExchange, Side


class BotPaperExchange(PaperExchange):
    """A bot's paper account: ``PaperExchange`` with stop-loss/take-profit fills.

    The backtester fills a stop or target touched inside a candle at its price (or at the
    open when the candle gapped through it), the stop first. The paper exchange has no
    one-cancels-other orders, so the bot engine detects the touch on the closed candle and
    books the fill here, at that price, with the paper exchange's fees and rounding.
    """

    def check_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: Decimal,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> CheckedOrder:
        """As the exchange would, except that an order closing the open position passes on
        a market that became inactive (its position stays managed; new entries are refused)."""
        base = self.market(symbol).base
        held = self._free[base] + self._used[base]
        closing = (side == "sell" and held >= amount > 0) or (side == "buy" and -held >= amount > 0)
        return self.rules.check_order(
            symbol, side, type, amount, price, stop_price, closing=closing
        )

    async def fill_protective(
        self,
        symbol: str,
        side: Side,
        amount: Decimal,
        price: Decimal,
        client_order_id: str,
        *,
        taker: bool,
    ) -> Order:
        existing = await self.fetch_order_by_client_id(client_order_id, symbol)
        if existing is not None:
            return existing
        order = await self.create_order(
            symbol, side, "limit", amount, price, client_order_id=client_order_id
        )
        if order.status is not OrderStatus.OPEN:
            return order
        when = self.now
        assert when is not None
        # Same bookkeeping as a fill on the next candle, but inside the candle just seen.
        return self._fill(order, order.price or price, taker, when)

    async def fill_now(
        self,
        symbol: str,
        side: Side,
        amount: Decimal,
        price: Decimal,
        client_order_id: str,
        when: datetime,
    ) -> Order:
        """A market order of the bot's owner (close now, a manual trade), filled at once at
        ``price`` (the latest close, slipped) with the taker fee, not at the next open."""
        existing = await self.fetch_order_by_client_id(client_order_id, symbol)
        if existing is not None:
            return replace(existing, type="market")
        order = await self.create_order(
            symbol, side, "limit", amount, price, client_order_id=client_order_id
        )
        if order.status is not OrderStatus.OPEN:
            return order
        return replace(self._fill(order, order.price or price, True, when), type="market")
