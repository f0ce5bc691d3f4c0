"""Provider payloads (pydantic, as documented) and the normalized shapes the sync writes.

Providers send numbers as strings (``"10.5"``), leave optional fields out or ``null``, and
add instrument kinds over time; the models accept all of that and normalize to ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field


def _decimal_or_none(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        value = repr(value)  # exact shortest form, never the binary expansion
    try:
        result = Decimal(str(value))
    except InvalidOperation as e:
        raise ValueError(f"not a decimal number: {value!r}") from e
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


Dec = Annotated[Decimal | None, BeforeValidator(_decimal_or_none)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


# --- SnapTrade ---------------------------------------------------------------------------


class Instrument(_Lenient):
    """``Instrument`` (oneOf by ``kind``); unknown kinds are kept with their kind as given."""

    kind: str = "other"
    id: str | None = None
    symbol: str | None = None
    raw_symbol: str | None = None
    description: str | None = None
    currency: str | None = None
    exchange: str | None = None


class AccountPosition(_Lenient):
    instrument: Instrument
    units: Dec = None
    price: Dec = None
    cost_basis: Dec = None
    currency: str | None = None
    cash_equivalent: bool | None = None


class DataFreshness(_Lenient):
    as_of: datetime


class AllAccountPositionsResponse(_Lenient):
    results: list[AccountPosition] = Field(default_factory=list)
    data_freshness: DataFreshness | None = None


class BalanceTotal(_Lenient):
    amount: Dec = None
    currency: str | None = None


class AccountBalance(_Lenient):
    total: BalanceTotal | None = None


class SnapTradeAccount(_Lenient):
    """``Account``: one account at a brokerage, under a connection (brokerage authorization)."""

    id: str
    brokerage_authorization: str
    name: str | None = None
    number: str | None = None
    institution_name: str | None = None
    balance: AccountBalance | None = None
    status: str | None = None
    account_category: str | None = None


class BalanceCurrency(_Lenient):
    code: str | None = None


class Balance(_Lenient):
    currency: BalanceCurrency | None = None
    cash: Dec = None
    buying_power: Dec = None


class LoginRedirectURI(_Lenient):
    redirectURI: str
    sessionId: str | None = None


class UserIDandSecret(_Lenient):
    userId: str
    userSecret: str = Field(repr=False)


class AccountOrderRecord(_Lenient):
    brokerage_order_id: str | None = None
    status: str | None = None
    action: str | None = None
    total_quantity: Dec = None
    filled_quantity: Dec = None
    execution_price: Dec = None


class SnapTradeWebhook(_Lenient):
    """A stored SnapTrade webhook (``WebhookBase`` plus the event's fields).

    The documented ``WebhookBase`` spells the id ``webookId``; versioned payloads use
    ``webhookId``. Both are accepted, as are both names for the connection.
    """

    webhook_id: str = Field(validation_alias=AliasChoices("webhookId", "webookId"))
    event_type: str = Field(validation_alias=AliasChoices("eventType", "type"))
    event_timestamp: datetime = Field(validation_alias="eventTimestamp")
    user_id: str = Field(validation_alias="userId")
    account_id: str | None = Field(default=None, validation_alias="accountId")
    connection_id: str | None = Field(
        default=None, validation_alias=AliasChoices("connectionId", "brokerageAuthorizationId")
    )
    details: dict[str, Any] | None = None


# --- Alpaca ------------------------------------------------------------------------------


class AlpacaAccount(_Lenient):
    id: str
    account_number: str | None = None
    currency: str = "USD"
    equity: Dec = None
    cash: Dec = None
    status: str | None = None


class AlpacaPosition(_Lenient):
    symbol: str
    qty: Dec = None
    avg_entry_price: Dec = None
    current_price: Dec = None
    market_value: Dec = None
    asset_class: str | None = None
    side: str | None = None


# --- normalized --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Holding:
    """One position as we store it: exact numbers, provider-agnostic."""

    symbol: str
    units: Decimal
    price: Decimal | None = None
    average_cost: Decimal | None = None
    currency: str = "USD"
    description: str | None = None
    instrument_type: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {
            "symbol": self.symbol,
            "units": str(self.units),
            "price": None if self.price is None else str(self.price),
            "average_cost": None if self.average_cost is None else str(self.average_cost),
            "currency": self.currency,
            "description": self.description,
            "instrument_type": self.instrument_type,
        }


@dataclass(frozen=True, slots=True)
class PositionsSnapshot:
    """An account's positions at the provider's as-of time, plus what could not be used."""

    as_of: datetime
    holdings: tuple[Holding, ...]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BrokerageAccount:
    provider_account_id: str
    provider_connection_id: str
    name: str | None
    number_masked: str | None
    institution_name: str | None
    currency: str
    total_value: Decimal | None
    cash: Decimal | None = None


def mask_number(number: str | None) -> str | None:
    """Keep the last four characters of an account number."""
    if not number:
        return None
    return "*" * max(0, len(number) - 4) + number[-4:]


def snapshot_from_snaptrade(
    payload: AllAccountPositionsResponse, *, now: datetime | None = None
) -> PositionsSnapshot:
    """Normalize ``/accounts/{id}/positions/all``; positions without a symbol or units are skipped."""
    holdings: list[Holding] = []
    skipped: list[str] = []
    for pos in payload.results:
        inst = pos.instrument
        symbol = inst.symbol or inst.raw_symbol
        if not symbol or pos.units is None:
            skipped.append(f"{inst.kind}:{symbol or inst.id or '?'}")
            continue
        holdings.append(
            Holding(
                symbol=symbol.strip(),
                units=pos.units,
                price=pos.price,
                average_cost=pos.cost_basis,
                currency=(pos.currency or inst.currency or "USD").upper(),
                description=inst.description,
                instrument_type=inst.kind,
            )
        )
    as_of = payload.data_freshness.as_of if payload.data_freshness else (now or datetime.now(UTC))
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    return PositionsSnapshot(as_of=as_of, holdings=tuple(holdings), skipped=tuple(skipped))


def snapshot_from_alpaca(positions: list[AlpacaPosition], *, as_of: datetime) -> PositionsSnapshot:
    holdings: list[Holding] = []
    skipped: list[str] = []
    for pos in positions:
        if pos.qty is None:
            skipped.append(pos.symbol)
            continue
        units = -abs(pos.qty) if pos.side == "short" else pos.qty
        holdings.append(
            Holding(
                symbol=pos.symbol,
                units=units,
                price=pos.current_price,
                average_cost=pos.avg_entry_price,
                instrument_type={
                    "us_equity": "stock",
                    "crypto": "crypto",
                    "us_option": "option",
                }.get(pos.asset_class or "", pos.asset_class),
            )
        )
    return PositionsSnapshot(as_of=as_of, holdings=tuple(holdings), skipped=tuple(skipped))
