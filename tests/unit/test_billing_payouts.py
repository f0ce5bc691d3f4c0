"""Pure parts of refunds and payouts: which dispute events reverse an invoice, and what a
payout of credits sends in the currency's smallest unit."""

from __future__ import annotations

from decimal import Decimal

from worker.billing.events import parse_paystack, parse_stripe
from worker.billing.payouts import is_payout_event, minor_units


def stripe_dispute(type_: str, status: str) -> dict[str, object]:
    return {
        "id": "evt_1",
        "type": type_,
        "created": 1_700_000_000,
        "data": {
            "object": {
                "id": "dp_1",
                "object": "dispute",
                "charge": "ch_1",
                "payment_intent": "pi_1",
                "status": status,
            }
        },
    }


def test_only_a_lost_stripe_dispute_reverses_the_invoice() -> None:
    lost = parse_stripe(stripe_dispute("charge.dispute.closed", "lost"))
    assert lost is not None and lost.status == "refunded"
    assert lost.references == ("ch_1", "pi_1")
    assert lost.details == {"reason": "chargeback", "dispute": "dp_1"}
    for type_, status in (
        ("charge.dispute.created", "needs_response"),
        ("charge.dispute.updated", "under_review"),
        ("charge.dispute.closed", "won"),
        ("charge.dispute.funds_withdrawn", "needs_response"),
    ):
        assert parse_stripe(stripe_dispute(type_, status)) is None, (type_, status)


def test_a_paystack_dispute_reverses_the_invoice_only_when_accepted() -> None:
    def event(name: str, resolution: str | None) -> dict[str, object]:
        return {
            "event": name,
            "data": {"id": 5, "resolution": resolution, "transaction": {"reference": "ref_1"}},
        }

    accepted = parse_paystack(event("charge.dispute.resolve", "merchant-accepted"))
    assert accepted is not None and accepted.status == "refunded"
    assert accepted.references == ("ref_1",)
    assert parse_paystack(event("charge.dispute.resolve", "declined")) is None
    assert parse_paystack(event("charge.dispute.create", None)) is None


def test_payouts_send_whole_smallest_units_rounded_down() -> None:
    assert minor_units(Decimal("60"), Decimal(1), "USD") == 6000
    assert minor_units(Decimal("12.345"), Decimal(1), "usd") == 1234
    assert minor_units(Decimal("60"), Decimal(1500), "NGN") == 9_000_000
    assert minor_units(Decimal("60"), Decimal(150), "JPY") == 9000  # zero-decimal currency


def test_payout_events_are_told_apart_from_payment_events() -> None:
    assert is_payout_event("stripe", "transfer.created")
    assert is_payout_event("paystack", "transfer.reversed")
    assert not is_payout_event("paystack", "charge.success")
    assert not is_payout_event("tripay", "transfer.success")
