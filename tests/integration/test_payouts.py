"""Provider payouts end to end on the real database, against respx fakes of Stripe's and
Paystack's APIs (documented request and response shapes): a destination is connected, a
strategy payment earns the provider's share, the payout is requested, sent, and settled by
the provider's webhooks (twice, out of order); failures release the hold; bad input leaves
nothing behind. ``credit_audit()`` is clean at every step."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import psycopg
import pytest
import respx
from psycopg_pool import AsyncConnectionPool

from tests.support import payments
from tests.support.billing import audit_clean, billing_registry, earnings, one
from tests.support.db import User, request_as
from tests.support.fleet import run_queued_jobs
from worker.billing import BillingSettings
from worker.errors import Retryable
from worker.fleet.registry import Registry

STRIPE = "https://stripe.test"
PAYSTACK = "https://paystack.test"


def settings(**overrides: Any) -> BillingSettings:
    values: dict[str, Any] = {
        "stripe_secret_key": "sk_test_connect",
        "stripe_api_url": STRIPE,
        "paystack_secret_key": "sk_test_paystack",
        "paystack_api_url": PAYSTACK,
        **overrides,
    }
    return BillingSettings(**values)


@pytest.fixture
def registry() -> Registry:
    return billing_registry(settings(), httpx.AsyncClient())


async def run(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, reg: Registry, kind: str
) -> list[Any]:
    return await run_queued_jobs(conn, pool, reg, kind)


async def send(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, reg: Registry
) -> dict[str, Any]:
    await conn.execute("select enqueue_job('billing.payouts', '{}')")
    (result,) = await run(conn, pool, reg, "billing.payouts")
    return dict(result)


async def deliver(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    reg: Registry,
    *deliveries: payments.Delivery,
) -> list[str]:
    for d in deliveries:
        await payments.store(conn, d)
    return [r["outcome"] for r in await run(conn, pool, reg, "billing.webhook")]


async def earn(
    conn: psycopg.AsyncConnection[Any], subscriber: User, provider: User, price: int
) -> None:
    """A subscriber pays the provider's strategy: 80% to the provider's earnings."""
    strategy = uuid.uuid4()
    await conn.execute(
        "insert into strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price) "
        "values (%s, %s, 'Pat Momentum', 'marketplace', true, true, %s)",
        (strategy, provider.id, price),
    )
    await conn.execute("select credit_grant(%s, %s, %s)", (uuid.uuid4(), subscriber.id, price))
    async with request_as(conn, subscriber) as cur:
        await cur.execute("select public.subscribe_to_strategy(%s)", (strategy,))


def paystack_bank(name: str = "PAT PROVIDER") -> None:
    respx.get(f"{PAYSTACK}/bank/resolve").mock(
        return_value=httpx.Response(
            200,
            json={
                "status": True,
                "message": "Account number resolved",
                "data": {"account_number": "0001234567", "account_name": name, "bank_id": 9},
            },
        )
    )
    respx.post(f"{PAYSTACK}/transferrecipient").mock(
        return_value=httpx.Response(
            201,
            json={
                "status": True,
                "message": "Transfer recipient created successfully",
                "data": {
                    "active": True,
                    "currency": "NGN",
                    "name": name,
                    "recipient_code": "RCP_pat",
                    "type": "nuban",
                    "details": {"account_number": "0001234567", "bank_code": "058"},
                },
            },
        )
    )


async def connect_paystack(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, reg: Registry, user: User
) -> dict[str, Any]:
    async with request_as(conn, user) as cur:
        await cur.execute(
            "select status from connect_payout_destination('paystack', 'NGN', '058', '0001234567')"
        )
        assert (await cur.fetchone() or {})["status"] == "pending"
    (result,) = await run(conn, pool, reg, "billing.payout_destination")
    return dict(result)


async def request_payout(
    conn: psycopg.AsyncConnection[Any], user: User, amount: Any, key: uuid.UUID | None = None
) -> dict[str, Any]:
    async with request_as(conn, user) as cur:
        await cur.execute(
            "select id, status, amount from request_payout(%s, %s)", (amount, key or uuid.uuid4())
        )
        return dict(await cur.fetchone() or {})


def transfer_event(event: str, payout_id: Any, event_id: int) -> payments.Delivery:
    return payments.paystack(
        event,
        {
            "id": event_id,
            "amount": 6000,
            "currency": "NGN",
            "domain": "test",
            "reference": str(payout_id),
            "reason": "Tradefleet provider payout",
            "source": "balance",
            "status": event.split(".")[1],
            "transfer_code": "TRF_pat",
            "recipient": {"recipient_code": "RCP_pat", "type": "nuban"},
        },
    )


@respx.mock
async def test_a_strategy_payment_is_paid_out_through_paystack_once_the_webhook_confirms(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    pat, bob = users["provider"], users["bob"]
    paystack_bank()
    assert (await connect_paystack(conn, pool, registry, pat))["outcome"] == "ready"
    assert (
        await one(
            conn,
            "select account_name || ' ' || account_last4 from payout_destinations where user_id = %s",
            pat.id,
        )
        == "PAT PROVIDER 4567"
    )
    resolve = respx.calls[0].request
    assert (
        resolve.url.params["account_number"] == "0001234567"
        and resolve.url.params["bank_code"] == "058"
    )
    assert resolve.headers["authorization"] == "Bearer sk_test_paystack"

    await earn(conn, bob, pat, 100)
    assert await earnings(conn, pat) == (Decimal(80), Decimal(80))
    key = uuid.uuid4()
    payout = await request_payout(conn, pat, 60, key)
    assert payout["status"] == "approved" and payout["amount"] == Decimal(60)
    assert (await request_payout(conn, pat, 60, key))["id"] == payout[
        "id"
    ]  # a retry: the same payout
    assert await earnings(conn, pat) == (Decimal(80), Decimal(20))
    await audit_clean(conn)

    transfer = respx.post(f"{PAYSTACK}/transfer").mock(
        return_value=httpx.Response(
            200,
            json={
                "status": True,
                "message": "Transfer has been queued",
                "data": {
                    "reference": str(payout["id"]),
                    "amount": 6000,
                    "currency": "NGN",
                    "source": "balance",
                    "status": "pending",
                    "transfer_code": "TRF_pat",
                    "id": 4001,
                },
            },
        )
    )
    assert await send(conn, pool, registry) == {"sent": 1, "failed": 0, "ready": 0}
    body = json.loads(transfer.calls.last.request.content)
    assert body == {
        "source": "balance",
        "amount": 6000,
        "recipient": "RCP_pat",
        "reference": str(payout["id"]),
        "currency": "NGN",
        "reason": "Tradefleet provider payout",
    }
    assert await one(conn, "select status from payouts where id = %s", payout["id"]) == "sent"
    assert await send(conn, pool, registry) == {"sent": 0, "failed": 0, "ready": 0}  # sent once
    await audit_clean(conn)

    # Delivered twice, and a stale failure after the success: posted once, nothing else.
    success = transfer_event("transfer.success", payout["id"], 9001)
    assert await deliver(conn, pool, registry, success) == ["applied"]
    assert await deliver(conn, pool, registry, success) == []
    assert await deliver(
        conn, pool, registry, transfer_event("transfer.failed", payout["id"], 9002)
    ) == ["unchanged"]
    assert await one(conn, "select status from payouts where id = %s", payout["id"]) == "paid"
    assert await earnings(conn, pat) == (Decimal(20), Decimal(20))
    await audit_clean(conn)
    async with request_as(conn, pat) as cur:
        await cur.execute(
            "select entry, amount::numeric(12, 2) as amount from provider_statement order by created_at, entry"
        )
        entries = [(r["entry"], r["amount"]) for r in await cur.fetchall()]
    assert entries == [
        ("earning", Decimal("80.00")),
        ("payout_held", Decimal("0.00")),
        ("payout_paid", Decimal("-60.00")),
    ]


@respx.mock
async def test_a_failed_paystack_transfer_releases_the_hold(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    pat, bob = users["provider"], users["bob"]
    paystack_bank()
    await connect_paystack(conn, pool, registry, pat)
    await earn(conn, bob, pat, 100)
    payout = await request_payout(conn, pat, 80)
    respx.post(f"{PAYSTACK}/transfer").mock(
        return_value=httpx.Response(
            200,
            json={
                "status": True,
                "message": "Transfer has been queued",
                "data": {
                    "reference": str(payout["id"]),
                    "status": "pending",
                    "transfer_code": "TRF_x",
                },
            },
        )
    )
    await send(conn, pool, registry)
    assert await earnings(conn, pat) == (Decimal(80), Decimal(0))
    failed = transfer_event("transfer.failed", payout["id"], 9101)
    success = transfer_event("transfer.success", payout["id"], 9102)
    assert await deliver(conn, pool, registry, failed, failed, success) == ["applied", "unchanged"]
    assert await one(conn, "select status from payouts where id = %s", payout["id"]) == "failed"
    assert await earnings(conn, pat) == (Decimal(80), Decimal(80))
    await audit_clean(conn)


@respx.mock
async def test_stripe_connect_onboarding_then_a_transfer_reversed_before_its_creation_event(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    pat, bob = users["provider"], users["bob"]
    account = respx.post(f"{STRIPE}/v1/accounts").mock(
        return_value=httpx.Response(
            200, json={"id": "acct_pat", "object": "account", "type": "express"}
        )
    )
    link = respx.post(f"{STRIPE}/v1/account_links").mock(
        return_value=httpx.Response(
            200,
            json={
                "object": "account_link",
                "created": 1,
                "expires_at": 2,
                "url": "https://connect.stripe.com/setup/e/acct_pat/abc",
            },
        )
    )
    async with request_as(conn, pat) as cur:
        await cur.execute("select status from connect_payout_destination('stripe')")
    await run(conn, pool, registry, "billing.payout_destination")
    form = parse_qs(account.calls.last.request.content.decode())
    assert form["type"] == ["express"] and form["capabilities[transfers][requested]"] == ["true"]
    assert account.calls.last.request.headers["idempotency-key"].startswith("connect-account-")
    assert parse_qs(link.calls.last.request.content.decode())["type"] == ["account_onboarding"]
    async with request_as(conn, pat) as cur:
        await cur.execute("select status, onboarding_url from payout_destinations")
        assert dict(await cur.fetchone() or {}) == {
            "status": "pending",
            "onboarding_url": "https://connect.stripe.com/setup/e/acct_pat/abc",
        }

    await earn(conn, bob, pat, 100)
    with pytest.raises(psycopg.errors.CheckViolation, match="connect a payout destination first"):
        await request_payout(conn, pat, 60)
    assert await earnings(conn, pat) == (Decimal(80), Decimal(80))  # nothing held

    # Every payout run asks Stripe whether the account can receive transfers yet.
    account_state = respx.get(f"{STRIPE}/v1/accounts/acct_pat")
    account_state.mock(
        return_value=httpx.Response(
            200,
            json={"id": "acct_pat", "object": "account", "capabilities": {"transfers": "inactive"}},
        )
    )
    assert await send(conn, pool, registry) == {"sent": 0, "failed": 0, "ready": 0}
    account_state.mock(
        return_value=httpx.Response(
            200,
            json={"id": "acct_pat", "object": "account", "capabilities": {"transfers": "active"}},
        )
    )
    assert await send(conn, pool, registry) == {"sent": 0, "failed": 0, "ready": 1}
    assert account_state.call_count == 2

    ready = payments.stripe(
        "evt_acct",
        "account.updated",
        {
            "id": "acct_pat",
            "object": "account",
            "payouts_enabled": True,
            "capabilities": {"transfers": "active"},
        },
    )
    assert await deliver(conn, pool, registry, ready) == ["unchanged"]  # Stripe's word, once more
    payout = await request_payout(conn, pat, 70)
    transfer = respx.post(f"{STRIPE}/v1/transfers").mock(
        return_value=httpx.Response(
            200,
            json={
                "id": "tr_pat",
                "object": "transfer",
                "amount": 7000,
                "currency": "usd",
                "destination": "acct_pat",
                "reversed": False,
                "metadata": {"payout_id": str(payout["id"])},
            },
        )
    )
    assert await send(conn, pool, registry) == {"sent": 1, "failed": 0, "ready": 0}
    sent = parse_qs(transfer.calls.last.request.content.decode())
    assert (
        sent["amount"] == ["7000"]
        and sent["destination"] == ["acct_pat"]
        and sent["currency"] == ["usd"]
    )
    assert transfer.calls.last.request.headers["idempotency-key"] == f"payout-{payout['id']}"

    obj = {
        "id": "tr_pat",
        "object": "transfer",
        "amount": 7000,
        "currency": "usd",
        "destination": "acct_pat",
        "metadata": {"payout_id": str(payout["id"])},
    }
    reversed_ = payments.stripe("evt_tr_rev", "transfer.reversed", {**obj, "reversed": True})
    created = payments.stripe("evt_tr_new", "transfer.created", {**obj, "reversed": False})
    # The reversal comes first: the hold is released, and the late creation changes nothing.
    assert await deliver(conn, pool, registry, reversed_, created, created) == [
        "applied",
        "unchanged",
    ]
    assert await one(conn, "select status from payouts where id = %s", payout["id"]) == "reversed"
    assert await earnings(conn, pat) == (Decimal(80), Decimal(80))
    await audit_clean(conn)


@respx.mock
async def test_a_transfer_stripe_refuses_fails_the_payout_and_releases_the_hold(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    pat, bob = users["provider"], users["bob"]
    await conn.execute(
        "insert into payout_destinations (user_id, provider, status, currency, stripe_account_id) "
        "values (%s, 'stripe', 'ready', 'USD', 'acct_x')",
        (pat.id,),
    )
    await earn(conn, bob, pat, 100)
    payout = await request_payout(conn, pat, 50)
    respx.post(f"{STRIPE}/v1/transfers").mock(
        return_value=httpx.Response(
            400,
            json={
                "error": {
                    "type": "invalid_request_error",
                    "code": "balance_insufficient",
                    "message": "You have insufficient available funds in your Stripe account.",
                }
            },
        )
    )
    assert await send(conn, pool, registry) == {"sent": 0, "failed": 1, "ready": 0}
    assert await one(conn, "select failure from payouts where id = %s", payout["id"]) == (
        "stripe: You have insufficient available funds in your Stripe account."
    )
    assert await earnings(conn, pat) == (Decimal(80), Decimal(80))
    await audit_clean(conn)


@respx.mock
async def test_bad_payouts_are_refused_by_name_and_leave_no_hold(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    pat, bob = users["provider"], users["bob"]
    respx.get(f"{PAYSTACK}/bank/resolve").mock(
        return_value=httpx.Response(
            422,
            json={
                "status": False,
                "message": "Could not resolve account name. Check parameters or try again.",
            },
        )
    )
    result = await connect_paystack(conn, pool, registry, pat)
    assert result["outcome"] == "rejected"
    assert await one(conn, "select error from payout_destinations where user_id = %s", pat.id) == (
        "paystack: Could not resolve account name. Check parameters or try again."
    )
    await earn(conn, bob, pat, 100)
    with pytest.raises(psycopg.errors.CheckViolation, match="connect a payout destination first"):
        await request_payout(conn, pat, 60)

    # Not configured: the fleet without a Paystack key rejects the destination.
    unconfigured = billing_registry(settings(paystack_secret_key=None), httpx.AsyncClient())
    result = await connect_paystack(conn, pool, unconfigured, pat)
    assert result == {
        "outcome": "rejected",
        "error": "paystack payouts are not configured (PAYSTACK_SECRET_KEY)",
    }

    paystack_bank()
    await connect_paystack(conn, pool, registry, pat)
    with pytest.raises(psycopg.errors.CheckViolation) as below:
        await request_payout(conn, pat, 10)
    assert below.value.diag.constraint_name == "credit_payouts_minimum"
    with pytest.raises(psycopg.errors.CheckViolation) as above:
        await request_payout(conn, pat, 81)
    assert above.value.diag.constraint_name == "credit_accounts_debits_must_not_exceed_credits"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, bob) as cur:
            await cur.execute("select connect_payout_destination('stripe')")
    assert await one(conn, "select count(*) from payouts") == 0
    assert await earnings(conn, pat) == (Decimal(80), Decimal(80))
    await audit_clean(conn)


async def test_large_payouts_wait_for_an_admin_and_the_monthly_run_pays_everyone_once(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    pat, bob, admin = users["provider"], users["bob"], users["admin"]
    await conn.execute(
        "insert into payout_destinations (user_id, provider, status, currency, stripe_account_id) "
        "values (%s, 'stripe', 'ready', 'USD', 'acct_m')",
        (pat.id,),
    )
    await earn(conn, bob, pat, 1000)
    big = await request_payout(conn, pat, 600)
    assert big["status"] == "requested"
    async with request_as(conn, admin) as cur:
        await cur.execute(
            "select status from admin_review_payout(%s, false, 'verify identity first')",
            (big["id"],),
        )
        assert (await cur.fetchone() or {})["status"] == "rejected"
    assert await earnings(conn, pat) == (Decimal(800), Decimal(800))
    await audit_clean(conn)

    await conn.execute("select enqueue_job('billing.monthly_payouts', '{}')")
    assert await run(conn, pool, registry, "billing.monthly_payouts") == [{"requested": 1}]
    await conn.execute("select enqueue_job('billing.monthly_payouts', '{}')")
    assert await run(conn, pool, registry, "billing.monthly_payouts") == [{"requested": 0}]
    cur = await conn.execute(
        "select source, status, amount from payouts where user_id = %s and source = 'monthly'",
        (pat.id,),
    )
    assert await cur.fetchall() == [("monthly", "requested", Decimal(800))]
    async with request_as(conn, admin) as acur:
        await acur.execute(
            "select status from admin_review_payout((select id from payouts where source = 'monthly' and user_id = %s), true, 'ok')",
            (pat.id,),
        )
        assert (await acur.fetchone() or {})["status"] == "approved"
    await audit_clean(conn)


@respx.mock
async def test_a_success_webhook_before_the_fleet_recorded_the_transfer_posts_the_hold_once(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    pat, bob = users["provider"], users["bob"]
    paystack_bank()
    await connect_paystack(conn, pool, registry, pat)
    await earn(conn, bob, pat, 100)
    payout = await request_payout(conn, pat, 75)
    # Paystack queued the transfer but its answer never reached the fleet.
    transfer = respx.post(f"{PAYSTACK}/transfer").mock(return_value=httpx.Response(502))
    with pytest.raises(Retryable):
        await send(conn, pool, registry)
    await conn.execute("update jobs set status = 'succeeded' where kind = 'billing.payouts'")
    assert await one(conn, "select status from payouts where id = %s", payout["id"]) == "approved"
    success = transfer_event("transfer.success", payout["id"], 9201)
    assert await deliver(conn, pool, registry, success, success) == ["applied"]
    assert await one(conn, "select status from payouts where id = %s", payout["id"]) == "paid"
    assert await send(conn, pool, registry) == {
        "sent": 0,
        "failed": 0,
        "ready": 0,
    }  # never sent again
    assert transfer.call_count == 1
    assert await earnings(conn, pat) == (Decimal(5), Decimal(5))
    await audit_clean(conn)
