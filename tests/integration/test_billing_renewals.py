"""Each provider end to end on the real database, the providers' APIs faked with respx:
checkout -> webhooks (each delivered twice, out of order) -> invoice paid -> plan active ->
credits granted -> renewal -> failed renewal -> dunning -> recovery or downgrade, with the
ledger's audit clean at every step."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import respx
from psycopg_pool import AsyncConnectionPool

from tests.support.billing import (
    SETTINGS,
    audit_clean,
    balance,
    billing_registry,
    bots_by_status,
    checkout,
    current,
    current_plan,
    days_pass,
    deliver,
    notes,
    one,
    paystack_charge_answer,
    paystack_success,
    period_ends,
    plan,
    running_bots,
    stripe_event,
    titles,
)
from tests.support.db import User, request_as
from tests.support.fleet import run_queued_jobs
from worker.billing import renew
from worker.fleet.registry import Registry

PAYSTACK_CHARGE = "https://paystack.test/transaction/charge_authorization"
TRIPAY_CREATE = "https://tripay.test/api/transaction/create"


@pytest.fixture
def registry() -> Registry:
    return billing_registry(SETTINGS)


async def run(conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, reg: Registry) -> Any:
    return await run_queued_jobs(conn, pool, reg, "billing.")


async def renewal_run(pool: AsyncConnectionPool) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        return await renew(pool, http, SETTINGS)


async def test_paystack_renews_with_the_saved_card_and_recovers_after_dunning(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    gold = await plan(conn, "Gold NGN", "5000", "NGN")
    pack = await one(
        conn,
        "insert into credit_packs (name, credits, price, currency) values ('NGN pack', 300, 2000, 'NGN')"
        " returning id",
    )
    plan_invoice = await checkout(conn, alice, "paystack", None, plan_id=gold)
    pack_invoice = await checkout(conn, alice, "paystack", None, pack_id=pack)
    # The pack's payment first, though it was started second; each delivered twice.
    await deliver(
        conn,
        "paystack",
        [
            paystack_success("ps_2", str(pack_invoice), pack_invoice, 200000),
            paystack_success("ps_1", str(plan_invoice), plan_invoice, 500000),
        ],
    )
    outcomes = [r["outcome"] for r in await run(conn, pool, registry)]
    assert outcomes == ["applied", "applied"]
    assert await current_plan(conn, alice) == "Gold NGN"
    assert await balance(conn, alice) == Decimal("1300")  # 1000 of the plan + 300 bought
    await audit_clean(conn)
    await running_bots(conn, alice, 4)

    # The period ends: the fleet charges the saved authorisation, once.
    await period_ends(conn, alice, "1 minute")
    first_end = (await current(conn, alice))["expires_at"]
    with respx.mock(assert_all_called=True) as mock:
        charge = mock.post(PAYSTACK_CHARGE).mock(
            side_effect=lambda r: paystack_charge_answer(r, "success", "Approved")
        )
        assert (await renewal_run(pool))["paid"] == 1
        assert (await renewal_run(pool)).get("paid") is None
    assert charge.call_count == 1
    sent = json.loads(charge.calls[0].request.content)
    renewal = await one(
        conn, "select id from invoices where subscription_id is not null and user_id = %s", alice.id
    )
    assert sent == {
        "authorization_code": "AUTH_alice",
        "email": "alice@test.local",
        "amount": "500000",
        "currency": "NGN",
        "reference": f"{renewal}-1",
        "metadata": {"invoice_id": str(renewal), "renewal": True},
    }
    sub = await current(conn, alice)
    assert sub["renewal_due_at"] is None and sub["grace_until"] is None
    assert (sub["expires_at"] - first_end).days in (28, 29, 30, 31)
    assert await balance(conn, alice) == Decimal("2300")  # the renewed month's credits
    # Paystack's own webhook of that charge changes nothing more.
    await deliver(conn, "paystack", [paystack_success("ps_3", f"{renewal}-1", renewal, 500000)])
    assert [r["outcome"] for r in await run(conn, pool, registry)] == ["unchanged"]
    assert await balance(conn, alice) == Decimal("2300")
    await audit_clean(conn)

    # The next period ends and the card is declined: dunning, the plan kept meanwhile.
    await period_ends(conn, alice, "1 minute")
    with respx.mock() as mock:
        mock.post(PAYSTACK_CHARGE).mock(
            side_effect=lambda r: paystack_charge_answer(r, "failed", "Insufficient Funds")
        )
        assert (await renewal_run(pool))["failed"] == 1
        assert (await renewal_run(pool)).get("failed") is None  # next try is tomorrow
        sub = await current(conn, alice)
        assert sub["renewal_attempts"] == 1 and sub["past_due_since"] is not None
        assert (sub["next_renewal_attempt_at"] - sub["renewal_due_at"]).days == 1
        assert (sub["grace_until"] - sub["renewal_due_at"]).days == 7
        assert await current_plan(conn, alice) == "Gold NGN"
        [told] = await notes(conn, alice, "Renewal payment failed")
        assert "Insufficient Funds" in told and "We will try again on" in told
        # A day later the retry is declined too; the next is 3 days after the period's end.
        await days_pass(conn, alice, 1.01)
        assert (await renewal_run(pool))["failed"] == 1
        sub = await current(conn, alice)
        assert sub["renewal_attempts"] == 2
        assert (sub["next_renewal_attempt_at"] - sub["renewal_due_at"]).days == 3
    assert len(await notes(conn, alice, "Renewal payment failed")) == 2
    assert await balance(conn, alice) == Decimal("2300")
    await audit_clean(conn)

    # Two days on, the card works again: the plan renews from the old period's end.
    await days_pass(conn, alice, 2)
    due = (await current(conn, alice))["renewal_due_at"]
    with respx.mock() as mock:
        mock.post(PAYSTACK_CHARGE).mock(
            side_effect=lambda r: paystack_charge_answer(r, "success", "Approved")
        )
        assert (await renewal_run(pool))["paid"] == 1
    sub = await current(conn, alice)
    assert sub["past_due_since"] is None and sub["renewal_due_at"] is None
    assert (sub["expires_at"] - due).days in (28, 29, 30, 31)
    assert await notes(conn, alice, "Payment received: plan renewed")
    assert await balance(conn, alice) == Decimal("3300")
    assert [s for s, _ in await bots_by_status(conn, alice)] == ["running"] * 4
    await audit_clean(conn)


def tripay_callback(
    invoice_id: uuid.UUID, reference: str, status: str, amount: int
) -> tuple[str, dict[str, Any]]:
    return f"{reference}:{status}", {
        "reference": reference,
        "merchant_ref": str(invoice_id),
        "payment_method": "BRI Virtual Account",
        "payment_method_code": "BRIVA",
        "total_amount": amount,
        "fee_merchant": 0,
        "fee_customer": 0,
        "total_fee": 4250,
        "amount_received": amount - 4250,
        "is_closed_payment": 1,
        "status": status,
        "paid_at": int(time.time()) if status == "PAID" else None,
        "note": None,
    }


async def test_tripay_sends_a_renewal_link_and_an_unpaid_plan_falls_back_to_free(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    bob = users["bob"]
    silver = await plan(conn, "Silver IDR", "150000", "IDR", monthly_credits=500)
    inv = await checkout(conn, bob, "tripay", "T0001AAA", plan_id=silver)
    # A stale EXPIRED after the payment, every callback twice.
    await deliver(
        conn,
        "tripay",
        [
            tripay_callback(inv, "T0001AAA", "PAID", 150000),
            tripay_callback(inv, "T0001AAA", "EXPIRED", 150000),
        ],
    )
    assert [r["outcome"] for r in await run(conn, pool, registry)] == ["applied", "unchanged"]
    assert await current_plan(conn, bob) == "Silver IDR"
    assert await balance(conn, bob) == Decimal("500")
    await audit_clean(conn)
    await running_bots(conn, bob, 4)

    # Two days before the period ends the renewal transaction is created for the channel
    # Bob paid with, and he gets the link.
    await conn.execute(
        "update subscriptions set expires_at = now() + interval '2 days' where user_id = %s"
        " and status = 'active'",
        (bob.id,),
    )
    with respx.mock() as mock:
        create = mock.post(TRIPAY_CREATE).mock(
            return_value=httpx.Response(
                200,
                json={
                    "success": True,
                    "message": "",
                    "data": {
                        "reference": "T0001BBB",
                        "merchant_ref": "x",
                        "payment_method": "BRIVA",
                        "checkout_url": "https://tripay.co.id/checkout/T0001BBB",
                        "status": "UNPAID",
                    },
                },
            )
        )
        result = await renewal_run(pool)
        assert result["link"] == 1 and result["reminders"] == 1
        assert (await renewal_run(pool)).get("link") is None
    assert create.call_count == 1
    sent = json.loads(create.calls[0].request.content)
    renewal = await one(conn, "select id from invoices where subscription_id is not null")
    expected = hmac.new(b"tripay-private", f"T0001{renewal}150000".encode(), hashlib.sha256)
    assert (sent["method"], sent["merchant_ref"], sent["amount"], sent["signature"]) == (
        "BRIVA",
        str(renewal),
        150000,
        expected.hexdigest(),
    )
    assert create.calls[0].request.headers["authorization"] == "Bearer tripay-api-key"
    [link] = await notes(conn, bob, "Renew your Silver IDR plan")
    assert "https://tripay.co.id/checkout/T0001BBB" in link
    # A day before the end the reminder carries the link too.
    await days_pass(conn, bob, 1.2)
    assert (await renewal_run(pool))["reminders"] == 1
    [reminder] = await notes(conn, bob, "Silver IDR plan ends in 1 day")
    assert "https://tripay.co.id/checkout/T0001BBB" in reminder

    # Nobody pays: the plan is kept through the grace period, then Bob is on Free and the
    # bots beyond Free's two are paused, saying why.
    await days_pass(conn, bob, 1)
    assert await current_plan(conn, bob) == "Silver IDR"
    await days_pass(conn, bob, 7)
    await conn.execute("select enqueue_job('billing.sweep')")
    [swept] = await run(conn, pool, registry)
    assert swept["subscriptions_expired"] == 1 and swept["invoices_expired"] == 1
    assert await current_plan(conn, bob) == "Free"
    assert await bots_by_status(conn, bob) == [
        ("paused", "plan limit: the Free plan allows 2 bots"),
        ("paused", "plan limit: the Free plan allows 2 bots"),
        ("running", ""),
        ("running", ""),
    ]
    told = await titles(conn, bob)
    for title in ("Subscription expired", "Bots paused by your plan", "Payment expired"):
        assert title in told
    assert await one(conn, "select status from invoices where id = %s", renewal) == "expired"
    await audit_clean(conn)


async def test_stripe_renews_by_its_webhooks_and_a_deleted_subscription_downgrades(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    pro = await plan(conn, "Pro USD", "29", "USD", monthly_credits=2000)
    inv = await checkout(conn, alice, "stripe", "cs_test_a", plan_id=pro)
    meta = {"user_id": str(alice.id), "plan_id": str(pro)}
    first_invoice = stripe_event(
        "evt_in_1",
        "invoice.paid",
        {
            "id": "in_1",
            "object": "invoice",
            "billing_reason": "subscription_create",
            "amount_paid": 2900,
            "currency": "usd",
            "customer": "cus_alice",
            "parent": {"subscription_details": {"subscription": "sub_a", "metadata": meta}},
        },
    )
    completed = stripe_event(
        "evt_cs",
        "checkout.session.completed",
        {
            "id": "cs_test_a",
            "object": "checkout.session",
            "mode": "subscription",
            "payment_status": "paid",
            "amount_total": 2900,
            "currency": "usd",
            "customer": "cus_alice",
            "subscription": "sub_a",
            "invoice": "in_1",
            "metadata": {"invoice_id": str(inv), **meta},
        },
    )
    # The subscription's first invoice before the checkout that names it, each twice.
    await deliver(conn, "stripe", [first_invoice, completed])
    outcomes = [r["outcome"] for r in await run(conn, pool, registry)]
    assert outcomes.count("applied") == 1 and "waiting" in outcomes
    assert await one(conn, "select status from invoices where id = %s", inv) == "paid"
    assert await current_plan(conn, alice) == "Pro USD"
    assert await balance(conn, alice) == Decimal("2000")
    assert await one(conn, "select public.billing_customer(%s, 'stripe')", alice.id) == "cus_alice"
    await audit_clean(conn)
    await running_bots(conn, alice, 3)

    # The period ends; Stripe bills the cycle and says so.
    await period_ends(conn, alice, "1 minute")
    assert (await renewal_run(pool)).get("not_configured") is None
    due = (await current(conn, alice))["renewal_due_at"]
    assert due is not None and await current_plan(conn, alice) == "Pro USD"
    cycle = {
        "object": "invoice",
        "billing_reason": "subscription_cycle",
        "currency": "usd",
        "customer": "cus_alice",
        "parent": {"subscription_details": {"subscription": "sub_a", "metadata": meta}},
    }
    await deliver(
        conn,
        "stripe",
        [stripe_event("evt_in_2", "invoice.paid", {"id": "in_2", "amount_paid": 2900, **cycle})],
    )
    assert [r["outcome"] for r in await run(conn, pool, registry)] == ["applied"]
    sub = await current(conn, alice)
    assert sub["renewal_due_at"] is None and (sub["expires_at"] - due).days in (28, 29, 30, 31)
    assert await balance(conn, alice) == Decimal("4000")
    await audit_clean(conn)

    # Alice cancels at the period's end, then changes her mind: Stripe is told each time.
    with respx.mock() as mock:
        update = mock.post("https://stripe.test/v1/subscriptions/sub_a").mock(
            return_value=httpx.Response(200, json={"id": "sub_a", "object": "subscription"})
        )
        for cancel in (True, False):
            async with request_as(conn, alice) as cur:
                await cur.execute(
                    "select cancel_at_period_end from billing_cancel_at_period_end(%s)", (cancel,)
                )
                assert (await cur.fetchone()) == {"cancel_at_period_end": cancel}
            await run(conn, pool, registry)
    assert [c.request.content for c in update.calls] == [
        b"cancel_at_period_end=true",
        b"cancel_at_period_end=false",
    ]
    assert "Plan cancelled" in await titles(conn, alice)

    # She cancels in Stripe's billing portal instead; Stripe's updates, the later one first,
    # leave what she did last.
    def updated(event_id: str, cancel: bool, at: int) -> tuple[str, dict[str, Any]]:
        event = stripe_event(
            event_id,
            "customer.subscription.updated",
            {"id": "sub_a", "object": "subscription", "cancel_at_period_end": cancel},
        )
        event[1]["created"] = at
        return event

    now = int(time.time())
    await deliver(conn, "stripe", [updated("evt_upd_1", True, now + 1)])
    assert [r["outcome"] for r in await run(conn, pool, registry)] == ["applied"]
    sub = await current(conn, alice)
    assert (sub["cancel_at_period_end"], sub["auto_renew"]) == (True, False)
    await deliver(
        conn, "stripe", [updated("evt_upd_3", False, now + 3), updated("evt_upd_2", True, now + 2)]
    )
    assert [r["outcome"] for r in await run(conn, pool, registry)] == ["applied", "unchanged"]
    sub = await current(conn, alice)
    assert (sub["cancel_at_period_end"], sub["auto_renew"]) == (False, True)
    assert (await titles(conn, alice)).count("Plan cancelled") == 2

    # The next cycle's charge fails: dunning until Stripe's next attempt.
    await period_ends(conn, alice, "1 minute")
    retry_at = int(time.time()) + 3 * 86400
    failed = stripe_event(
        "evt_in_3_failed",
        "invoice.payment_failed",
        {"id": "in_3", "amount_due": 2900, "next_payment_attempt": retry_at, **cycle},
    )
    await deliver(conn, "stripe", [failed])
    assert [r["outcome"] for r in await run(conn, pool, registry)] == ["applied"]
    sub = await current(conn, alice)
    assert sub["past_due_since"] is not None and sub["renewal_attempts"] == 1
    assert await current_plan(conn, alice) == "Pro USD"
    [told] = await notes(conn, alice, "Renewal payment failed")
    assert "will be tried again on" in told
    await audit_clean(conn)

    # Stripe gives up and deletes the subscription: Free, bots paused, Alice told. A late
    # copy of the failure changes nothing.
    deleted = stripe_event(
        "evt_sub_deleted",
        "customer.subscription.deleted",
        {
            "id": "sub_a",
            "object": "subscription",
            "status": "canceled",
            "cancellation_details": {"reason": "payment_failed"},
        },
    )
    late = stripe_event(
        "evt_in_3_failed_again", "invoice.payment_failed", failed[1]["data"]["object"]
    )
    await deliver(conn, "stripe", [deleted, late])
    assert [r["outcome"] for r in await run(conn, pool, registry)] == ["applied", "unchanged"]
    assert await current_plan(conn, alice) == "Free"
    assert [s for s, _ in await bots_by_status(conn, alice)] == ["paused", "running", "running"]
    [ended] = await notes(conn, alice, "Subscription ended")
    assert "payment_failed" in ended
    assert await balance(conn, alice) == Decimal("4000")
    await audit_clean(conn)
