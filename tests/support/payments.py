"""Payment-provider webhooks as the providers send them, and the billing jobs they queue.

Each builder returns a :class:`Delivery`: the raw body and headers the provider signs
(Stripe ``Stripe-Signature``, Paystack ``x-paystack-signature``, Tripay
``X-Callback-Signature``, under the secrets below) and the inbox row its Edge Function
stores — the same event id and type. Shapes follow the providers' documentation: Stripe
event objects (``checkout.session``, ``invoice``, ``payment_intent``, ``charge``), Paystack
``charge.success`` / ``refund.processed`` events, Tripay payment-status callbacks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import stripe as sdk

STRIPE_SECRET = "whsec_test_secret"
PAYSTACK_SECRET = "sk_test_paystack"
TRIPAY_PRIVATE_KEY = "tripay-private-key"


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery: what goes over the wire and what the inbox stores of it."""

    provider: str
    event_id: str
    event_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    occurred_at: datetime | None = None


def _hex_hmac(key: str, message: bytes, digest: Any) -> str:
    return hmac.new(key.encode(), message, digest).hexdigest()


def stripe(
    event_id: str, event_type: str, obj: dict[str, Any], created: int | None = None
) -> Delivery:
    """A Stripe event (https://docs.stripe.com/api/events/object) signed as Stripe signs it,
    by the official SDK: ``t={timestamp},v1={hex HMAC-SHA256 of "{t}.{body}"}``."""
    created = int(time.time()) if created is None else created
    event = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": {"object": obj},
    }
    body = json.dumps(event).encode()
    signature = sdk.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET)
    return Delivery(
        "stripe",
        event_id,
        event_type,
        body,
        {"stripe-signature": signature, "content-type": "application/json"},
        datetime.fromtimestamp(created, UTC),
    )


def paystack(event: str, data: dict[str, Any]) -> Delivery:
    """A Paystack event (https://paystack.com/docs/payments/webhooks/), signed with the
    hex HMAC-SHA512 of the body under the secret key; its inbox id is the event name and
    the object's id (or reference), as the Edge Function makes it."""
    body = json.dumps({"event": event, "data": data}).encode()
    key = data.get("id", data.get("reference", data.get("transaction_reference")))
    paid_at = data.get("paid_at")
    return Delivery(
        "paystack",
        f"{event}:{key}",
        event,
        body,
        {
            "x-paystack-signature": _hex_hmac(PAYSTACK_SECRET, body, hashlib.sha512),
            "content-type": "application/json",
        },
        datetime.fromisoformat(paid_at) if isinstance(paid_at, str) else None,
    )


def tripay(callback: dict[str, Any]) -> Delivery:
    """A Tripay payment-status callback (https://tripay.co.id/developer?tab=callback),
    signed with the hex HMAC-SHA256 of the body under the private key; one inbox event per
    (reference, status)."""
    body = json.dumps(callback).encode()
    paid_at = callback.get("paid_at")
    return Delivery(
        "tripay",
        f"{callback['reference']}:{callback['status']}",
        f"payment_status.{callback['status']}",
        body,
        {
            "x-callback-signature": _hex_hmac(TRIPAY_PRIVATE_KEY, body, hashlib.sha256),
            "x-callback-event": "payment_status",
            "content-type": "application/json",
        },
        datetime.fromtimestamp(paid_at, UTC) if isinstance(paid_at, int) else None,
    )


async def store(conn: psycopg.AsyncConnection[Any], delivery: Delivery) -> None:
    """What the Edge Function does with a verified delivery: store it once per event id."""
    await conn.execute(
        "insert into webhook_events (provider, event_id, event_type, payload, occurred_at) "
        "values (%s, %s, %s, %s, %s)",
        (
            delivery.provider,
            delivery.event_id,
            delivery.event_type,
            delivery.body.decode(),
            delivery.occurred_at,
        ),
    )
