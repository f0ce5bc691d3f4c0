"""Provider events -> ``PaymentUpdate`` (pure: no I/O). ``None`` means the event does not
change any invoice (an event type we do not act on, or a still-pending payment)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from .disputes import is_dispute, paystack_dispute, stripe_dispute
from .models import (
    InvoiceStatus,
    PaymentUpdate,
    PaystackEvent,
    StripeEvent,
    TripayCallback,
    as_uuid,
    from_unix,
    stripe_amount,
)

STRIPE_STATUS: dict[str, InvoiceStatus] = {
    "checkout.session.completed": "paid",
    "checkout.session.async_payment_succeeded": "paid",
    "checkout.session.async_payment_failed": "failed",
    "checkout.session.expired": "expired",
    "invoice.paid": "paid",
    "invoice.payment_succeeded": "paid",
    "invoice.payment_failed": "failed",
    "invoice.marked_uncollectible": "failed",
    "invoice.voided": "cancelled",
    "payment_intent.succeeded": "paid",
    "payment_intent.payment_failed": "failed",
    "payment_intent.canceled": "cancelled",
    "charge.refunded": "refunded",
}

# An invoice's billing_reason: the subscription's first invoice is paid by the checkout
# that started it; a cycle is a renewal billed by Stripe.
STRIPE_BILLING_REASON: dict[str, Literal["first", "renewal"]] = {
    "subscription_create": "first",
    "subscription_cycle": "renewal",
}

PAYSTACK_STATUS: dict[str, InvoiceStatus] = {
    "charge.success": "paid",
    "charge.failed": "failed",
    "refund.processed": "refunded",
}

TRIPAY_STATUS: dict[str, InvoiceStatus] = {
    "PAID": "paid",
    "EXPIRED": "expired",
    "FAILED": "failed",
    "REFUND": "refunded",
}


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except ArithmeticError:
        return None


def parse_stripe(payload: dict[str, Any]) -> PaymentUpdate | None:
    event = StripeEvent.model_validate(payload)
    if is_dispute(event.type):
        return stripe_dispute(event.type, payload["data"]["object"], event.created)
    status = STRIPE_STATUS.get(event.type)
    if status is None:
        return None
    obj = event.data.object
    if event.type == "checkout.session.completed" and obj.payment_status not in (
        "paid",
        "no_payment_required",
    ):
        return None  # paid later: async_payment_succeeded follows
    refund_amount = None
    if event.type == "charge.refunded" and not obj.refunded:
        # Part of the charge refunded: amount_refunded is the total so far.
        if not obj.amount_refunded:
            return None
        refund_amount = stripe_amount(obj.amount_refunded, obj.currency)
    minor = None
    if status == "paid":
        minor = next(
            (m for m in (obj.amount_total, obj.amount_paid, obj.amount_received) if m is not None),
            None,
        )
        if minor == 0:
            return None  # a trial's start: nothing paid (the first charge ends the trial)
    meta = obj.all_metadata()
    subscription = obj.subscription_id()
    # Not the subscription: a renewal names the same one as the first payment.
    refs = tuple(r for r in (obj.id, obj.payment_intent, obj.invoice) if r)
    return PaymentUpdate(
        status=status,
        invoice_id=as_uuid(meta.get("invoice_id")) or as_uuid(obj.client_reference_id),
        references=refs,
        amount=stripe_amount(minor, obj.currency),
        occurred_at=from_unix(event.created),
        details={"transaction_id": obj.payment_intent or obj.id, "payment_method": "stripe"},
        user_id=as_uuid(meta.get("user_id")),
        plan_id=as_uuid(meta.get("plan_id")),
        credits=_decimal(meta.get("credits")),
        currency=obj.currency.upper() if obj.currency else None,
        subscription=subscription,
        billing_reason=STRIPE_BILLING_REASON.get(obj.billing_reason or ""),
        refund_amount=refund_amount,
        refund_ref=obj.id if refund_amount is not None else None,
        refund_cumulative=refund_amount is not None,
    )


def parse_paystack(payload: dict[str, Any]) -> PaymentUpdate | None:
    event = PaystackEvent.model_validate(payload)
    if is_dispute(event.event):
        return paystack_dispute(event.event, payload["data"])
    status = PAYSTACK_STATUS.get(event.event)
    if status is None:
        return None
    data = event.data
    meta = data.metadata if isinstance(data.metadata, dict) else {}
    refs = tuple(
        r
        for r in (
            data.reference,
            data.transaction_reference,
            data.transaction.reference if data.transaction else None,
        )
        if r
    )
    # A refund names its amount (possibly part of the payment) and its own id; one that
    # names no amount refunds the whole payment.
    refund = status == "refunded" and data.amount is not None
    return PaymentUpdate(
        status=status,
        invoice_id=as_uuid(meta.get("invoice_id")),
        references=refs,
        refund_amount=Decimal(data.amount) / 100 if refund and data.amount is not None else None,
        refund_ref=(data.refund_reference or (str(data.id) if data.id is not None else None))
        if refund
        else None,
        # Paystack counts in the currency's subunit (kobo, pesewas, cents).
        amount=Decimal(data.amount) / 100 if status == "paid" and data.amount is not None else None,
        occurred_at=data.paid_at,
        details={
            k: v
            for k, v in {
                "transaction_id": str(data.id) if data.id is not None else None,
                "payment_channel": data.channel,
                "payment_method": "paystack",
            }.items()
            if v
        },
    )


def parse_tripay(payload: dict[str, Any]) -> PaymentUpdate | None:
    cb = TripayCallback.model_validate(payload)
    status = TRIPAY_STATUS.get(cb.status)
    if status is None:
        return None
    return PaymentUpdate(
        status=status,
        invoice_id=as_uuid(cb.merchant_ref),
        references=tuple(r for r in (cb.reference, cb.merchant_ref) if r),
        # Tripay amounts are whole rupiah.
        amount=Decimal(cb.total_amount)
        if status == "paid" and cb.total_amount is not None
        else None,
        occurred_at=from_unix(cb.paid_at),
        details={
            k: v
            for k, v in {
                "transaction_id": cb.reference,
                "payment_method": cb.payment_method_code,
                "payment_channel": cb.payment_method,
            }.items()
            if v
        },
    )


PARSERS = {"stripe": parse_stripe, "paystack": parse_paystack, "tripay": parse_tripay}
