"""Trials, reminders before a trial or a paid period ends, and cancellation at period end,
on the real database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.support.billing import (
    audit_clean,
    balance,
    checkout,
    current,
    current_plan,
    deliver,
    notes,
    one,
    plan,
    titles,
)
from tests.support.db import User, request_as
from tests.support.fleet import run_queued_jobs
from worker.billing import BillingSettings, register
from worker.fleet.registry import Registry


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    register(reg, BillingSettings())
    return reg


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
