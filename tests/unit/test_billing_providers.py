"""The providers' renewal calls against respx fakes answering with the shapes each provider
documents: what is sent, and what each answer means for the renewal."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import respx
from pydantic import SecretStr

from tests.support.billing import SETTINGS
from worker.billing import BillingSettings
from worker.billing.providers import (
    ProviderRefused,
    minor_units,
    paystack_charge,
    stripe_cancel_at_period_end,
    tripay_create,
)
from worker.billing.renewals import configured
from worker.errors import Retryable


def key(secret: SecretStr | None) -> str:
    assert secret is not None
    return secret.get_secret_value()


CHARGE = "https://paystack.test/transaction/charge_authorization"


async def charge(http: httpx.AsyncClient) -> object:
    return await paystack_charge(
        http,
        SETTINGS,
        authorization_code="AUTH_1",
        email="a@test.local",
        amount=Decimal("19.99"),
        currency="GHS",
        reference="inv-1",
        invoice_id="inv",
    )


def test_amounts_go_to_paystack_in_subunits() -> None:
    assert minor_units(Decimal("19.99")) == 1999
    assert minor_units(Decimal("5000")) == 500000


def test_an_empty_setting_is_not_a_configured_provider() -> None:
    assert configured(SETTINGS, "paystack") and configured(SETTINGS, "tripay")
    empty = BillingSettings(paystack_secret_key="", tripay_api_key=" ", stripe_secret_key=None)
    assert not configured(empty, "paystack")
    assert not configured(empty, "tripay")
    assert not configured(empty, "stripe")


@respx.mock
async def test_a_paystack_charge_is_paid_declined_or_postponed() -> None:
    route = respx.post(CHARGE)
    async with httpx.AsyncClient() as http:
        route.mock(
            return_value=httpx.Response(
                200,
                json={
                    "status": True,
                    "message": "Charge attempted",
                    "data": {
                        "amount": 1999,
                        "currency": "GHS",
                        "status": "success",
                        "reference": "inv-1",
                        "paid_at": "2026-12-07T02:00:00.000Z",
                        "gateway_response": "Approved",
                    },
                },
            )
        )
        paid = await charge(http)
        assert paid == type(paid)(  # type: ignore[call-arg]
            "paid", "inv-1", Decimal("19.99"), datetime(2026, 12, 7, 2, tzinfo=UTC)
        )
        sent = json.loads(route.calls.last.request.content)
        assert sent["amount"] == "1999" and sent["authorization_code"] == "AUTH_1"
        assert (
            route.calls.last.request.headers["authorization"]
            == f"Bearer {key(SETTINGS.paystack_secret_key)}"
        )

        route.mock(
            return_value=httpx.Response(
                200,
                json={
                    "status": True,
                    "message": "Charge attempted",
                    "data": {
                        "status": "failed",
                        "reference": "inv-1",
                        "gateway_response": "Declined",
                    },
                },
            )
        )
        declined = await charge(http)
        assert (declined.outcome, declined.reason) == ("failed", "Declined")  # type: ignore[attr-defined]

        route.mock(
            return_value=httpx.Response(
                400, json={"status": False, "message": "Invalid authorization code"}
            )
        )
        refused = await charge(http)
        assert (refused.outcome, refused.reason) == (  # type: ignore[attr-defined]
            "failed",
            "Invalid authorization code",
        )

        # Paystack down, or unreachable: not a decline, the attempt is made again later.
        route.mock(return_value=httpx.Response(503, text="upstream"))
        with pytest.raises(Retryable, match="503"):
            await charge(http)
        route.mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(Retryable, match="could not reach"):
            await charge(http)


@respx.mock
async def test_a_tripay_renewal_is_a_signed_closed_transaction() -> None:
    route = respx.post("https://tripay.test/api/transaction/create")
    args = {
        "channel": "QRIS",
        "merchant_ref": "inv-2",
        "amount": Decimal("150000.00"),
        "name": "Bob",
        "email": "b@test.local",
        "description": "Silver renewal",
        "expires_at": datetime(2030, 1, 1, tzinfo=UTC),
    }
    async with httpx.AsyncClient() as http:
        route.mock(
            return_value=httpx.Response(
                200,
                json={
                    "success": True,
                    "message": "",
                    "data": {"reference": "T1", "checkout_url": "https://tripay.co.id/checkout/T1"},
                },
            )
        )
        assert await tripay_create(http, SETTINGS, **args) == (  # type: ignore[arg-type]
            "T1",
            "https://tripay.co.id/checkout/T1",
        )
        sent = json.loads(route.calls.last.request.content)
        signature = hmac.new(
            key(SETTINGS.tripay_private_key).encode(), b"T0001inv-2150000", hashlib.sha256
        ).hexdigest()
        assert (sent["amount"], sent["method"], sent["signature"]) == (150000, "QRIS", signature)
        assert sent["expired_time"] == int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())

        route.mock(
            return_value=httpx.Response(
                400, json={"success": False, "message": "Payment channel is not enabled"}
            )
        )
        with pytest.raises(ProviderRefused, match="not enabled"):
            await tripay_create(http, SETTINGS, **args)  # type: ignore[arg-type]


@respx.mock
async def test_stripe_is_told_about_a_cancellation_at_period_end() -> None:
    route = respx.post("https://stripe.test/v1/subscriptions/sub_1")
    async with httpx.AsyncClient() as http:
        route.mock(return_value=httpx.Response(200, json={"id": "sub_1", "object": "subscription"}))
        await stripe_cancel_at_period_end(http, SETTINGS, "sub_1", True)
        request = route.calls.last.request
        assert request.content == b"cancel_at_period_end=true"
        assert request.headers["authorization"] == f"Bearer {key(SETTINGS.stripe_secret_key)}"
        route.mock(
            return_value=httpx.Response(
                404,
                json={
                    "error": {
                        "type": "invalid_request_error",
                        "message": "No such subscription: 'sub_1'",
                    }
                },
            )
        )
        with pytest.raises(ProviderRefused, match="No such subscription"):
            await stripe_cancel_at_period_end(http, SETTINGS, "sub_1", False)
