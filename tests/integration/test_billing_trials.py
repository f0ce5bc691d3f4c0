"""Trials, reminders before a trial or a paid period ends, and cancellation at period end,
on the real database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.support.billing import (
    audit_clean,
    balance,
    billing_registry,
    checkout,
    current,
    current_plan,
    deliver,
    notes,
    one,
    plan,
    stripe_event,
    titles,
)
from tests.support.db import User, request_as
from tests.support.fleet import run_queued_jobs
from worker.fleet.registry import Registry


@pytest.fixture
def registry() -> Registry:
    return billing_registry()


async def reminders(conn: psycopg.AsyncConnection[Any]) -> int:
    return int(await one(conn, "select public.billing_send_reminders()"))


async def ends_in(conn: psycopg.AsyncConnection[Any], user: User, interval: str) -> None:
    """Time passes: the current trial or period ends ``interval`` from now."""
    await conn.execute(
        "update subscriptions set started_at = least(started_at, now() - interval '1 month'),"
        " expires_at = now() + %s::interval,"
        " trial_ends_at = case when status = 'trial' then now() + %s::interval end"
        " where user_id = %s and status in ('active', 'trial')",
        (interval, interval, user.id),
    )


async def test_a_trial_is_reminded_3_days_and_1_day_before_and_paying_continues_it(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    pro = await plan(conn, "Pro trial", "29", "USD", monthly_credits=2000, trial_days=14)
    async with request_as(conn, alice) as cur:
        await cur.execute(
            "select status, trial_ends_at - started_at as length from billing_start_trial(%s)",
            (pro,),
        )
        row = await cur.fetchone()
        assert row is not None and row["status"] == "trial" and row["length"].days == 14
    assert await current_plan(conn, alice) == "Pro trial"
    assert "Pro trial trial started" in await titles(conn, alice)
    # One trial per user.
    with pytest.raises(psycopg.errors.CheckViolation, match="already had a trial"):
        async with request_as(conn, alice) as cur:
            await cur.execute("select billing_start_trial(%s)", (pro,))

    assert await reminders(conn) == 0
    await ends_in(conn, alice, "2 days 12 hours")
    assert await reminders(conn) == 1
    assert await reminders(conn) == 0
    await ends_in(conn, alice, "20 hours")
    assert await reminders(conn) == 1
    assert await reminders(conn) == 0
    [three] = await notes(conn, alice, "Pro trial trial ends in 3 days")
    [one_day] = await notes(conn, alice, "Pro trial trial ends in 1 day")
    assert "Check out to keep the plan" in three and "Check out to keep the plan" in one_day

    # Paying during the trial: the paid month starts when the trial ends.
    trial_end = (await current(conn, alice))["expires_at"]
    inv = await checkout(conn, alice, "stripe", "cs_trial", plan_id=pro)
    await deliver(
        conn,
        "stripe",
        [
            (
                "evt_trial_paid",
                {
                    "id": "evt_trial_paid",
                    "type": "checkout.session.completed",
                    "created": 1796000000,
                    "data": {
                        "object": {
                            "id": "cs_trial",
                            "object": "checkout.session",
                            "payment_status": "paid",
                            "amount_total": 2900,
                            "currency": "usd",
                            "metadata": {"invoice_id": str(inv)},
                        }
                    },
                },
            )
        ],
    )
    assert [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")] == [
        "applied"
    ]
    sub = await current(conn, alice)
    assert sub["status"] == "active" and sub["provider"] == "stripe"
    assert (sub["expires_at"] - trial_end).days in (28, 29, 30, 31)
    assert sub["trial_ends_at"] is not None
    assert await balance(conn, alice) == Decimal("2000")
    await audit_clean(conn)


async def test_cancelling_at_period_end_stops_the_renewal_and_the_plan_ends_on_time(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    bob = users["bob"]
    gold = await plan(conn, "Gold cancel", "5000", "NGN")
    inv = await checkout(conn, bob, "paystack", None, plan_id=gold)
    await conn.execute("select billing_apply_invoice_event(%s, 'paid', 5000)", (inv,))
    assert await current_plan(conn, bob) == "Gold cancel"
    # A user without a paid plan has nothing to cancel; a trial is not for users on one.
    async with request_as(conn, users["alice"]) as cur:
        with pytest.raises(psycopg.errors.NoDataFound):
            await cur.execute("select billing_cancel_at_period_end()")

    async with request_as(conn, bob) as cur:
        await cur.execute(
            "select cancel_at_period_end, auto_renew from billing_cancel_at_period_end()"
        )
        assert await cur.fetchone() == {"cancel_at_period_end": True, "auto_renew": False}
    [told] = await notes(conn, bob, "Plan cancelled")
    assert "will not renew" in told
    await ends_in(conn, bob, "20 hours")
    assert await reminders(conn) == 1
    [reminder] = await notes(conn, bob, "Gold cancel plan ends in 1 day")
    assert "will not renew" in reminder
    # No renewal invoice, no charge.
    cur = await conn.execute("select * from billing_renewals_due(now() + interval '1 day')")
    assert await cur.fetchall() == []
    assert await one(conn, "select count(*) from invoices where subscription_id is not null") == 0

    # At the period's end the sweep ends the plan.
    await ends_in(conn, bob, "-1 minute")
    await conn.execute("select enqueue_job('billing.sweep')")
    await run_queued_jobs(conn, pool, registry, "billing.")
    assert await current_plan(conn, bob) == "Free"
    assert "Subscription expired" in await titles(conn, bob)
    await audit_clean(conn)


async def test_checkout_is_one_open_invoice_per_user_item_and_period(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    alice = users["alice"]
    pro = await plan(conn, "Pro open", "29", "USD")
    first = await checkout(conn, alice, "stripe", "cs_1", plan_id=pro)
    again = await one(conn, "select public.billing_checkout_open(%s, 'stripe', %s)", alice.id, pro)
    assert (again["id"], again["existing"], again["amount"], again["amount_minor"]) == (
        str(first),
        True,
        "29.00",
        2900,
    )
    # Another provider for the same item replaces the open invoice.
    other = await one(
        conn, "select public.billing_checkout_open(%s, 'paystack', %s)", alice.id, pro
    )
    assert other["existing"] is False and other["id"] != str(first)
    assert await one(conn, "select status from invoices where id = %s", first) == "cancelled"
    # A checkout the provider refused goes without a trace; one with a URL stays.
    assert await one(conn, "select public.billing_checkout_abort(%s)", other["id"]) is True
    assert await one(conn, "select count(*) from invoices where id = %s", other["id"]) == 0
    assert await one(conn, "select public.billing_checkout_abort(%s)", first) is False
    # Apps cannot open checkouts themselves.
    async with request_as(conn, alice) as cur:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await cur.execute(
                "select public.billing_checkout_open(%s, 'stripe', %s)", (alice.id, pro)
            )


async def test_a_stripe_trial_from_trial_period_days_ends_in_the_first_charge(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice, bob = users["alice"], users["bob"]
    pro = await plan(conn, "Pro Stripe trial", "29", "USD", monthly_credits=2000, trial_days=14)
    assert await one(conn, "select public.billing_trial_days(%s, %s)", alice.id, pro) == 14
    inv = await checkout(conn, alice, "stripe", "cs_trial", plan_id=pro)
    meta = {"user_id": str(alice.id), "plan_id": str(pro)}
    trial_end = int(datetime.now(UTC).timestamp()) + 14 * 86400
    subscription = {
        "id": "sub_trial",
        "object": "subscription",
        "status": "trialing",
        "trial_end": trial_end,
        "cancel_at_period_end": False,
        "metadata": meta,
    }
    completed = stripe_event(
        "evt_trial_cs",
        "checkout.session.completed",
        {
            "id": "cs_trial",
            "object": "checkout.session",
            "mode": "subscription",
            "payment_status": "no_payment_required",
            "amount_total": 0,
            "currency": "usd",
            "customer": "cus_trial",
            "subscription": "sub_trial",
            "metadata": {"invoice_id": str(inv), **meta},
        },
    )
    zero = stripe_event(
        "evt_trial_in0",
        "invoice.paid",
        {
            "id": "in_trial_0",
            "object": "invoice",
            "billing_reason": "subscription_create",
            "amount_paid": 0,
            "currency": "usd",
            "parent": {"subscription_details": {"subscription": "sub_trial", "metadata": meta}},
        },
    )
    created = stripe_event("evt_trial_created", "customer.subscription.created", subscription)
    # The first charge, at the trial's end, delivered first: it waits for the trial.
    first_charge = stripe_event(
        "evt_trial_in1",
        "invoice.paid",
        {
            "id": "in_trial_1",
            "object": "invoice",
            "billing_reason": "subscription_cycle",
            "amount_paid": 2900,
            "currency": "usd",
            "customer": "cus_trial",
            "parent": {"subscription_details": {"subscription": "sub_trial", "metadata": meta}},
        },
    )
    await deliver(conn, "stripe", [completed, zero])
    outcomes = [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")]
    assert "applied" not in outcomes  # a $0 start pays nothing
    await deliver(conn, "stripe", [created])
    assert "applied" in [
        r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")
    ]
    sub = await current(conn, alice)
    assert (sub["plan"], sub["status"]) == ("Pro Stripe trial", "trial")
    assert int(sub["trial_ends_at"].timestamp()) == trial_end
    assert sub["expires_at"] == sub["trial_ends_at"]
    assert await one(conn, "select status from invoices where id = %s", inv) == "pending"
    assert "Pro Stripe trial trial started" in await titles(conn, alice)
    # One trial per user: none is offered again, and a second Stripe trial is not granted.
    assert await one(conn, "select public.billing_trial_days(%s, %s)", alice.id, pro) == 0

    # Three days before the end Alice is told her card will be charged, not to check out.
    await ends_in(conn, alice, "2 days 23 hours")
    assert await reminders(conn) == 1
    [told] = await notes(conn, alice, "Pro Stripe trial trial ends in 3 days")
    assert "your card will then be charged" in told
    await conn.execute(
        "update subscriptions set trial_ends_at = to_timestamp(%s), expires_at = to_timestamp(%s)"
        " where user_id = %s and status = 'trial'",
        (trial_end, trial_end, alice.id),
    )

    # Stripe moves the trial's end (an update), then the late creation comes again.
    later = {**subscription, "trial_end": trial_end + 86400}
    updated = stripe_event("evt_trial_updated", "customer.subscription.updated", later)
    await deliver(conn, "stripe", [updated])
    await run_queued_jobs(conn, pool, registry, "billing.")
    assert int((await current(conn, alice))["trial_ends_at"].timestamp()) == trial_end + 86400
    event_id, resent = stripe_event(
        "evt_trial_resent", "customer.subscription.created", subscription
    )
    resent["created"] -= 60
    await deliver(conn, "stripe", [(event_id, resent)])
    assert [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")] == [
        "unchanged"
    ]
    assert int((await current(conn, alice))["trial_ends_at"].timestamp()) == trial_end + 86400

    # The trial ends: the first charge pays the checkout's invoice and the plan runs on.
    await deliver(conn, "stripe", [first_charge])
    assert [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")] == [
        "applied"
    ]
    assert await one(conn, "select status from invoices where id = %s", inv) == "paid"
    sub = await current(conn, alice)
    assert sub["status"] == "active" and sub["plan"] == "Pro Stripe trial"
    assert (sub["expires_at"] - sub["trial_ends_at"]).days in (28, 29, 30, 31)
    assert await balance(conn, alice) == Decimal("2000")
    await audit_clean(conn)

    # Bob had a trial already: his Stripe "trial" is no trial here; the plan starts when paid.
    await conn.execute(
        "insert into subscriptions (user_id, plan_id, status, started_at, expires_at, trial_ends_at)"
        " values (%s, %s, 'expired', now() - interval '40 days', now() - interval '26 days',"
        " now() - interval '26 days')",
        (bob.id, pro),
    )
    assert await one(conn, "select public.billing_trial_days(%s, %s)", bob.id, pro) == 0
    bob_inv = await checkout(conn, bob, "stripe", "cs_trial_bob", plan_id=pro)
    bob_sub = {**subscription, "id": "sub_bob", "metadata": {**meta, "user_id": str(bob.id)}}
    await deliver(
        conn, "stripe", [stripe_event("evt_bob", "customer.subscription.created", bob_sub)]
    )
    assert [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")] == [
        "no_trial"
    ]
    assert await current_plan(conn, bob) == "Free"
    assert await one(conn, "select status from invoices where id = %s", bob_inv) == "pending"
