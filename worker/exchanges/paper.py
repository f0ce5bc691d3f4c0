"""Paper trading: the ``Exchange`` interface over real market definitions and replayed candles.

Fill rules (deterministic, candle by candle; ``on_candle`` is called with each *closed*
candle, by a live feed or the replay clock):

- an order is eligible from the first candle that *opens* at or after the time it was
  placed (the close time of the latest candle seen), never on a candle already known;
- market: fills at that candle's open, moved against the trader by ``slippage`` (a
  fraction), taker fee;
- limit buy: fills when ``low <= limit`` (sell: ``high >= limit``) at the limit price, maker
  fee; if the candle already opens through the limit it fills at the open, taker fee;
- stop buy: triggers when ``high >= stop`` (sell: ``low <= stop``); stop-market fills at the
  stop (or the open if it gapped through) with slippage, taker fee; stop-limit then rests as
  a limit order at ``price``;
- fees are charged in the quote currency at the market's taker/maker rate (or configured);
- amounts and prices are rounded and checked by ccxt exactly as the real exchange would;
- funds are reserved when an order is placed (``used``) and an order that cannot be paid
  is rejected with ``Fatal`` naming the missing amount;
- a client order id that was already used returns the existing order, never a second one.

Spot markets only: contract (swap/future) markets are refused with ``Fatal``. With
``margin=True`` the account may also sell base it does not hold (a margin short, 1x): the
borrowed part of a sell needs free quote as collateral, as much as a buy of that size would
cost (reserved until the order fills); the fill leaves the base balance negative (what is
owed) and credits the proceeds; buying back repays it. Without ``margin`` a sell needs the
base it sells, as on a spot account.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from worker.candles import Candle, timeframe_seconds
from worker.errors import Fatal

from .base import Exchange, validate_client_order_id
from .models import (
    Balance,
    Fee,
    Market,
    Order,
    OrderStatus,
    OrderType,
    Side,
)
from .precision import MarketRules, recorded_rules

ZERO = Decimal(0)
ONE = Decimal(1)


def _dec(value: Decimal | str | int) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class PaperExchange(Exchange):
    """A simulated account on one exchange (balances, orders) fed by candles."""

    def __init__(
        self,
        exchange_id: str = "binance",
        balances: Mapping[str, Decimal | str | int] | None = None,
        *,
        slippage: Decimal | str = ZERO,
        taker_fee: Decimal | str | None = None,
        maker_fee: Decimal | str | None = None,
        rules: MarketRules | None = None,
        markets_dir: Path | None = None,
        history: int = 500,
        margin: bool = False,
    ) -> None:
        """``balances`` are the starting free balances, e.g. ``{"USDT": Decimal("1000")}``.

        ``rules`` lets many paper accounts share one set of market definitions; by default
        the recorded markets of ``exchange_id`` are loaded once per process.
        """
        super().__init__(exchange_id)
        self.slippage = _dec(slippage)
        if not ZERO <= self.slippage < ONE:
            raise Fatal(f"slippage must be a fraction in [0, 1), got {self.slippage}")
        self.taker_fee = _dec(taker_fee) if taker_fee is not None else None
        self.maker_fee = _dec(maker_fee) if maker_fee is not None else None
        self._rules = rules or recorded_rules(
            exchange_id, str(markets_dir) if markets_dir is not None else None
        )
        self._free: dict[str, Decimal] = defaultdict(Decimal)
        self._used: dict[str, Decimal] = defaultdict(Decimal)
        for code, amount in (balances or {}).items():
            self._free[code] = _dec(amount)
        self._orders: dict[str, Order] = {}
        self._by_client_id: dict[str, str] = {}
        self._open: dict[str, list[str]] = defaultdict(list)  # symbol -> order ids, oldest first
        self.margin = margin
        self._reserved: dict[
            str, list[tuple[str, Decimal]]
        ] = {}  # order id -> [(currency, amount)]
        self._triggered: set[str] = set()  # stop-limit orders whose stop was hit
        self._last_price: dict[str, Decimal] = {}
        self._history = history
        self._candles: dict[tuple[str, str], deque[Candle]] = {}
        self._seq = 0
        self.now: datetime | None = None
        """Close time of the latest candle seen: the paper exchange's clock."""

    # -- markets --------------------------------------------------------------------------

    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        return {symbol: self.rules.market(symbol) for symbol in self.rules.symbols}

    def last_price(self, symbol: str) -> Decimal | None:
        """Close of the latest candle seen for ``symbol``."""
        return self._last_price.get(symbol)

    def _fee_rate(self, market: Market, taker: bool) -> Decimal:
        if taker:
            return self.taker_fee if self.taker_fee is not None else market.taker
        return self.maker_fee if self.maker_fee is not None else market.maker

    # -- orders ---------------------------------------------------------------------------

    async def create_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: Decimal,
        price: Decimal | None = None,
        *,
        stop_price: Decimal | None = None,
        client_order_id: str | None = None,
        leverage: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Order:
        if client_order_id is not None:
            validate_client_order_id(client_order_id)
            existing = self._by_client_id.get(client_order_id)
            if existing is not None:
                return self._orders[existing]
        market = self.market(symbol)
        if market.contract:
            raise Fatal(
                f"paper trading supports spot markets only; {symbol} on {self.id} is a {market.type} market"
            )
        if leverage not in (None, 1):
            raise Fatal(f"leverage applies to futures/swap markets only, {symbol} is spot")

        # For market orders the last close stands in for the price in the min-cost check.
        reference = price if type != "market" else (price or self._last_price.get(symbol))
        checked = self.check_order(symbol, side, type, amount, reference, stop_price)
        limit_price = checked.price

        def worst_price() -> Decimal:
            if limit_price is not None:
                return limit_price
            known = [p for p in (self._last_price.get(symbol), checked.stop_price) if p is not None]
            if not known:
                raise Fatal(f"no price for {symbol} yet: a market {side} needs a candle first")
            return max(known) * (ONE + self.slippage)

        rate = max(self._fee_rate(market, True), self._fee_rate(market, False))
        needs: list[tuple[str, Decimal]]
        if side == "buy":
            needs = [(market.quote, checked.amount * worst_price() * (ONE + rate))]
        elif self.margin and self._free[market.base] < checked.amount:
            held = max(self._free[market.base], ZERO)
            borrowed = checked.amount - held
            needs = [(market.base, held), (market.quote, borrowed * worst_price() * (ONE + rate))]
        else:
            needs = [(market.base, checked.amount)]
        for currency, needed in needs:
            free = self._free[currency]
            if free < needed:
                raise Fatal(
                    f"insufficient funds for {side} {checked.amount} {symbol}: needs {needed.normalize():f} "
                    f"{currency}, {free.normalize():f} {currency} free"
                )

        self._seq += 1
        order_id = f"paper-{client_order_id}" if client_order_id else f"paper-{self._seq}"
        order = Order(
            id=order_id,
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            type=type,
            status=OrderStatus.OPEN,
            amount=checked.amount,
            filled=ZERO,
            remaining=checked.amount,
            price=limit_price,
            stop_price=checked.stop_price,
            average=None,
            cost=ZERO,
            fee=None,
            created_at=self.now,
        )
        for currency, needed in needs:
            self._free[currency] -= needed
            self._used[currency] += needed
        self._reserved[order_id] = needs
        self._orders[order_id] = order
        self._open[symbol].append(order_id)
        if client_order_id is not None:
            self._by_client_id[client_order_id] = order_id
        return order

    def _release(self, order_id: str) -> None:
        for currency, amount in self._reserved.pop(order_id, ()):
            self._used[currency] -= amount
            self._free[currency] += amount

    def _close(self, order: Order, status: OrderStatus, when: datetime | None) -> Order:
        updated = replace(order, status=status, updated_at=when)
        self._orders[order.id] = updated
        ids = self._open.get(order.symbol, [])
        if order.id in ids:
            ids.remove(order.id)
        self._triggered.discard(order.id)
        return updated

    async def cancel_order(self, order_id: str, symbol: str) -> Order:
        order = self._orders.get(order_id)
        if order is None or order.symbol != symbol:
            raise Fatal(f"{self.id} paper: order {order_id} on {symbol} not found")
        if not order.is_open:
            return order
        self._release(order_id)
        return self._close(order, OrderStatus.CANCELED, self.now)

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> Order | None:
        order_id = self._by_client_id.get(client_order_id)
        if order_id is None:
            return None
        order = self._orders[order_id]
        return order if order.symbol == symbol else None

    async def fetch_order(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        symbols = [symbol] if symbol is not None else list(self._open)
        orders = [self._orders[oid] for s in symbols for oid in self._open.get(s, [])]
        return sorted(orders, key=lambda o: (o.created_at is not None, o.created_at or 0, o.id))

    async def fetch_balance(self) -> dict[str, Balance]:
        codes = sorted(set(self._free) | set(self._used))
        return {
            c: Balance(c, self._free[c], self._used[c], self._free[c] + self._used[c])
            for c in codes
        }

    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Candle]:
        rows = list(self._candles.get((symbol, timeframe), ()))
        if since is not None:
            rows = [c for c in rows if c.time >= since]
        if limit is not None:
            rows = rows[:limit] if since is not None else rows[-limit:]
        return rows

    # -- the clock ------------------------------------------------------------------------

    def on_candle(self, symbol: str, timeframe: str, candle: Candle) -> list[Order]:
        """Feed one closed candle; returns the orders it filled (or rejected), oldest first."""
        close_time = candle.time + timedelta(seconds=timeframe_seconds(timeframe))
        key = (symbol, timeframe)
        history = self._candles.get(key)
        if history is None:
            history = self._candles[key] = deque(maxlen=self._history or None)
        is_new = not history or candle.time > history[-1].time
        if not is_new:
            return []  # replayed or out-of-order candle: already accounted for
        if self._history:
            history.append(candle)
        if self.now is None or close_time >= self.now:
            self.now = close_time
            self._last_price[symbol] = candle.close

        changed: list[Order] = []
        for order_id in list(self._open.get(symbol, [])):
            order = self._orders[order_id]
            if order.created_at is not None and candle.time < order.created_at:
                continue
            fill = self._match(order, candle)
            if fill is not None:
                fill_price, taker = fill
                changed.append(self._fill(order, fill_price, taker, candle.time))
        return changed

    def _match(self, order: Order, candle: Candle) -> tuple[Decimal, bool] | None:
        """Fill price and whether it is a taker fill, or ``None`` if the order keeps resting."""
        buy = order.side == "buy"
        slip = ONE + self.slippage if buy else ONE - self.slippage
        if order.type == "market":
            return candle.open * slip, True
        if order.type == "stop" and order.id not in self._triggered:
            stop = order.stop_price
            assert stop is not None
            hit = candle.high >= stop if buy else candle.low <= stop
            if not hit:
                return None
            trigger = max(candle.open, stop) if buy else min(candle.open, stop)
            if order.price is None:  # stop-market
                return trigger * slip, True
            self._triggered.add(order.id)
            if (buy and trigger <= order.price) or (not buy and trigger >= order.price):
                return trigger, True
            return None  # rests as a limit order from the next candle on
        limit = order.price
        assert limit is not None
        if buy:
            if candle.open <= limit:
                return candle.open, True
            return (limit, False) if candle.low <= limit else None
        if candle.open >= limit:
            return candle.open, True
        return (limit, False) if candle.high >= limit else None

    def _fill(self, order: Order, price: Decimal, taker: bool, when: datetime) -> Order:
        market = self.market(order.symbol)
        rate = self._fee_rate(market, taker)
        cost = order.amount * price
        fee = cost * rate
        self._release(order.id)
        if order.side == "buy":
            if self._free[market.quote] < cost + fee:
                # Gapped past what was reserved and the account cannot cover it.
                return self._close(order, OrderStatus.REJECTED, when)
            self._free[market.quote] -= cost + fee
            self._free[market.base] += order.amount
        else:
            # The base reserved (and, on margin, what is borrowed: base goes negative) is sold.
            self._free[market.base] -= order.amount
            self._free[market.quote] += cost - fee
        filled = replace(
            order,
            filled=order.amount,
            remaining=ZERO,
            average=price,
            cost=cost,
            fee=Fee(cost=fee, currency=market.quote, rate=rate),
        )
        return self._close(filled, OrderStatus.CLOSED, when)
