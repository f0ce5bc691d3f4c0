"""Payment-provider webhook payloads (pydantic, at the edge) and the one shape the billing
job acts on: a ``PaymentUpdate`` naming an invoice and the state the provider reports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

InvoiceStatus = Literal["paid", "failed", "expired", "cancelled", "refunded"]


@dataclass(frozen=True)
class PaymentUpdate:
    """What a provider event means for one of our invoices."""

    status: InvoiceStatus
    # Keys that may find the invoice: our invoice id, and provider-side references
    # matched against invoices.provider_invoice_id / reference_id.
    invoice_id: uuid.UUID | None
    references: tuple[str, ...]
    amount: Decimal | None = None
    occurred_at: datetime | None = None
    details: dict[str, str] = field(default_factory=dict)
    # For provider-initiated invoices (e.g. Stripe subscription renewals) that we have no
    # row for yet: who and what they pay for, from the metadata we attached.
    user_id: uuid.UUID | None = None
    plan_id: uuid.UUID | None = None
    credits: Decimal | None = None
    currency: str | None = None
    # A provider subscription the payment belongs to, and whether this is its first
    # payment (paid together with the checkout that started it) or a renewal.
    subscription: str | None = None
    billing_reason: Literal["first", "renewal"] | None = None
    # A refund of part (or all) of the payment, in the invoice's currency: the total
    # refunded so far when ``refund_cumulative`` (Stripe), else one refund named by
    # ``refund_ref`` (Paystack). ``None``: the whole payment was refunded.
    refund_amount: Decimal | None = None
    refund_ref: str | None = None
    refund_cumulative: bool = False


def as_uuid(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def from_unix(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


# --- Stripe ---------------------------------------------------------------------------------

# Currencies Stripe counts in whole units (https://docs.stripe.com/currencies#zero-decimal).
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())


def stripe_amount(minor: int | None, currency: str | None) -> Decimal | None:
    if minor is None:
        return None
    if currency and currency.lower() in ZERO_DECIMAL:
        return Decimal(minor)
    return Decimal(minor) / 100


class StripeSubscriptionDetails(BaseModel):
    model_config = ConfigDict(extra="allow")

    subscription: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class StripeParent(BaseModel):
    model_config = ConfigDict(extra="allow")

    subscription_details: StripeSubscriptionDetails | None = None


class StripeObject(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    currency: str | None = None
    # checkout.session
    payment_status: str | None = None
    amount_total: int | None = None
    client_reference_id: str | None = None
    payment_intent: str | None = None
    # invoice
    amount_paid: int | None = None
    invoice: str | None = None
    # payment_intent
    amount_received: int | None = None
    # charge
    amount: int | None = None
    refunded: bool | None = None
    amount_refunded: int | None = None
    # checkout.session (subscription mode) and invoice: the subscription it belongs to;
    # invoice: why it was billed (subscription_create, subscription_cycle, ...), and the
    # subscription's metadata (``subscription_details``, under ``parent`` since API 2025-03)
    subscription: str | None = None
    billing_reason: str | None = None
    subscription_details: StripeSubscriptionDetails | None = None
    parent: StripeParent | None = None

    def subscription_id(self) -> str | None:
        details = self.parent.subscription_details if self.parent else None
        return self.subscription or (details.subscription if details else None)

    def all_metadata(self) -> dict[str, Any]:
        """The object's metadata, or its subscription's for a subscription invoice."""
        for details in (
            self.subscription_details,
            self.parent.subscription_details if self.parent else None,
        ):
            if not self.metadata and details is not None and details.metadata:
                return details.metadata
        return self.metadata


class StripeData(BaseModel):
    object: StripeObject


class StripeEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    created: int | None = None
    data: StripeData


# --- Paystack -------------------------------------------------------------------------------


class PaystackTransaction(BaseModel):
    model_config = ConfigDict(extra="allow")

    reference: str | None = None


class PaystackData(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int | str | None = None
    reference: str | None = None
    status: str | None = None
    amount: int | None = None
    currency: str | None = None
    paid_at: datetime | None = None
    channel: str | None = None
    metadata: dict[str, Any] | str | None = None
    transaction_reference: str | None = None
    transaction: PaystackTransaction | None = None
    # refund.processed: the refund's own reference
    refund_reference: str | None = None


class PaystackEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    event: str
    data: PaystackData


# --- Tripay ---------------------------------------------------------------------------------


class TripayCallback(BaseModel):
    model_config = ConfigDict(extra="allow")

    reference: str
    merchant_ref: str | None = None
    payment_method: str | None = None
    payment_method_code: str | None = None
    total_amount: int | None = None
    status: Literal["UNPAID", "PAID", "EXPIRED", "FAILED", "REFUND"]
    paid_at: int | None = None
