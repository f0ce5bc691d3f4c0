"""Payment webhooks in any order end as in the natural order (Stripe, Paystack, Tripay).

Each scenario is the events one payment's life can send. Every order they can arrive in
(with a re-delivery and a re-run of its job in between) is played against a fresh user,
each event processed before the next arrives, and the user's end state — invoices,
credits, plan, what became of every event — must equal the natural order's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.support import payments
from tests.support.billing import billing_registry
from tests.support.db import User, create_user
from tests.support.fleet import run_queued_jobs
from tests.support.payments import Delivery
from worker import inbox
from worker.billing import process_webhook_event
from worker.fleet.registry import Registry

# One scenario: given the user, a fresh invoice of theirs for a plan and a unique suffix,
# the deliveries in their natural order.
Scenario = Callable[[User, uuid.UUID, uuid.UUID, str], list[Delivery]]


@pytest.fixture
def registry() -> Registry:
    return billing_registry()


@pytest.fixture
async def pro(conn: psycopg.AsyncConnection[Any]) -> uuid.UUID:
    plan_id = uuid.uuid4()
    await conn.execute(
        "insert into plans (id, name, price_monthly, max_bots, max_strategies, features) "
        "values (%s, 'OrderPro', 29, 10, 10, '{\"monthly_credits\": 2000}')",
        (plan_id,),
    )
    return plan_id


def stripe_one_time(user: User, inv: uuid.UUID, plan: uuid.UUID, s: str) -> list[Delivery]:
    """A card payment through Checkout: an attempt that fails, the session completing,
    the payment intent's own success event, then a full refund of the charge."""
    pi = f"pi_{s}"
    return [
        payments.stripe(
            f"evt_fail_{s}",
            "payment_intent.payment_failed",
            {
                "id": pi,
                "object": "payment_intent",
                "amount": 2900,
                "currency": "usd",
                "status": "requires_payment_method",
                "metadata": {},
            },
        ),
        payments.stripe(
            f"evt_cs_{s}",
            "checkout.session.completed",
            {
                "id": f"cs_{s}",
                "object": "checkout.session",
                "mode": "payment",
                "payment_status": "paid",
                "amount_total": 2900,
                "currency": "usd",
                "payment_intent": pi,
                "client_reference_id": str(inv),
                "metadata": {"invoice_id": str(inv)},
            },
        ),
        payments.stripe(
            f"evt_pi_{s}",
            "payment_intent.succeeded",
            {
                "id": pi,
                "object": "payment_intent",
                "amount": 2900,
                "amount_received": 2900,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {},
            },
        ),
        payments.stripe(
            f"evt_refund_{s}",
            "charge.refunded",
            {
                "id": f"ch_{s}",
                "object": "charge",
                "amount": 2900,
                "amount_refunded": 2900,
                "currency": "usd",
                "payment_intent": pi,
                "refunded": True,
                "metadata": {},
            },
        ),
    ]


def stripe_subscription(user: User, inv: uuid.UUID, plan: uuid.UUID, s: str) -> list[Delivery]:
    """A plan bought through Checkout in subscription mode: the session completing, the
    subscription's first invoice paid (the same payment), then a renewal billed by Stripe,
    announced twice (``invoice.paid`` and ``invoice.payment_succeeded``)."""
    sub = f"sub_{s}"
    meta = {"user_id": str(user.id), "plan_id": str(plan), "credits": "0"}
    renewal = {
        "id": f"in_renew_{s}",
        "object": "invoice",
        "billing_reason": "subscription_cycle",
        "amount_paid": 2900,
        "currency": "usd",
        "payment_intent": f"pi_renew_{s}",
        "metadata": {},
        # Stripe's newer API versions name the subscription under ``parent``.
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub, "metadata": meta},
        },
    }
    return [
        payments.stripe(
            f"evt_cs_{s}",
            "checkout.session.completed",
            {
                "id": f"cs_{s}",
                "object": "checkout.session",
                "mode": "subscription",
                "payment_status": "paid",
                "amount_total": 2900,
                "currency": "usd",
                "payment_intent": None,
                "subscription": sub,
                "invoice": f"in_first_{s}",
                "metadata": {"invoice_id": str(inv)},
            },
        ),
        payments.stripe(
            f"evt_in1_{s}",
            "invoice.paid",
            {
                "id": f"in_first_{s}",
                "object": "invoice",
                "billing_reason": "subscription_create",
                "subscription": sub,
                "amount_paid": 2900,
                "currency": "usd",
                "payment_intent": f"pi_first_{s}",
                "metadata": {},
                "subscription_details": {"metadata": meta},
            },
        ),
        payments.stripe(f"evt_in2_{s}", "invoice.paid", renewal),
        payments.stripe(f"evt_in2s_{s}", "invoice.payment_succeeded", renewal),
    ]


