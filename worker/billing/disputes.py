"""Chargebacks: provider dispute events -> a ``PaymentUpdate`` that reverses the invoice.

A dispute changes an invoice only once the provider has decided it against us: Stripe
``charge.dispute.closed`` with ``status: lost`` (https://docs.stripe.com/api/disputes/object),
Paystack ``charge.dispute.resolve`` accepted by the merchant or automatically
(https://paystack.com/docs/payments/webhooks/#dispute-events). The invoice is then reversed
as a refund would be (``public.billing_apply_chargeback``). Opened, reminded, won or
still-open disputes change nothing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from .models import PaymentUpdate, from_unix

CHARGEBACK = "chargeback"

# Paystack resolutions that give the customer their money back.
PAYSTACK_LOST = frozenset({"merchant-accepted", "auto-accepted"})


class StripeDispute(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    charge: str | None = None
    payment_intent: str | None = None
    status: str | None = None


class PaystackDisputeTransaction(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int | str | None = None
    reference: str | None = None


class PaystackDispute(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int | str
    status: str | None = None
    resolution: str | None = None
    transaction: PaystackDisputeTransaction | None = None
    transaction_reference: str | None = None


def is_dispute(event_type: str) -> bool:
    """Stripe and Paystack both name their dispute events ``charge.dispute.*``."""
    return event_type.startswith("charge.dispute.")


def stripe_dispute(
    event_type: str, obj: dict[str, Any], created: int | None
) -> PaymentUpdate | None:
    dispute = StripeDispute.model_validate(obj)
    if event_type != "charge.dispute.closed" or dispute.status != "lost":
        return None
    refs = tuple(r for r in (dispute.charge, dispute.payment_intent) if r)
    return PaymentUpdate(
        status="refunded",
        invoice_id=None,
        references=refs,
        occurred_at=from_unix(created),
        details={"reason": CHARGEBACK, "dispute": dispute.id},
    )


def paystack_dispute(event: str, data: dict[str, Any]) -> PaymentUpdate | None:
    dispute = PaystackDispute.model_validate(data)
    if event != "charge.dispute.resolve" or dispute.resolution not in PAYSTACK_LOST:
        return None
    tx = dispute.transaction
    refs = tuple(r for r in (tx.reference if tx else None, dispute.transaction_reference) if r)
    return PaymentUpdate(
        status="refunded",
        invoice_id=None,
        references=refs,
        details={"reason": CHARGEBACK, "dispute": str(dispute.id)},
    )
