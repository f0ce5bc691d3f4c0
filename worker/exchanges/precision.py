"""Rounding and limit checks exactly as the exchange applies them, using ccxt's own code.

``MarketRules`` wraps a ccxt exchange instance whose markets are set (from the network for
live trading, or from recorded ``load_markets()`` output for paper trading, with
``set_markets`` and no network). Amounts are truncated to the step size and prices rounded
to the tick size by ccxt's ``amount_to_precision`` / ``price_to_precision``; then the
order is checked against ``limits.amount``, ``limits.price``, ``limits.cost`` (and
``limits.market`` where the exchange publishes it).
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import ccxt
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

from worker.errors import Fatal

from .models import CheckedOrder, Market, OrderType, Side, to_decimal

DEFAULT_MARKETS_DIR = Path(__file__).resolve().parent / "markets"
"""Recorded ``load_markets()`` output shipped with the package (ccxt's static test fixtures)."""

"""Environment variable naming another directory of ``<exchange_id>.json`` market files."""

ORDER_AMOUNT_LIMIT = Decimal(10) ** 16
"""Orders and trades store amounts as numeric(28, 12), below 10^16. Not every exchange
publishes a maximum amount, and one bot's order past this would fail the statement that
writes its worker's whole batch of bots."""


def _is_decimal_places(markets: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when a recorded market file counts precision in decimal places (old ccxt dumps).

    Such files hold integers only (``"amount": 5``); tick-size files hold fractions
    (``"amount": 1e-05``), so one fraction anywhere decides.
    """
    seen_int = False
    for market in markets.values():
        precision = market.get("precision") or {}
        for key in ("amount", "price"):
            value = precision.get(key)
            if isinstance(value, float) and not value.is_integer():
                return False
            if isinstance(value, int):
                seen_int = True
    return seen_int


def _places_to_tick(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return float(Decimal(1).scaleb(-value))
    return value


def normalize_markets(markets: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return markets whose precision is expressed as tick sizes (ccxt's current mode)."""
    out: dict[str, dict[str, Any]] = {}
    convert = _is_decimal_places(markets)
    for symbol, market in markets.items():
        copy = dict(market)
        precision = copy.get("precision")
        if convert and isinstance(precision, dict):
            copy["precision"] = {k: _places_to_tick(v) for k, v in precision.items()}
        out[symbol] = copy
    return out


def read_markets_file(exchange_id: str, markets_dir: Path | None = None) -> dict[str, Any]:
    """Load recorded ``load_markets()`` output for an exchange from ``<dir>/<id>.json``
    (``markets_dir``, by default the definitions shipped with the package)."""
    directory = markets_dir or DEFAULT_MARKETS_DIR
    path = directory / f"{exchange_id}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise Fatal(
            f"no recorded market definitions for exchange {exchange_id!r} ({path})"
        ) from None
    if not isinstance(data, dict):
        raise Fatal(f"{path} does not hold a mapping of symbol to market")
    return data


def offline_client(exchange_id: str, markets: Mapping[str, Mapping[str, Any]]) -> ccxt.Exchange:
    """A synchronous ccxt instance that never touches the network, with ``markets`` set."""
    cls = getattr(ccxt, exchange_id, None)
    if cls is None or not isinstance(cls, type):
        raise Fatal(f"unknown ccxt exchange id {exchange_id!r}")
    client: ccxt.Exchange = cls({"enableRateLimit": False})
    client.precisionMode = TICK_SIZE
    client.set_markets(list(normalize_markets(markets).values()))
    return client


def _step(value: object, mode: int) -> Decimal | None:
    if value is None:
        return None
    if mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(value))  # type: ignore[call-overload]
    if mode == TICK_SIZE:
        return to_decimal(value)
    return None  # SIGNIFICANT_DIGITS has no fixed step


def _limit(limits: Mapping[str, Any], name: str, bound: str) -> Decimal | None:
    section = limits.get(name) or {}
    value = to_decimal(section.get(bound))
    return value


def _fmt(value: Decimal) -> str:
    """Plain notation without exponent or trailing zeros (0.00001, not 1E-5)."""
    text = format(value.normalize(), "f")
    return text


