"""Paper accounts of bots: the ``PaperExchange`` plus protective (stop/target) fills, and
rebuilt from the database after a takeover.

A paper account lives in the memory of the worker that leases the bot, so after a crash
its state is rebuilt from what the database holds (the bot's own trades and orders; copies
of signals belong to copy execution): the quote balance is the initial balance plus the
profit of closed trades minus what an open long cost (plus what an open short sold for),
the base balance is the open long (minus the open short: a bot with ``allow_short`` has a
margin account), and orders that were placed but not yet filled are placed again under
their own client order ids (the paper exchange returns the same order for an id it knows,
so nothing is ever placed twice). An order a candle filled in part is written with that
step (``partly_filled``: its ``filled``, ``average_price`` and ``fee``, the totals kept to
the row's 12 decimals), and placed again it books that part at once (``restore_part``):
only the rest rests on, as it would have without the takeover.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from worker.candles import Candle
from worker.errors import Fatal
from worker.exchanges import (
    CheckedOrder,
    Fee,
    Order,
    OrderStatus,
    OrderType,
    PaperExchange,
    Side,
)

ROW_SCALE = Decimal("1e-12")  # the decimals of ``orders.average_price`` and ``orders.fee``


class BotPaperExchange(PaperExchange):
    """A bot's paper account: ``PaperExchange`` with stop-loss/take-profit fills.

    The backtester fills a stop or target touched inside a candle at its price (or at the
    open when the candle gapped through it), the stop first. The paper exchange has no
    one-cancels-other orders, so the bot engine detects the touch on the closed candle and
    books the fill here, at that price, with the paper exchange's fees and rounding.

    **Partial fills** (``volume_share``, a bot's ``metadata.paper_volume_share``, off by
    default): a resting limit order a candle touches fills at most ``volume_share`` of that
    candle's volume (base units, truncated to the market's amount step); what is left rests
    on and takes its share of the next candles that touch it, until it is filled or
    cancelled (a timeout then finds it partly filled: the bot's partial-fill paths run on
    paper as on an exchange). A touched order whose share rounds to nothing does not fill
    in that candle. Market orders, stops and the owner's fills at once fill whole.
    """

    def __init__(self, *args: Any, volume_share: Decimal | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.volume_share = volume_share
        self._volume: Decimal | None = None  # the candle being fed, while it is
        self.partly_filled: list[Order] = []
        """Orders the latest ``on_candle`` filled in part and left open (to be recorded)."""
        self._closed: deque[tuple[datetime | None, str]] = deque()
        """(the account's clock when it closed, order id) of the closed orders it remembers."""

    def on_candle(self, symbol: str, timeframe: str, candle: Candle) -> list[Order]:
        """As the paper exchange, except that limit orders fill at most their share of the
        candle's volume; orders still open after a partial fill are not returned but kept
        in ``partly_filled``, for the bot's step to record them with its own rows.

        A bot's account lives as long as its worker: once its clock moves to a new close,
        the orders that closed before the previous close are forgotten (their rows hold
        them; a takeover rebuilds the account from the rows). What a step looks up by client
        order id (an order it just placed, filled or cancelled, a retry within the close)
        closed at the current or the previous close, so it is still known."""
        before = self.now
        self._volume = candle.volume if self.volume_share is not None else None
        try:
            changed = super().on_candle(symbol, timeframe, candle)
        finally:
            self._volume = None
        if before is not None and self.now is not None and self.now > before:
            self._forget_closed(before)
        self.partly_filled = [o for o in changed if o.is_open]
        return [o for o in changed if not o.is_open]

    def _close(self, order: Order, status: OrderStatus, when: datetime | None) -> Order:
        self._closed.append((self.now, order.id))
        return super()._close(order, status, when)

    def _forget_closed(self, before: datetime) -> None:
        closed = self._closed
        while closed and (closed[0][0] is None or closed[0][0] < before):
            order = self._orders.pop(closed.popleft()[1], None)
            if order is None or order.client_order_id is None:
                continue
            if self._by_client_id.get(order.client_order_id) == order.id:
                del self._by_client_id[order.client_order_id]

    def restore_part(self, order_id: str, filled: Decimal, average: Decimal, fee: Decimal) -> None:
        """An order placed again after a takeover (``create_order`` with its whole amount)
        of which the database recorded ``filled`` at ``average`` with ``fee``: that part is
        booked as it was (its share of the reservation freed, the trade on the balances),
        so only the rest rests on."""
        order = self._orders[order_id]
        if filled <= 0 or order.filled > 0 or filled >= order.amount or not order.is_open:
            return
        rate = self._fee_rate(self.market(order.symbol), False)
        self._book_part(order, filled, filled * average, fee, rate, order.created_at)

    def _fill(self, order: Order, price: Decimal, taker: bool, when: datetime) -> Order:
        if self._volume is None or self.volume_share is None or order.type != "limit":
            return super()._fill(order, price, taker, when)
        cap = self.amount_to_share(order.symbol, self._volume * self.volume_share)
        remaining = order.amount - order.filled
        if cap >= remaining and order.filled == 0:
            return super()._fill(order, price, taker, when)
        if cap <= 0:
            return order
        return self._fill_part(order, min(cap, remaining), price, taker, when)

    def amount_to_share(self, symbol: str, amount: Decimal) -> Decimal:
        try:
            return self.amount_to_precision(symbol, amount)
        except Fatal:  # rounds to nothing
            return Decimal(0)

    def _fill_part(
        self, order: Order, amount: Decimal, price: Decimal, taker: bool, when: datetime
    ) -> Order:
        """Fill ``amount`` of a resting limit order at ``price``."""
        rate = self._fee_rate(self.market(order.symbol), taker)
        cost = amount * price
        return self._book_part(order, amount, cost, cost * rate, rate, when)

    def _book_part(
        self,
        order: Order,
        amount: Decimal,
        cost: Decimal,
        fee: Decimal,
        rate: Decimal,
        when: datetime | None,
    ) -> Order:
        """Book a fill of ``amount`` of an order for ``cost`` and ``fee``: its share of the
        reservation is freed and the trade booked; the order closes when nothing is left."""
        market = self.market(order.symbol)
        # The order's totals as its row holds them (12 decimals), so that an order taken
        # over partly filled resumes from its row exactly where it was (``restore_part``).
        filled = order.filled + amount
        old_fee = order.fee.cost if order.fee else Decimal(0)
        average = ((order.cost + cost) / filled).quantize(ROW_SCALE)
        total_cost, total_fee = filled * average, (old_fee + fee).quantize(ROW_SCALE)
        cost, fee = total_cost - order.cost, total_fee - old_fee
        # The fill's share of what the rest of the order still reserves, in one division: a
        # sell's reservation of the base is then freed exactly by what fills (a ratio of
        # ratios rounds, and the base left free drifts below the position it must sell).
        remaining = order.amount - order.filled
        kept: list[tuple[str, Decimal]] = []
        for currency, reserved in self._reserved.get(order.id, ()):
            part = reserved if amount >= remaining else min(reserved, reserved * amount / remaining)
            self._used[currency] -= part
            self._free[currency] += part
            kept.append((currency, reserved - part))
        self._reserved[order.id] = kept
        if order.side == "buy":
            self._free[market.quote] -= cost + fee
            self._free[market.base] += amount
        else:
            self._free[market.base] -= amount
            self._free[market.quote] += cost - fee
        updated = replace(
            order,
            filled=filled,
            remaining=order.amount - filled,
            cost=total_cost,
            average=average,
            fee=Fee(cost=total_fee, currency=market.quote, rate=rate),
            updated_at=when,
        )
        self._orders[order.id] = updated
        if updated.remaining > 0:
            return updated
        self._release(order.id)
        return self._close(updated, OrderStatus.CLOSED, when)

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
