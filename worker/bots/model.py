"""What the bot runner knows about a bot: its configuration (a ``bots`` row) and its
trading state (open position, orders in flight, today's result)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

from worker.candles import MarketKey
from worker.credits import TransferRequest
from worker.errors import Fatal
from worker.exchanges import Exchange
from worker.strategies import StrategyParams, validate_params

from .order_settings import OrderSettings

HUNDRED = Decimal(100)
_NS = uuid.UUID("6f1d1e7e-3b1c-4c55-9d1a-7b0f1f3a7c11")


@lru_cache(maxsize=1 << 14)
def derived_id(*parts: object) -> uuid.UUID:
    """A deterministic uuid (order and trade rows) from a client order id; the ids of the
    order's credit transfers come from ``worker.credits.order_transfer_id``. Cached: a
    step derives the same order's id several times (its flight, its rows, its trade)."""
    return uuid.uuid5(_NS, "/".join(str(p) for p in parts))


@dataclass(frozen=True, slots=True)
class BotConfig:
    """A bot as its owner configured it (one ``public.bots`` row)."""

    id: str
    user_id: str
    name: str
    exchange: str
    symbol: str
    timeframe: str
    strategy: str
    params: StrategyParams
    params_key: str
    stake_amount: Decimal
    stop_loss: Decimal | None  # fraction of the entry price
    take_profit: Decimal | None
    risk_percentage: Decimal
    sizing: Literal["stake", "risk", "unlimited"]
    max_open_trades: int
    daily_loss_limit: Decimal | None
    allow_short: bool
    is_paper: bool
    credential_id: str | None
    initial_balance: Decimal
    fee: Decimal | None  # paper fee override (metadata.paper_fee)
    slippage: Decimal
    int_id: int = 0  # the id as a number (spreads periodic work across bots)
    leverage: int = 1  # live futures/swap markets only
    trailing_stop: bool = False  # metadata.trailing_stop: the stop follows the price up
    pairs: tuple[str, ...] = ()  # every pair the bot trades, in order (symbol first)
    orders: OrderSettings = field(default_factory=OrderSettings)  # market or limit, timeouts

    @property
    def market(self) -> MarketKey:
        return (self.exchange, self.symbol, self.timeframe)

    @property
    def order_key(self) -> str:
        """What the bot's client order ids derive from: its id, with the pair for a leg of a
        multi-pair bot (two pairs' entries on one close are two orders)."""
        return self.id if len(self.pairs) <= 1 else f"{self.id}/{self.symbol}"

    @property
    def group(self) -> tuple[str, str, str, str, str]:
        """Bots with equal groups share one strategy computation per candle."""
        return (*self.market, self.strategy, self.params_key)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> BotConfig:
        """Build from a ``bots`` row; raises ``Fatal`` naming what is wrong with it."""
        raw = row.get("parameters") or {}
        if isinstance(raw, str):
            raw = json.loads(raw)
        content = row.get("strategy_content")
        if row["strategy"] == "rules" and not raw and content:
            # A custom or AI-generated strategy: its rules are the strategy's content.
            try:
                raw = json.loads(str(content))
            except ValueError as e:
                raise Fatal(f"the strategy's rules are not valid JSON: {e}") from e
        params = validate_params(str(row["strategy"]), raw)
        meta = row.get("metadata") or {}
        if isinstance(meta, str):
            meta = json.loads(meta)

        def pct(v: Any) -> Decimal | None:
            return None if v is None else Decimal(str(v)) / HUNDRED

        sizing = str(meta.get("sizing", "stake"))
        if sizing not in ("stake", "risk", "unlimited"):
            raise Fatal(f"metadata.sizing must be 'stake', 'risk' or 'unlimited', got {sizing!r}")
        stop = pct(row.get("stop_loss"))
        if stop is None and params.stop_loss is not None:
            stop = Decimal(repr(params.stop_loss))
        take = pct(row.get("take_profit"))
        if take is None and params.take_profit is not None:
            take = Decimal(repr(params.take_profit))
        if sizing == "risk" and stop is None:
            raise Fatal("risk sizing needs a stop_loss: the risk is the loss if the stop is hit")
        limit = row.get("daily_loss_limit")
        fee = meta.get("paper_fee")
        return cls(
            id=str(row["id"]),
            user_id=str(row["user_id"]),
            name=str(row["name"]),
            exchange=str(row["exchange"]),
            symbol=str(row["trading_pair"]),
            timeframe=str(row["timeframe"]),
            strategy=str(row["strategy"]),
            params=params,
            params_key=json.dumps(params.model_dump(mode="json"), sort_keys=True),
            stake_amount=Decimal(str(row["stake_amount"])),
            stop_loss=stop,
            take_profit=take,
            risk_percentage=Decimal(str(row.get("risk_percentage") or 2)),
            sizing="risk"
            if sizing == "risk"
            else "unlimited"
            if sizing == "unlimited"
            else "stake",
            max_open_trades=int(row.get("max_open_trades") or 1),
            daily_loss_limit=None if limit is None else Decimal(str(limit)),
            allow_short=bool(row.get("allow_short")),
            is_paper=bool(row.get("is_paper_trade", True)),
            credential_id=None
            if row.get("exchange_credential_id") is None
            else str(row["exchange_credential_id"]),
            initial_balance=Decimal(str(row["initial_balance"])),
            fee=None if fee is None else Decimal(str(fee)),
            slippage=Decimal(str(meta.get("paper_slippage", "0"))),
            int_id=uuid.UUID(str(row["id"])).int,
            leverage=max(1, int(Decimal(str(row.get("leverage") or 1)))),
            trailing_stop=meta.get("trailing_stop") is True and stop is not None,
            pairs=tuple(str(p) for p in (row.get("pairs") or [row["trading_pair"]])),
            orders=OrderSettings.from_row(row),
        )


