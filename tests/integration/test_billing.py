"""Billing end to end on the real database: stored webhooks -> jobs -> invoices, plans, credits."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.support.billing import billing_registry
from tests.support.db import User, request_as
from tests.support.fleet import run_queued_jobs
from worker.billing import process_webhook_event
from worker.fleet.registry import Registry


@pytest.fixture
def registry() -> Registry:
    return billing_registry()


async def store(
    conn: psycopg.AsyncConnection[Any],
    provider: str,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
) -> None:
    """What the Edge Functions do: insert once per (provider, event id)."""
    await conn.execute(
        "insert into webhook_events (provider, event_id, event_type, payload) values (%s, %s, %s, %s)",
        (provider, event_id, event_type, json.dumps(payload)),
    )


async def one(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    cur = await conn.execute(query, args)
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def balance(conn: psycopg.AsyncConnection[Any], user: User) -> Decimal:
    return Decimal(
        await one(
            conn,
            "select balance from credit_accounts where user_id = %s and kind = 'user'",
            user.id,
        )
    )


@pytest.fixture
async def pro(conn: psycopg.AsyncConnection[Any]) -> uuid.UUID:
    plan_id = uuid.uuid4()
    await conn.execute(
        "insert into plans (id, name, price_monthly, max_bots, max_strategies, features) "
        "values (%s, 'TestPro', 29, 10, 10, '{\"monthly_credits\": 2000}')",
        (plan_id,),
    )
    return plan_id


async def invoice(
    conn: psycopg.AsyncConnection[Any],
    user: User,
    provider: str,
    ref: str,
    amount: str,
    plan_id: uuid.UUID | None = None,
    credits: str = "0",
) -> uuid.UUID:
    inv = uuid.uuid4()
    await conn.execute(
        "insert into invoices (id, user_id, plan_id, provider, provider_invoice_id, amount, credits) "
        "values (%s, %s, %s, %s, %s, %s, %s)",
        (inv, user.id, plan_id, provider, ref, amount, credits),
    )
    return inv


def stripe_event(event_id: str, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": type_,
        "created": int(time.time()),
        "data": {"object": obj},
    }


async def test_a_stripe_checkout_pays_the_invoice_once_whatever_the_deliveries(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
    pro: uuid.UUID,
) -> None:
    alice = users["alice"]
    inv = await invoice(conn, alice, "stripe", "cs_test_1", "29.00", pro, credits="500")
    paid = stripe_event(
        "evt_paid",
        "checkout.session.completed",
        {
            "id": "cs_test_1",
            "object": "checkout.session",
            "payment_status": "paid",
            "amount_total": 2900,
            "currency": "usd",
            "payment_intent": "pi_1",
            "metadata": {"invoice_id": str(inv)},
        },
    )
    await store(conn, "stripe", "evt_paid", paid["type"], paid)
    await store(conn, "stripe", "evt_paid", paid["type"], paid)  # a re-delivery
    # Stripe also sends the payment intent's own event for the same payment.
    intent = stripe_event(
        "evt_pi",
        "payment_intent.succeeded",
        {
            "id": "pi_1",
            "object": "payment_intent",
            "amount_received": 2900,
            "currency": "usd",
            "metadata": {},
        },
    )
    await store(conn, "stripe", "evt_pi", intent["type"], intent)

    results = await run_queued_jobs(conn, pool, registry, "billing.")
    assert [r["outcome"] for r in results] == ["applied", "unchanged"]
    assert await one(conn, "select status from invoices where id = %s", inv) == "paid"
    assert (
        await one(
            conn,
            "select p.name from subscriptions s join plans p on p.id = s.plan_id "
            "where s.user_id = %s and s.status = 'active'",
            alice.id,
        )
        == "TestPro"
    )
    assert await balance(conn, alice) == Decimal("2500")  # 500 bought + 2000 of the plan
    async with request_as(conn, alice) as cur:
        await cur.execute("select kind, title from notifications")
        assert [(r["kind"], r["title"]) for r in await cur.fetchall()] == [
            ("payment", "Payment received")
        ]

    # A full refund of the charge (named by its payment intent) takes the credits back.
    refund = stripe_event(
        "evt_refund",
        "charge.refunded",
        {
            "id": "ch_1",
            "object": "charge",
            "payment_intent": "pi_1",
            "refunded": True,
            "amount_refunded": 2900,
            "currency": "usd",
        },
    )
    await store(conn, "stripe", "evt_refund", refund["type"], refund)
    assert [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")] == [
        "applied"
    ]
    assert await one(conn, "select status from invoices where id = %s", inv) == "refunded"
    assert await balance(conn, alice) == Decimal("2000")
    assert (
        await one(
            conn,
            "select count(*) from subscriptions where user_id = %s and status = 'active'",
            alice.id,
        )
        == 0
    )

    # Processing the same event again (a retried job) is a no-op.
    event_row = await one(conn, "select id from webhook_events where event_id = 'evt_paid'")
    assert (await process_webhook_event(pool, event_row))["outcome"] == "already_processed"
    assert await balance(conn, alice) == Decimal("2000")


async def test_a_refund_before_the_payment_waits_for_it_and_takes_the_credits_back(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    bob = users["bob"]
    await invoice(conn, bob, "paystack", "ref_42", "100.00", credits="1000")
    refund = {
        "event": "refund.processed",
        "data": {"id": 7, "transaction_reference": "ref_42", "status": "processed"},
    }
    charge = {
        "event": "charge.success",
        "data": {
            "id": 99,
            "reference": "ref_42",
            "status": "success",
            "amount": 10000,
            "currency": "NGN",
            "channel": "card",
            "paid_at": "2026-11-22T10:00:00.000Z",
        },
    }
    await store(conn, "paystack", "refund.processed:7", "refund.processed", refund)
    assert [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")] == [
        "waiting"
    ]
    assert (
        await one(conn, "select status from invoices where provider_invoice_id = 'ref_42'")
        == "pending"
    )
    await store(conn, "paystack", "charge.success:99", "charge.success", charge)
    # The payment applies, then the refund it woke: as if they had come in that order.
    results = await run_queued_jobs(conn, pool, registry, "billing.")
    assert [r["outcome"] for r in results] == ["applied", "applied"]
    assert (
        await one(conn, "select status from invoices where provider_invoice_id = 'ref_42'")
        == "refunded"
    )
    assert await balance(conn, bob) == Decimal("0")
    assert (
        await one(conn, "select string_agg(status, ',' order by event_id) from webhook_events")
        == "processed,processed"
    )


async def test_paystack_pays_in_subunits_and_a_short_payment_is_refused(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    bob = users["bob"]
    inv = await invoice(conn, bob, "paystack", "ref_short", "100.00", credits="10")
    short = {
        "event": "charge.success",
        "data": {"id": 1, "reference": "ref_short", "amount": 9999, "currency": "NGN"},
    }
    await store(conn, "paystack", "charge.success:1", "charge.success", short)
    assert [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")] == [
        "amount_mismatch"
    ]
    assert await one(conn, "select status from invoices where id = %s", inv) == "pending"
    full = {
        "event": "charge.success",
        "data": {"id": 2, "reference": "ref_short", "amount": 10000, "currency": "NGN"},
    }
    await store(conn, "paystack", "charge.success:2", "charge.success", full)
    assert [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")] == [
        "applied"
    ]
    assert await balance(conn, bob) == Decimal("10")


async def test_tripay_callbacks_move_the_invoice_and_expiry_is_final_until_paid(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    inv = await invoice(conn, alice, "tripay", "T0001", "200000", credits="20")
    base = {
        "reference": "T0001",
        "merchant_ref": str(inv),
        "payment_method": "BRI Virtual Account",
        "payment_method_code": "BRIVA",
        "total_amount": 200000,
    }
    await store(
        conn, "tripay", "T0001:EXPIRED", "payment_status.EXPIRED", {**base, "status": "EXPIRED"}
    )
    await store(
        conn, "tripay", "T0001:UNPAID", "payment_status.UNPAID", {**base, "status": "UNPAID"}
    )
    results = await run_queued_jobs(conn, pool, registry, "billing.")
    assert [r["outcome"] for r in results] == ["applied", "ignored"]
    assert await one(conn, "select status from invoices where id = %s", inv) == "expired"
    await store(
        conn,
        "tripay",
        "T0001:PAID",
        "payment_status.PAID",
        {**base, "status": "PAID", "paid_at": int(time.time())},
    )
    assert [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")] == [
        "applied"
    ]
    assert (
        await one(conn, "select status || ' ' || payment_method from invoices where id = %s", inv)
        == "paid BRIVA"
    )
    assert await balance(conn, alice) == Decimal("20")


async def test_a_provider_billed_renewal_creates_its_invoice_and_extends_the_plan(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
    pro: uuid.UUID,
) -> None:
    alice = users["alice"]
    meta = {"user_id": str(alice.id), "plan_id": str(pro)}
    for n in (1, 2):
        ev = stripe_event(
            f"evt_inv_{n}",
            "invoice.paid",
            {
                "id": f"in_{n}",
                "object": "invoice",
                "amount_paid": 2900,
                "currency": "usd",
                "metadata": meta,
            },
        )
        await store(conn, "stripe", ev["id"], ev["type"], ev)
    assert [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.")] == [
        "applied",
        "applied",
    ]
    assert (
        await one(
            conn, "select count(*) from invoices where user_id = %s and status = 'paid'", alice.id
        )
        == 2
    )
    assert await one(
        conn,
        "select expires_at > now() + interval '55 days' from subscriptions "
        "where user_id = %s and status = 'active'",
        alice.id,
    )


async def test_malformed_or_unknown_events_are_ignored_with_a_reason_and_unmatched_ones_wait(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    await store(
        conn,
        "stripe",
        "evt_bad",
        "invoice.paid",
        {"id": "evt_bad", "type": "invoice.paid", "data": {}},
    )
    await store(
        conn,
        "stripe",
        "evt_other",
        "customer.created",
        stripe_event("evt_other", "customer.created", {"id": "cus_1"}),
    )
    await store(
        conn,
        "stripe",
        "evt_orphan",
        "invoice.paid",
        stripe_event(
            "evt_orphan", "invoice.paid", {"id": "in_nobody", "amount_paid": 100, "currency": "usd"}
        ),
    )
    await run_queued_jobs(conn, pool, registry, "billing.")
    cur = await conn.execute("select event_id, status, error from webhook_events order by event_id")
    rows = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
    assert rows["evt_bad"][0] == "ignored" and "schema" in rows["evt_bad"][1]
    assert rows["evt_other"] == ("ignored", "customer.created changes no invoice")
    # An event naming no known invoice may be early: it waits (see test_payment_event_order).
    assert rows["evt_orphan"][0] == "waiting" and "invoice matching" in rows["evt_orphan"][1]


async def test_concurrent_processing_of_two_deliveries_credits_once(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
) -> None:
    bob = users["bob"]
    await invoice(conn, bob, "tripay", "T9", "50000", credits="77")
    for status_event in ("a", "b"):
        await store(
            conn,
            "tripay",
            f"T9:PAID:{status_event}",
            "payment_status.PAID",
            {"reference": "T9", "status": "PAID", "total_amount": 50000},
        )
    ids = [
        r[0]
        for r in await (
            await conn.execute(
                "select id from webhook_events where event_id like 'T9:%' order by event_id"
            )
        ).fetchall()
    ]
    outcomes = await asyncio.gather(*(process_webhook_event(pool, i) for i in ids))
    assert sorted(o["outcome"] for o in outcomes) == ["applied", "unchanged"]
    assert await balance(conn, bob) == Decimal("77")


async def test_the_sweep_expires_overdue_invoices(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    inv = await invoice(conn, users["bob"], "tripay", "T10", "1000")
    await conn.execute(
        "update invoices set expired_at = now() - interval '1 minute' where id = %s", (inv,)
    )
    await conn.execute("select enqueue_job('billing.sweep')")
    assert await run_queued_jobs(conn, pool, registry, "billing.") == [
        {
            "invoices_expired": 1,
            "subscriptions_expired": 0,
            "events_expired": 0,
            "events_retried": 0,
        }
    ]
    assert await one(conn, "select status from invoices where id = %s", inv) == "expired"