def paystack(user: User, inv: uuid.UUID, plan: uuid.UUID, s: str) -> list[Delivery]:
    """A failed charge, the successful retry, then a refund (Paystack names the
    transaction by our reference)."""
    ref = f"ref_{s}"
    charge = {"reference": ref, "currency": "NGN", "channel": "card", "metadata": {}}
    return [
        payments.paystack(
            "charge.failed", {**charge, "id": f"98{s}", "status": "failed", "amount": 10000}
        ),
        payments.paystack(
            "charge.success",
            {
                **charge,
                "id": f"99{s}",
                "status": "success",
                "amount": 10000,
                "paid_at": "2026-11-22T10:00:00+00:00",
            },
        ),
        payments.paystack(
            "refund.processed",
            {
                "id": f"7{s}",
                "transaction_reference": ref,
                "status": "processed",
                "amount": 10000,
                "currency": "NGN",
            },
        ),
    ]


def tripay(user: User, inv: uuid.UUID, plan: uuid.UUID, s: str) -> list[Delivery]:
    """A closed payment: unpaid, expired, paid late, refunded."""
    base = {
        "reference": f"T{s}",
        "merchant_ref": str(inv),
        "payment_method": "BRI Virtual Account",
        "payment_method_code": "BRIVA",
        "total_amount": 100,
        "fee_merchant": 0,
        "fee_customer": 0,
        "total_fee": 0,
        "amount_received": 100,
        "is_closed_payment": 1,
        "paid_at": None,
        "note": None,
    }
    return [
        payments.tripay({**base, "status": "UNPAID"}),
        payments.tripay({**base, "status": "EXPIRED"}),
        payments.tripay({**base, "status": "PAID", "paid_at": 1795000000}),
        payments.tripay({**base, "status": "REFUND"}),
    ]


SCENARIOS: dict[str, tuple[Scenario, str, str]] = {
    # name: (scenario, provider, invoice amount)
    "stripe-one-time": (stripe_one_time, "stripe", "29.00"),
    "stripe-subscription": (stripe_subscription, "stripe", "29.00"),
    "paystack": (paystack, "paystack", "100.00"),
    "tripay": (tripay, "tripay", "100"),
}


def orders(n: int) -> list[list[int]]:
    """Every order of n events, each with its first event delivered (and its job run) again
    after its second."""
    return [[*p[:2], p[0], *p[2:]] for p in itertools.permutations(range(n))]