@dataclass(slots=True)
class Position:
    """The bot's open trade: long (bought, sold to close) or short (sold, bought back)."""

    trade_id: uuid.UUID
    amount: Decimal
    entry_price: Decimal
    entry_cost: Decimal
    entry_fee: Decimal
    entry_time: datetime
    entry_order_id: uuid.UUID
    stop_price: Decimal | None  # long: below entry; short: above
    take_price: Decimal | None  # long: above entry; short: below
    direction: Literal["long", "short"] = "long"
    decided_at: datetime | None = None  # open time of the candle whose close decided the entry
    exit_timeouts: int = 0  # limit exits of this position that timed out

    @property
    def long(self) -> bool:
        return self.direction == "long"


@dataclass(slots=True)
class InFlight:
    """An order placed and not yet filled (paper market orders fill at the next open)."""

    client_order_id: str
    order_id: uuid.UUID
    purpose: Literal["entry", "exit"]
    side: Literal["buy", "sell"]
    amount: Decimal
    reason: str
    hold_id: uuid.UUID | None
    placed_at: datetime  # open time of the candle whose close decided it
    price: Decimal | None = None  # a limit order's price (it times out); None: market
    adds: bool = False  # an entry's rest re-quoted: its fills add to the open position


@dataclass(slots=True)
class Protective:
    """A stop-loss or take-profit resting on the exchange for the open position."""

    client_order_id: str
    exchange_order_id: str | None
    kind: Literal["stop_loss", "take_profit"]
    side: Literal["buy", "sell"]
    amount: Decimal
    trigger: Decimal
    trade_id: uuid.UUID
    recorded: bool = True  # False: found on the exchange, not yet in protective_orders
    listed: bool = False  # in the account's open orders as surveyed before this close
    oco: bool = False  # a leg of an OCO list (the take-profit leg's limit is its trigger)


@dataclass(slots=True)
class BotState:
    """One leased bot in the runner's memory."""

    config: BotConfig
    epoch: int
    exchange: Exchange
    position: Position | None = None
    in_flight: dict[str, InFlight] = field(default_factory=dict)
    last_candle_at: datetime | None = None
    realized: Decimal = Decimal(0)
    day: date | None = None
    day_pnl: Decimal = Decimal(0)
    halted: bool = False  # paused/errored by the runner: no new decisions until reloaded
    can_short: bool = False  # allow_short on a paper (margin) account or a live futures/swap market
    pending_out: StepOut | None = None  # what reconciliation found, written on adoption
    protective: dict[str, Protective] = field(default_factory=dict)  # resting on the exchange
    unprotected: uuid.UUID | None = None  # the trade whose missing exchange stop was logged
    stops_moved: bool = False  # the open trade's stop or target moved: record it
    legs: list[BotState] = field(default_factory=list)  # a multi-pair bot's, one per pair
    pair_error: str | None = None  # a leg whose pair cannot trade: why (no new entries)
    placed_ids: set[str] = field(default_factory=set)  # protective client ids sent or known
    requote: Literal["buy", "sell"] | None = None  # an entry to place again (limit timeout)
    loaded_at: datetime | None = None  # live: the clock when loaded (``trades.never_sent``)

    @property
    def id(self) -> str:
        return self.config.id


@dataclass(slots=True)
class StepOut:
    """Rows one bot's candle step writes, persisted in one transaction with the others."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    credits: list[TransferRequest] = field(default_factory=list)
    protective: list[dict[str, Any]] = field(default_factory=list)  # protective_orders rows
    stops: list[dict[str, Any]] = field(default_factory=list)  # open trades whose stop moved
    resized: list[dict[str, Any]] = field(default_factory=list)  # open trades an exit reduced
    equity: dict[str, Any] | None = None  # the bot_equity row of this step
    status: str | None = None
    status_reason: str | None = None
    error_message: str | None = None

    @property
    def has_writes(self) -> bool:
        return bool(
            self.orders
            or self.trades
            or self.logs
            or self.notes
            or self.credits
            or self.protective
            or self.stops
            or self.resized
            or self.equity
            or self.status
        )

    def log(self, bot: BotConfig, level: str, message: str, **context: Any) -> None:
        self.logs.append(
            {
                "bot_id": bot.id,
                "user_id": bot.user_id,
                "log_level": level,
                "message": message,
                "context": context,
            }
        )

    def notify(self, bot: BotConfig, kind: str, title: str, body: str, **data: Any) -> None:
        self.notes.append(
            {
                "bot_id": bot.id,
                "user_id": bot.user_id,
                "kind": kind,
                "title": title,
                "body": body,
                "data": {"bot_id": bot.id, **data},
            }
        )
