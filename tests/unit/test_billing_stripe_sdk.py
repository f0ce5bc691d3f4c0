"""The fleet's side of Stripe checked against the official ``stripe`` SDK, offline: every
request the fleet sends Stripe is the one the SDK sends for the same parameters (method,
path, form fields, key, idempotency key), and the webhook deliveries the tests play are
signed and verified as the SDK does (``stripe.Webhook.construct_event``), and read by the
fleet as the SDK reads them. Both sides talk to a respx fake; nothing leaves the machine."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
import stripe

from tests.support import payments
from tests.support.billing import SETTINGS
from worker.billing.events import parse_stripe
from worker.billing.payout_api import StripeConnect
from worker.billing.providers import stripe_cancel_at_period_end

# The SDK hands httpx its form body as bytes through ``data=``, which httpx deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

API = "https://stripe.test"
KEY = "sk_test_fake"


def sdk_client() -> stripe.StripeClient:
    return stripe.StripeClient(
        KEY,
        base_addresses={"api": API},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
        max_network_retries=0,
    )


def sent(request: httpx.Request) -> tuple[str, str, list[tuple[str, str]], str | None, str | None]:
    """What a Stripe request says: method, path, form fields (in order), key, idempotency."""
    return (
        request.method,
        request.url.path,
        parse_qsl(request.content.decode(), keep_blank_values=True),
        request.headers.get("authorization"),
        request.headers.get("idempotency-key"),
    )


ANSWERS: dict[str, dict[str, Any]] = {
    "/v1/accounts": {"id": "acct_pat", "object": "account", "type": "express"},
    "/v1/account_links": {
        "object": "account_link",
        "url": "https://connect.stripe.com/setup/e/acct_pat/abc",
        "expires_at": 1_800_000_000,
    },
    "/v1/transfers": {
        "id": "tr_1",
        "object": "transfer",
        "amount": 8000,
        "currency": "usd",
        "destination": "acct_pat",
        "reversed": False,
    },
    "/v1/subscriptions/sub_a": {"id": "sub_a", "object": "subscription", "status": "active"},
}


async def both(
    fleet: Callable[[httpx.AsyncClient], Awaitable[Any]],
    official: Callable[[stripe.StripeClient], Any],
) -> tuple[Any, Any, httpx.Request, httpx.Request]:
    """Make the fleet's call and the SDK's, each against the same fake; return both answers
    as each side reads them, and both requests."""
    with respx.mock(assert_all_called=False) as mock:
        for path, answer in ANSWERS.items():
            mock.post(f"{API}{path}").mock(return_value=httpx.Response(200, json=answer))
        async with httpx.AsyncClient() as http:
            ours = await fleet(http)
        theirs = official(sdk_client())
        assert len(mock.calls) == 2
        return ours, theirs, mock.calls[0].request, mock.calls[1].request


async def test_a_connect_account_is_created_as_the_sdk_creates_it() -> None:
    def fleet(http: httpx.AsyncClient) -> Awaitable[str]:
        return StripeConnect(http, API, KEY).create_account("dest-1", "user-1", "USD")

    ours, theirs, a, b = await both(
        fleet,
        lambda c: c.v1.accounts.create(
            {
                "type": "express",
                "default_currency": "usd",
                "capabilities": {"transfers": {"requested": True}},
                "metadata": {"user_id": "user-1", "destination_id": "dest-1"},
            },
            {"idempotency_key": "connect-account-dest-1"},
        ),
    )
    assert sent(a) == sent(b)
    assert isinstance(theirs, stripe.Account) and ours == theirs.id == "acct_pat"


async def test_an_onboarding_link_is_asked_for_as_the_sdk_asks() -> None:
    def fleet(http: httpx.AsyncClient) -> Awaitable[str]:
        return StripeConnect(http, API, KEY).onboarding_link(
            "acct_pat", "https://app.test/refresh", "https://app.test/done", "dest-1"
        )

    ours, theirs, a, b = await both(
        fleet,
        lambda c: c.v1.account_links.create(
            {
                "account": "acct_pat",
                "refresh_url": "https://app.test/refresh",
                "return_url": "https://app.test/done",
                "type": "account_onboarding",
            },
            {"idempotency_key": "account-link-dest-1"},
        ),
    )
    assert sent(a) == sent(b)
    assert isinstance(theirs, stripe.AccountLink) and ours == theirs.url


async def test_a_payout_transfer_is_sent_as_the_sdk_sends_it() -> None:
    def fleet(http: httpx.AsyncClient) -> Awaitable[Any]:
        return StripeConnect(http, API, KEY).transfer("pay-1", "acct_pat", 8000, "USD")

    ours, theirs, a, b = await both(
        fleet,
        lambda c: c.v1.transfers.create(
            {
                "amount": 8000,
                "currency": "usd",
                "destination": "acct_pat",
                "transfer_group": "payout-pay-1",
                "metadata": {"payout_id": "pay-1"},
            },
            {"idempotency_key": "payout-pay-1"},
        ),
    )
    assert sent(a) == sent(b)
    assert isinstance(theirs, stripe.Transfer)
    assert (ours.transfer_id, ours.status) == (theirs.id, "created")


@pytest.mark.parametrize("cancel", [True, False])
async def test_a_cancellation_at_period_end_is_sent_as_the_sdk_sends_it(cancel: bool) -> None:
    def fleet(http: httpx.AsyncClient) -> Awaitable[None]:
        return stripe_cancel_at_period_end(http, SETTINGS, "sub_a", cancel)

    _, theirs, a, b = await both(
        fleet,
        lambda c: c.v1.subscriptions.update("sub_a", {"cancel_at_period_end": cancel}),
    )
    # The SDK adds a random Idempotency-Key to every POST (for its own retries); the fleet
    # sends none on purpose: the update is idempotent by itself, and a fixed key would make
    # cancel, resume, cancel within Stripe's 24 hours replay the first answer unapplied.
    assert sent(a)[:4] == sent(b)[:4]
    assert sent(a)[4] is None
    assert isinstance(theirs, stripe.Subscription)


def test_the_deliveries_the_tests_play_verify_with_the_sdk() -> None:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount": 2900,
        "amount_refunded": 1000,
        "refunded": False,
        "currency": "usd",
        "payment_intent": "pi_1",
    }
    delivery = payments.stripe("evt_sdk_1", "charge.refunded", charge)
    header = delivery.headers["stripe-signature"]
    event = stripe.Webhook.construct_event(delivery.body, header, payments.STRIPE_SECRET)
    assert isinstance(event, stripe.Event) and event.type == "charge.refunded"
    obj = event.data.object
    assert (obj["object"], obj["amount_refunded"], obj["refunded"]) == ("charge", 1000, False)

    # The fleet reads the event the SDK verified as it reads the raw body: a partial refund
    # of 10.00 USD of the charge's 29.00, counted as the total refunded so far.
    ours = parse_stripe(json.loads(delivery.body))
    assert ours == parse_stripe(event.to_dict())
    assert ours is not None
    assert (ours.status, ours.refund_amount, ours.refund_cumulative) == (
        "refunded",
        Decimal("10"),
        True,
    )

    # Anything but the exact bytes under the right secret and a fresh timestamp is refused.
    for body, secret, sig in [
        (delivery.body.replace(b"1000", b"2900"), payments.STRIPE_SECRET, header),
        (delivery.body, "whsec_other", header),
        (
            delivery.body,
            payments.STRIPE_SECRET,
            stripe.WebhookSignature.generate_signature_header(
                delivery.body.decode(), payments.STRIPE_SECRET, int(time.time()) - 301
            ),
        ),
    ]:
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, sig, secret)


def test_a_trial_subscription_event_is_read_as_the_sdk_reads_it() -> None:
    trial_end = int(time.time()) + 14 * 86400
    sub = {
        "id": "sub_t",
        "object": "subscription",
        "status": "trialing",
        "trial_end": trial_end,
        "cancel_at_period_end": False,
        "metadata": {"user_id": "u", "plan_id": "p"},
    }
    delivery = payments.stripe("evt_sdk_t", "customer.subscription.created", sub)
    event = stripe.Webhook.construct_event(
        delivery.body, delivery.headers["stripe-signature"], payments.STRIPE_SECRET
    )
    obj = event.data.object
    assert isinstance(obj, stripe.Subscription)
    assert (obj.status, obj.trial_end, obj.metadata["plan_id"]) == ("trialing", trial_end, "p")