async def end_state(
    conn: psycopg.AsyncConnection[Any], user: User, event_ids: list[str]
) -> dict[str, Any]:
    """What the user and an operator see once everything has been processed."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select status, amount, credits from invoices where user_id = %s "
            "order by created_at, status",
            (user.id,),
        )
        invoices = [(r["status"], r["amount"], r["credits"]) for r in await cur.fetchall()]
        await cur.execute(
            "select balance from credit_accounts where user_id = %s and kind = 'user'", (user.id,)
        )
        balance = (await cur.fetchone() or {}).get("balance")
        await cur.execute(
            # Hours left, not the end's clock time: two plays straddling a full hour must
            # compare equal.
            "select p.name, round(extract(epoch from s.expires_at - now()) / 3600) as until "
            "from subscriptions s "
            "join plans p on p.id = s.plan_id where s.user_id = %s and s.status = 'active'",
            (user.id,),
        )
        plans = [(r["name"], r["until"]) for r in await cur.fetchall()]
        await cur.execute(
            "select event_type, status from webhook_events where event_id = any(%s) order by 1, 2",
            (event_ids,),
        )
        events = [(r["event_type"], r["status"]) for r in await cur.fetchall()]
    return {"invoices": invoices, "balance": balance, "plans": plans, "events": events}


async def play(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    scenario: Scenario,
    provider: str,
    amount: str,
    plan_id: uuid.UUID,
    order: list[int],
) -> tuple[User, dict[str, Any]]:
    """A fresh user with a pending invoice; the scenario's deliveries in ``order``, each
    processed before the next arrives."""
    suffix = uuid.uuid4().hex[:10]
    user = await create_user(conn, f"order-{suffix}@test.local")
    inv = uuid.uuid4()
    # The reference the app got when it opened the payment with the provider.
    reference = {"stripe": f"cs_{suffix}", "paystack": f"ref_{suffix}", "tripay": f"T{suffix}"}
    await conn.execute(
        "insert into invoices (id, user_id, plan_id, provider, amount, credits, provider_invoice_id) "
        "values (%s, %s, %s, %s, %s, 500, %s)",
        (inv, user.id, plan_id, provider, amount, reference[provider]),
    )
    deliveries = scenario(user, inv, plan_id, suffix)
    seen: set[int] = set()
    for i in order:
        await payments.store(conn, deliveries[i])
        if i in seen:
            # Delivered again, and its job run again (as after a worker crash).
            await conn.execute(
                "select enqueue_job('billing.webhook', jsonb_build_object('webhook_event_id', e.id), "
                "'default', null, 0, 10, 'again:' || e.id) from webhook_events e "
                "where e.provider = %s and e.event_id = %s",
                (provider, deliveries[i].event_id),
            )
        seen.add(i)
        await run_queued_jobs(conn, pool, registry, "billing.")
    return user, await end_state(conn, user, [d.event_id for d in deliveries])


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_every_delivery_order_ends_as_the_natural_order(
    name: str,
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    pro: uuid.UUID,
) -> None:
    scenario, provider, amount = SCENARIOS[name]
    n = len(scenario(User(uuid.uuid4(), "x@test.local"), uuid.uuid4(), pro, "x"))
    natural = list(range(n))
    _, expected = await play(conn, pool, registry, scenario, provider, amount, pro, natural)
    assert "waiting" not in {s for _, s in expected["events"]}, expected
    for order in orders(n):
        _, got = await play(conn, pool, registry, scenario, provider, amount, pro, order)
        assert got == expected, f"{name}: order {order}"


async def test_the_natural_orders_end_where_users_expect(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    pro: uuid.UUID,
) -> None:
    """What the matrix compares against: a refund takes back the credits bought, keeps
    the plan's monthly credits and ends the plan; a subscription's first payment is
    counted once and its renewal extends the plan by a month."""
    one_time = await play(
        conn, pool, registry, stripe_one_time, "stripe", "29.00", pro, [0, 1, 2, 3]
    )
    assert one_time[1]["invoices"] == [("refunded", Decimal("29.00"), Decimal("500"))]
    assert one_time[1]["balance"] == Decimal("2000")
    assert one_time[1]["plans"] == []

    _, sub = await play(
        conn, pool, registry, stripe_subscription, "stripe", "29.00", pro, [0, 1, 2, 3]
    )
    assert [s for s, _, _ in sub["invoices"]] == ["paid", "paid"]  # ours and the renewal
    ((plan, until),) = sub["plans"]
    cur = await conn.execute(
        "select round(extract(epoch from (now() + interval '2 months') - now()) / 3600)"
    )
    row = await cur.fetchone()
    assert plan == "OrderPro" and row is not None
    assert abs(until - row[0]) <= 1  # hours
    assert sub["events"] == [
        ("checkout.session.completed", "processed"),
        ("invoice.paid", "processed"),
        ("invoice.paid", "processed"),
        ("invoice.payment_succeeded", "processed"),
    ]

    tri = await play(conn, pool, registry, tripay, "tripay", "100", pro, [0, 1, 2, 3])
    assert tri[1]["invoices"] == [("refunded", Decimal("100.00"), Decimal("500"))]
    assert ("payment_status.UNPAID", "ignored") in tri[1]["events"]


async def test_a_refund_whose_payment_never_comes_ends_ignored_after_the_wait(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    users: dict[str, User],
) -> None:
    refund = payments.stripe(
        "evt_lonely_refund",
        "charge.refunded",
        {"id": "ch_x", "object": "charge", "payment_intent": "pi_x", "refunded": True},
    )
    await payments.store(conn, refund)
    (result,) = await run_queued_jobs(conn, pool, registry, "billing.")
    assert result["outcome"] == "waiting"
    cur = await conn.execute(
        "select status, waiting_for, error from webhook_events where event_id = 'evt_lonely_refund'"
    )
    assert await cur.fetchone() == (
        "waiting",
        ["ch_x", "pi_x"],
        "waits for an invoice matching stripe references ['ch_x', 'pi_x']",
    )

    # Within the wait, the sweep tries it again: still nothing to match, it waits on.
    await conn.execute("select enqueue_job('billing.sweep')")
    results = await run_queued_jobs(conn, pool, registry, "billing.")
    assert results[0]["events_retried"] == 1 and results[0]["events_expired"] == 0
    assert results[1]["outcome"] == "waiting"

    # Past BILLING_WEBHOOK_WAIT_H (72 h by default) it ends ignored, saying why.
    await conn.execute(
        "update webhook_events set received_at = now() - interval '73 hours' "
        "where event_id = 'evt_lonely_refund'"
    )
    await conn.execute("select enqueue_job('billing.sweep', '{}', 'default', null, 0, 3, 'again')")
    (swept,) = await run_queued_jobs(conn, pool, registry, "billing.")
    assert swept["events_expired"] == 1
    cur = await conn.execute(
        "select status, error from webhook_events where event_id = 'evt_lonely_refund'"
    )
    assert await cur.fetchone() == (
        "ignored",
        "nothing it waited for arrived within 72 h "
        "(waits for an invoice matching stripe references ['ch_x', 'pi_x'])",
    )


async def test_a_waiting_event_missed_by_its_wake_is_applied_by_the_sweep(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    users: dict[str, User],
) -> None:
    """A wake can race the decision to wait; the sweep's retry catches it."""
    bob = users["bob"]
    inv = uuid.uuid4()
    await conn.execute(
        "insert into invoices (id, user_id, provider, provider_invoice_id, amount, credits, status) "
        "values (%s, %s, 'paystack', 'ref_race', 10, 0, 'paid')",
        (inv, bob.id),
    )
    refund = payments.paystack(
        "refund.processed", {"id": 5, "transaction_reference": "ref_race", "status": "processed"}
    )
    await payments.store(conn, refund)
    await conn.execute("update jobs set status = 'succeeded' where kind = 'billing.webhook'")
    await conn.execute(
        "update webhook_events set status = 'waiting', waiting_for = '{ref_race}', attempts = 1 "
        "where event_id = %s",
        (refund.event_id,),
    )
    await conn.execute("select enqueue_job('billing.sweep')")
    results = await run_queued_jobs(conn, pool, registry, "billing.")
    assert [r.get("outcome") for r in results[1:]] == ["applied"]
    cur = await conn.execute("select status from invoices where id = %s", (inv,))
    assert await cur.fetchone() == ("refunded",)