class MarketRules:
    """Markets of one exchange plus ccxt's precision functions over them."""

    def __init__(self, client: ccxt.Exchange) -> None:
        self._client = client
        self._cache: dict[str, Market] = {}

    @classmethod
    def from_markets(
        cls, exchange_id: str, markets: Mapping[str, Mapping[str, Any]]
    ) -> MarketRules:
        return cls(offline_client(exchange_id, markets))

    def replace_markets(self, markets: Mapping[str, Mapping[str, Any]]) -> None:
        """Swap in new definitions (a refreshed cache); every holder of these rules sees them."""
        self._client.set_markets(list(normalize_markets(markets).values()))
        self._cache.clear()

    @property
    def exchange_id(self) -> str:
        return str(self._client.id)

    @property
    def symbols(self) -> list[str]:
        return sorted(self._client.markets or {})

    def raw_market(self, symbol: str) -> dict[str, Any]:
        markets = self._client.markets or {}
        if symbol not in markets:
            raise Fatal(f"{self.exchange_id} has no market {symbol!r}")
        market: dict[str, Any] = markets[symbol]
        return market

    def market(self, symbol: str) -> Market:
        """The typed market for ``symbol``; ``Fatal`` if the exchange does not list it."""
        cached = self._cache.get(symbol)
        if cached is not None:
            return cached
        m = self.raw_market(symbol)
        mode = int(self._client.precisionMode)
        precision = m.get("precision") or {}
        limits = m.get("limits") or {}
        market = Market(
            exchange=self.exchange_id,
            symbol=symbol,
            id=str(m.get("id")),
            base=str(m.get("base")),
            quote=str(m.get("quote")),
            settle=m.get("settle"),
            type=str(m.get("type") or "spot"),
            active=m.get("active") is not False,
            contract=bool(m.get("contract")),
            linear=m.get("linear"),
            contract_size=to_decimal(m.get("contractSize")),
            amount_precision=_step(precision.get("amount"), mode),
            price_precision=_step(precision.get("price"), mode),
            min_amount=_limit(limits, "amount", "min"),
            max_amount=_limit(limits, "amount", "max"),
            min_price=_limit(limits, "price", "min"),
            max_price=_limit(limits, "price", "max"),
            min_cost=_limit(limits, "cost", "min"),
            max_cost=_limit(limits, "cost", "max"),
            max_market_amount=_limit(limits, "market", "max"),
            taker=to_decimal(m.get("taker")) or Decimal(0),
            maker=to_decimal(m.get("maker")) or Decimal(0),
        )
        self._cache[symbol] = market
        return market

    def amount_to_precision(self, symbol: str, amount: Decimal) -> Decimal:
        """Truncate ``amount`` to the market's step, as ccxt does before sending an order."""
        self.market(symbol)
        try:
            # ccxt changes the thread's decimal context (traps, rounding); keep it local.
            with decimal.localcontext():
                text = self._client.amount_to_precision(symbol, str(amount))
        except ccxt.InvalidOrder as e:
            raise Fatal(f"amount {_fmt(amount)} {symbol} rounds to zero: {e}") from e
        except (ccxt.BadSymbol, AssertionError, TypeError) as e:
            raise Fatal(f"{self.exchange_id} {symbol} has no usable amount precision") from e
        return Decimal(text)

    def price_to_precision(self, symbol: str, price: Decimal) -> Decimal:
        """Round ``price`` to the market's tick size, as ccxt does before sending an order."""
        self.market(symbol)
        try:
            with decimal.localcontext():
                text = self._client.price_to_precision(symbol, str(price))
        except ccxt.InvalidOrder as e:
            raise Fatal(f"price {_fmt(price)} {symbol} rounds to zero: {e}") from e
        except (ccxt.BadSymbol, AssertionError, TypeError) as e:
            raise Fatal(f"{self.exchange_id} {symbol} has no usable price precision") from e
        return Decimal(text)

    def cost(self, market: Market, amount: Decimal, price: Decimal) -> Decimal:
        """Notional in quote currency (contract size applied; inverse contracts in USD)."""
        size = market.contract_size or Decimal(1)
        if market.contract and market.linear is False:
            return amount * size
        return amount * price * size

    def check_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: Decimal,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        *,
        closing: bool = False,
    ) -> CheckedOrder:
        """Round and validate an order exactly as the exchange would; ``Fatal`` if it would reject.

        ``closing`` (an order that only reduces a paper position) passes on an inactive
        market: a delisted market stops new entries, its open positions are still managed.

        ``price`` is the limit price for limit orders (and stop-limit orders). For market
        and stop-market orders it may carry a reference price (last close) used only for
        the minimum-cost check; it is not part of the returned order.
        """
        market = self.market(symbol)
        where = f"{symbol} on {self.exchange_id}"
        if not market.active and not closing:
            raise Fatal(f"market {where} is not active: no new entries")
        if side not in ("buy", "sell"):
            raise Fatal(f"order side must be 'buy' or 'sell', not {side!r}")
        if type not in ("market", "limit", "stop"):
            raise Fatal(f"order type must be market, limit or stop, not {type!r}")
        if amount <= 0:
            raise Fatal(f"order amount must be positive, got {_fmt(amount)}")
        if type == "limit" and price is None:
            raise Fatal(f"a limit order on {where} needs a price")
        if type == "stop" and stop_price is None:
            raise Fatal(f"a stop order on {where} needs a stop price")

        rounded = self.amount_to_precision(symbol, amount)
        limit_price = self.price_to_precision(symbol, price) if price is not None else None
        stop = self.price_to_precision(symbol, stop_price) if stop_price is not None else None
        order_price = (
            limit_price if type == "limit" or (type == "stop" and price is not None) else None
        )

        if rounded >= ORDER_AMOUNT_LIMIT:
            raise Fatal(
                f"amount {_fmt(rounded)} is more than an order holds (below 10^16) for {where}"
            )
        if market.min_amount is not None and rounded < market.min_amount:
            raise Fatal(
                f"amount {_fmt(rounded)} is below the minimum amount {_fmt(market.min_amount)} "
                f"(limits.amount.min) for {where}"
            )
        if market.max_amount is not None and market.max_amount > 0 and rounded > market.max_amount:
            raise Fatal(
                f"amount {_fmt(rounded)} is above the maximum amount {_fmt(market.max_amount)} "
                f"(limits.amount.max) for {where}"
            )
        if (
            type == "market"
            and market.max_market_amount is not None
            and market.max_market_amount > 0
            and rounded > market.max_market_amount
        ):
            raise Fatal(
                f"market order amount {_fmt(rounded)} is above {_fmt(market.max_market_amount)} "
                f"(limits.market.max) for {where}"
            )
        for label, value in (("price", limit_price), ("stop price", stop)):
            if value is None:
                continue
            if market.min_price is not None and market.min_price > 0 and value < market.min_price:
                raise Fatal(
                    f"{label} {_fmt(value)} is below the minimum price {_fmt(market.min_price)} "
                    f"(limits.price.min) for {where}"
                )
            if market.max_price is not None and market.max_price > 0 and value > market.max_price:
                raise Fatal(
                    f"{label} {_fmt(value)} is above the maximum price {_fmt(market.max_price)} "
                    f"(limits.price.max) for {where}"
                )

        reference = limit_price or stop or price
        cost = self.cost(market, rounded, reference) if reference is not None else None
        if cost is not None:
            if market.min_cost is not None and cost < market.min_cost:
                raise Fatal(
                    f"order value {_fmt(cost)} {market.quote} is below the minimum cost "
                    f"{_fmt(market.min_cost)} {market.quote} (limits.cost.min) for {where}"
                )
            if market.max_cost is not None and market.max_cost > 0 and cost > market.max_cost:
                raise Fatal(
                    f"order value {_fmt(cost)} {market.quote} is above the maximum cost "
                    f"{_fmt(market.max_cost)} {market.quote} (limits.cost.max) for {where}"
                )
        return CheckedOrder(
            symbol=symbol,
            side=side,
            type=type,
            amount=rounded,
            price=order_price,
            stop_price=stop,
            cost=cost,
        )


@cache
def recorded_rules(exchange_id: str, markets_dir: str | None = None) -> MarketRules:
    """Shared ``MarketRules`` over the recorded market file (one per process and exchange)."""
    directory = Path(markets_dir) if markets_dir else None
    return MarketRules.from_markets(exchange_id, read_markets_file(exchange_id, directory))
