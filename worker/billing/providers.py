"""The providers' calls the fleet makes for renewals, as each documents them:

- Paystack ``POST /transaction/charge_authorization`` (JSON, ``Authorization: Bearer
  <secret key>``) ``{authorization_code, email, amount (subunits, string), currency,
  reference, metadata}`` -> ``{"status": true, "data": {"status": "success" | "failed" | …,
  "reference", "amount", "paid_at", "gateway_response"}}``; a decline is ``data.status``
  ``failed`` (HTTP 200), a refused request ``{"status": false, "message"}`` (HTTP 400).
- Tripay ``POST /transaction/create`` (JSON, ``Authorization: Bearer <API key>``), a closed
  transaction signed with hex HMAC-SHA256(private key, merchant code + merchant_ref +
  amount) -> ``{"success": true, "data": {"reference", "checkout_url", …}}``.
- Stripe ``POST /v1/subscriptions/{id}`` (form-encoded, ``Authorization: Bearer <secret
  key>``) ``cancel_at_period_end=true|false`` -> the subscription object.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from worker.errors import Retryable

from .settings import BillingSettings


class ProviderRefused(Exception):
    """The provider answered, and said no (a request it will refuse again as it is)."""


@dataclass(frozen=True)
class ChargeResult:
    outcome: Literal["paid", "failed"]
    reference: str
    amount: Decimal | None = None
    paid_at: datetime | None = None
    reason: str | None = None


class _PaystackCharge(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str
    reference: str | None = None
    amount: int | None = None
    paid_at: datetime | None = None
    gateway_response: str | None = None


async def _post(
    http: httpx.AsyncClient, url: str, *, headers: dict[str, str], **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    try:
        response = await http.post(url, headers=headers, **kwargs)
    except httpx.HTTPError as e:
        raise Retryable(f"could not reach {httpx.URL(url).host}: {type(e).__name__}") from e
    if response.status_code == 429 or response.status_code >= 500:
        raise Retryable(f"{httpx.URL(url).host} answered {response.status_code}")
    try:
        body = response.json()
    except ValueError as e:
        raise Retryable(f"{httpx.URL(url).host} answered a body that is not JSON") from e
    return response.status_code, body if isinstance(body, dict) else {}


def minor_units(amount: Decimal) -> int:
    """Paystack's subunits (kobo, pesewas, cents) of an amount with two decimals."""
    return int((amount * 100).to_integral_value())


async def paystack_charge(
    http: httpx.AsyncClient,
    settings: BillingSettings,
    *,
    authorization_code: str,
    email: str,
    amount: Decimal,
    currency: str,
    reference: str,
    invoice_id: str,
) -> ChargeResult:
    assert settings.paystack_secret_key is not None
    status, body = await _post(
        http,
        f"{settings.paystack_api_url.rstrip('/')}/transaction/charge_authorization",
        headers={"authorization": f"Bearer {settings.paystack_secret_key.get_secret_value()}"},
        json={
            "authorization_code": authorization_code,
            "email": email,
            "amount": str(minor_units(amount)),
            "currency": currency,
            "reference": reference,
            "metadata": {"invoice_id": invoice_id, "renewal": True},
        },
    )
    if status >= 400 or body.get("status") is not True:
        return ChargeResult("failed", reference, reason=str(body.get("message") or status))
    try:
        data = _PaystackCharge.model_validate(body.get("data"))
    except ValidationError as e:
        raise Retryable("paystack answered a charge without its status") from e
    if data.status == "success":
        paid = Decimal(data.amount) / 100 if data.amount is not None else amount
        return ChargeResult("paid", data.reference or reference, paid, data.paid_at)
    return ChargeResult("failed", reference, reason=data.gateway_response or data.status)


async def tripay_create(
    http: httpx.AsyncClient,
    settings: BillingSettings,
    *,
    channel: str,
    merchant_ref: str,
    amount: Decimal,
    name: str,
    email: str,
    description: str,
    expires_at: datetime,
) -> tuple[str, str]:
    """A closed transaction: (its Tripay reference, its checkout URL)."""
    assert settings.tripay_api_key and settings.tripay_private_key and settings.tripay_merchant_code
    whole = int(amount)
    signature = hmac.new(
        settings.tripay_private_key.get_secret_value().encode(),
        f"{settings.tripay_merchant_code}{merchant_ref}{whole}".encode(),
        hashlib.sha256,
    ).hexdigest()
    status, body = await _post(
        http,
        f"{settings.tripay_api_url.rstrip('/')}/transaction/create",
        headers={"authorization": f"Bearer {settings.tripay_api_key.get_secret_value()}"},
        json={
            "method": channel,
            "merchant_ref": merchant_ref,
            "amount": whole,
            "customer_name": name,
            "customer_email": email,
            "order_items": [{"name": description, "price": whole, "quantity": 1}],
            "return_url": settings.billing_return_url,
            "expired_time": max(int(expires_at.timestamp()), int(time.time()) + 3600),
            "signature": signature,
        },
    )
    data = body.get("data")
    if status >= 400 or body.get("success") is not True or not isinstance(data, dict):
        raise ProviderRefused(f"tripay refused the transaction: {body.get('message') or status}")
    reference, url = data.get("reference"), data.get("checkout_url")
    if not isinstance(reference, str) or not isinstance(url, str):
        raise Retryable("tripay answered a transaction without its reference or checkout URL")
    return reference, url


async def stripe_cancel_at_period_end(
    http: httpx.AsyncClient, settings: BillingSettings, subscription: str, cancel: bool
) -> None:
    assert settings.stripe_secret_key is not None
    status, body = await _post(
        http,
        f"{settings.stripe_api_url.rstrip('/')}/v1/subscriptions/{subscription}",
        headers={"authorization": f"Bearer {settings.stripe_secret_key.get_secret_value()}"},
        data={"cancel_at_period_end": "true" if cancel else "false"},
    )
    if status >= 400:
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        raise ProviderRefused(f"stripe answered {status}: {message or 'refused'}")