async def test_processing_a_waiting_event_again_changes_nothing_until_it_can_apply(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    users: dict[str, User],
) -> None:
    alice = users["alice"]
    inv = uuid.uuid4()
    await conn.execute(
        "insert into invoices (id, user_id, provider, provider_invoice_id, amount, credits) "
        "values (%s, %s, 'tripay', 'T-again', 100, 7)",
        (inv, alice.id),
    )
    base = {"reference": "T-again", "merchant_ref": str(inv), "total_amount": 100}
    refund = payments.tripay({**base, "status": "REFUND"})
    await payments.store(conn, refund)
    await run_queued_jobs(conn, pool, registry, "billing.")
    cur = await conn.execute(
        "select id from webhook_events where event_id = %s", (refund.event_id,)
    )
    row = await cur.fetchone()
    assert row is not None
    again = await process_webhook_event(pool, row[0])
    assert again["outcome"] == "waiting"
    cur = await conn.execute("select status, credits from invoices where id = %s", (inv,))
    assert await cur.fetchone() == ("pending", Decimal("7"))


async def test_a_refund_deciding_to_wait_while_its_payment_applies_is_still_woken(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    pro: uuid.UUID,
    users: dict[str, User],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two workers take the refund and its payment at the same moment; the refund has
    found no payment and is about to wait when the payment would apply and wake nobody.
    It must still be woken at once, not by the sweep minutes later."""
    alice = users["alice"]
    inv = uuid.uuid4()
    await conn.execute(
        "insert into invoices (id, user_id, provider, amount, credits, provider_invoice_id) "
        "values (%s, %s, 'stripe', 29, 500, 'cs_race')",
        (inv, alice.id),
    )
    _, checkout, _, refund = stripe_one_time(alice, inv, pro, "race")
    for d in (refund, checkout):
        await payments.store(conn, d)
    await conn.execute("update jobs set status = 'succeeded' where kind = 'billing.webhook'")
    cur = await conn.execute(
        "select event_id, id from webhook_events where event_id = any(%s)",
        ([refund.event_id, checkout.event_id],),
    )
    ids = dict(await cur.fetchall())

    paid = asyncio.Event()
    real_wait = inbox.wait

    async def wait_after_the_payment(*args: Any) -> None:
        # The refund waits only once the payment is done (or could not be, for a second).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(paid.wait(), 1.0)
        await real_wait(*args)

    async def payment() -> None:
        await process_webhook_event(pool, ids[checkout.event_id])
        paid.set()

    monkeypatch.setattr(inbox, "wait", wait_after_the_payment)
    refunding = asyncio.create_task(process_webhook_event(pool, ids[refund.event_id]))
    await asyncio.sleep(0.2)  # the refund has looked for its invoice
    await asyncio.gather(refunding, payment())
    monkeypatch.setattr(inbox, "wait", real_wait)

    await run_queued_jobs(conn, pool, registry, "billing.")  # the woken refund
    cur = await conn.execute("select status from invoices where id = %s", (inv,))
    assert await cur.fetchone() == ("refunded",)
