"""Refunds and chargebacks on the real database: the provider's event reverses the invoice and
claws its credits back through new transfers — from the user, then from the strategy
payments they made with them (the provider's share included) — and what nobody can give
back is an exposure for admins, never a broken ledger."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.support import payments
from tests.support.billing import audit_clean, billing_registry
from tests.support.db import User, request_as
from tests.support.fleet import run_queued_jobs
from worker.fleet.registry import Registry


@pytest.fixture
def registry() -> Registry:
    return billing_registry()


async def one(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    cur = await conn.execute(query, args)
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def available(conn: psycopg.AsyncConnection[Any], user: User, kind: str = "user") -> Decimal:
    return Decimal(
        await one(
            conn,
            "select coalesce(sum(credits_posted - debits_posted - debits_pending), 0) "
            "from credit_accounts where user_id = %s and kind = %s",
            user.id,
            kind,
        )
    )


async def deliver(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    *deliveries: payments.Delivery,
) -> list[str]:
    for d in deliveries:
        await payments.store(conn, d)
    return [r["outcome"] for r in await run_queued_jobs(conn, pool, registry, "billing.webhook")]


async def strategy_of(conn: psycopg.AsyncConnection[Any], provider: User, price: int) -> uuid.UUID:
    strategy = uuid.uuid4()
    await conn.execute(
        "insert into strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price) "
        "values (%s, %s, 'Pat Momentum', 'marketplace', true, true, %s)",
        (strategy, provider.id, price),
    )
    return strategy


async def paystack_paid(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    user: User,
    ref: str,
    credits: int,
) -> uuid.UUID:
    inv = uuid.uuid4()
    await conn.execute(
        "insert into invoices (id, user_id, provider, provider_invoice_id, amount, currency, credits) "
        "values (%s, %s, 'paystack', %s, %s, 'NGN', %s)",
        (inv, user.id, ref, credits, credits),
    )
    paid = payments.paystack(
        "charge.success",
        {
            "id": abs(hash(ref)) % 10**9,
            "reference": ref,
            "status": "success",
            "amount": credits * 100,
            "currency": "NGN",
            "channel": "card",
            "paid_at": "2026-11-22T10:00:00.000Z",
        },
    )
    assert await deliver(conn, pool, registry, paid) == ["applied"]
    return inv


async def subscribe(conn: psycopg.AsyncConnection[Any], user: User, strategy: uuid.UUID) -> None:
    async with request_as(conn, user) as cur:
        await cur.execute("select public.subscribe_to_strategy(%s)", (strategy,))


async def exposures(conn: psycopg.AsyncConnection[Any], inv: uuid.UUID) -> list[tuple[Any, ...]]:
    cur = await conn.execute(
        "select user_id, account_kind, reason, amount_due, amount_recovered, shortfall, status "
        "from credit_exposures where invoice_id = %s order by account_kind",
        (inv,),
    )
    return list(await cur.fetchall())


async def test_a_refunded_strategy_payment_claws_back_the_provider_share_and_the_fee(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    bob, pat = users["bob"], users["provider"]
    strategy = await strategy_of(conn, pat, 100)
    inv = await paystack_paid(conn, pool, registry, bob, "ref_strat_1", 100)
    await subscribe(conn, bob, strategy)
    assert await available(conn, bob) == 0
    assert await available(conn, pat, "provider_earnings") == Decimal(80)
    await audit_clean(conn)

    refund = payments.paystack(
        "refund.processed",
        {"id": 71, "transaction_reference": "ref_strat_1", "status": "processed"},
    )
    assert await deliver(conn, pool, registry, refund, refund) == ["applied"]

    assert await one(conn, "select status from invoices where id = %s", inv) == "refunded"
    # The provider's 80 and the platform's 20 went back where the credits came from.
    assert await available(conn, pat, "provider_earnings") == 0
    assert await available(conn, bob) == 0
    assert (
        await one(
            conn,
            "select status from strategy_subscriptions where strategy_id = %s and subscriber_id = %s",
            strategy,
            bob.id,
        )
        == "cancelled"
    )
    shares = await one(
        conn,
        "select string_agg((metadata ->> 'share') || '=' || amount::numeric(12, 2), ',' "
        "order by metadata ->> 'share') from credit_transfers "
        "where reference_type = 'invoice' and reference_id = %s and kind = 'refund'",
        str(inv),
    )
    assert shares == "platform=20.00,provider=80.00"
    assert await exposures(conn, inv) == []
    async with request_as(conn, pat) as cur:
        await cur.execute(
            "select entry, amount::numeric(12, 2) as amount, fee::numeric(12, 2) as fee "
            "from provider_statement order by created_at, entry"
        )
        statement = [(r["entry"], r["amount"], r["fee"]) for r in await cur.fetchall()]
    assert statement == [
        ("earning", Decimal("80.00"), Decimal("20.00")),
        ("clawback", Decimal("-80.00"), None),
    ]
    await audit_clean(conn)


async def test_what_nobody_can_give_back_is_an_exposure_and_the_ledger_stays_whole(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    bob, pat = users["bob"], users["provider"]
    strategy = await strategy_of(conn, pat, 100)
    inv = await paystack_paid(conn, pool, registry, bob, "ref_strat_2", 150)
    await subscribe(conn, bob, strategy)
    # Bob spends 30 more on usage; Pat has 60 of the 80 on its way out as a payout.
    await conn.execute(
        "select credit_create_transfer(gen_random_uuid(), "
        "(select id from credit_accounts where user_id = %s and kind = 'user'), "
        "(select id from credit_accounts where code = 'system:usage'), 30, 'usage')",
        (bob.id,),
    )
    await conn.execute("select credit_request_payout(60, null, %s)", (pat.id,))
    await audit_clean(conn)

    refund = payments.paystack(
        "refund.processed",
        {"id": 72, "transaction_reference": "ref_strat_2", "status": "processed"},
    )
    assert await deliver(conn, pool, registry, refund) == ["applied"]

    # Bob gave back his 20 and the platform its 20; Pat had 20 free of the 80.
    assert await available(conn, bob) == 0
    assert await available(conn, pat, "provider_earnings") == 0
    assert await exposures(conn, inv) == [
        (pat.id, "provider_earnings", "refund", Decimal(80), Decimal(20), Decimal(60), "open"),
        (bob.id, "user", "refund", Decimal(150), Decimal(120), Decimal(30), "open"),
    ]
    await audit_clean(conn)

    # Only admins see exposures; they settle them with a reason, on the audit log.
    async with request_as(conn, bob) as cur:
        await cur.execute("select count(*) as n from credit_exposures")
        assert (await cur.fetchone() or {})["n"] == 0
    async with request_as(conn, users["admin"]) as cur:
        await cur.execute(
            "select count(*) as n from credit_exposures where invoice_id = %s", (inv,)
        )
        assert (await cur.fetchone() or {})["n"] == 2
        await cur.execute(
            "select (admin_resolve_credit_exposure(id, 'written_off', 'customer unreachable')).status "
            "from credit_exposures where invoice_id = %s and account_kind = 'user'",
            (inv,),
        )
        assert (await cur.fetchone() or {})["status"] == "written_off"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, bob) as cur:
            await cur.execute(
                "select admin_resolve_credit_exposure(%s, 'settled', 'mine')", (uuid.uuid4(),)
            )


async def test_a_lost_stripe_dispute_reverses_the_invoice_as_a_chargeback(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    inv = uuid.uuid4()
    await conn.execute(
        "insert into invoices (id, user_id, provider, provider_invoice_id, amount, credits) "
        "values (%s, %s, 'stripe', 'cs_dispute', 29, 500)",
        (inv, alice.id),
    )
    paid = payments.stripe(
        "evt_cb_paid",
        "checkout.session.completed",
        {
            "id": "cs_dispute",
            "object": "checkout.session",
            "payment_status": "paid",
            "amount_total": 2900,
            "currency": "usd",
            "payment_intent": "pi_dispute",
            "metadata": {"invoice_id": str(inv)},
        },
    )
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "amount": 2900,
        "currency": "usd",
        "charge": "ch_dispute",
        "payment_intent": "pi_dispute",
        "reason": "fraudulent",
    }
    opened = payments.stripe(
        "evt_cb_open", "charge.dispute.created", {**dispute, "status": "needs_response"}
    )
    lost = payments.stripe("evt_cb_lost", "charge.dispute.closed", {**dispute, "status": "lost"})
    # The decision may come before the payment's own event: it waits for it.
    assert await deliver(conn, pool, registry, opened, lost) == ["ignored", "waiting"]
    assert await deliver(conn, pool, registry, paid) == ["applied", "applied"]
    assert await deliver(conn, pool, registry, lost) == []  # a re-delivery is stored once
    assert await one(conn, "select status from invoices where id = %s", inv) == "refunded"
    assert await available(conn, alice) == 0
    assert (
        await one(
            conn,
            "select title from notifications where user_id = %s and data ->> 'status' = 'refunded'",
            alice.id,
        )
        == "Payment charged back"
    )
    await audit_clean(conn)


async def test_a_paystack_dispute_accepted_by_the_merchant_is_a_chargeback_and_a_declined_one_nothing(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    bob = users["bob"]
    inv = await paystack_paid(conn, pool, registry, bob, "ref_dispute", 40)
    await conn.execute(
        "select credit_create_transfer(gen_random_uuid(), "
        "(select id from credit_accounts where user_id = %s and kind = 'user'), "
        "(select id from credit_accounts where code = 'system:usage'), 15, 'usage')",
        (bob.id,),
    )

    def resolved(dispute_id: int, resolution: str) -> payments.Delivery:
        return payments.paystack(
            "charge.dispute.resolve",
            {
                "id": dispute_id,
                "refund_amount": 4000,
                "currency": "NGN",
                "status": "resolved",
                "resolution": resolution,
                "domain": "test",
                "transaction": {"id": 1, "reference": "ref_dispute", "amount": 4000},
            },
        )

    assert await deliver(conn, pool, registry, resolved(5, "declined")) == ["ignored"]
    assert await one(conn, "select status from invoices where id = %s", inv) == "paid"
    assert await deliver(conn, pool, registry, resolved(6, "merchant-accepted")) == ["applied"]
    assert await one(conn, "select status from invoices where id = %s", inv) == "refunded"
    assert await exposures(conn, inv) == [
        (bob.id, "user", "chargeback", Decimal(40), Decimal(25), Decimal(15), "open")
    ]
    await audit_clean(conn)


async def refunded(conn: psycopg.AsyncConnection[Any], inv: uuid.UUID) -> tuple[Any, ...]:
    cur = await conn.execute(
        "select status, amount_refunded, credits_refunded, "
        "(select coalesce(sum(amount), 0) from credit_transfers "
        "  where reference_type = 'invoice' and reference_id = %s::text and kind = 'refund') "
        "from invoices where id = %s",
        (inv, inv),
    )
    row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def test_paystack_partial_refunds_claw_back_in_proportion_and_add_up_exactly(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    bob = users["bob"]
    inv = uuid.uuid4()
    await conn.execute(
        "insert into invoices (id, user_id, provider, provider_invoice_id, amount, currency, credits) "
        "values (%s, %s, 'paystack', 'ref_part', 30, 'NGN', 100)",
        (inv, bob.id),
    )
    paid = payments.paystack(
        "charge.success",
        {
            "id": 9001,
            "reference": "ref_part",
            "status": "success",
            "amount": 3000,
            "currency": "NGN",
            "paid_at": "2026-11-22T10:00:00.000Z",
        },
    )
    assert await deliver(conn, pool, registry, paid) == ["applied"]
    assert await available(conn, bob) == 100

    def refund(refund_id: int, kobo: int) -> payments.Delivery:
        return payments.paystack(
            "refund.processed",
            {
                "id": refund_id,
                "transaction_reference": "ref_part",
                "status": "processed",
                "amount": kobo,
                "currency": "NGN",
            },
        )

    # 10 of 30 NGN back: a third of the credits, exact to the ledger's 8 places.
    assert await deliver(conn, pool, registry, refund(81, 1000), refund(81, 1000)) == ["applied"]
    assert await refunded(conn, inv) == (
        "partially_refunded",
        Decimal(10),
        Decimal("33.33333333"),
        Decimal("33.33333333"),
    )
    assert await available(conn, bob) == Decimal("66.66666667")
    await audit_clean(conn)

    # A second refund adds up; the first delivered again changes nothing.
    assert await deliver(conn, pool, registry, refund(82, 1000)) == ["applied"]
    assert await one(conn, "select billing_apply_refund(%s, '81', 10, false)", inv) == "unchanged"
    assert await refunded(conn, inv) == (
        "partially_refunded",
        Decimal(20),
        Decimal("66.66666666"),
        Decimal("66.66666666"),
    )
    await audit_clean(conn)

    # The last 10 refund the payment in full: only the rest comes back, 100 in all.
    assert await deliver(conn, pool, registry, refund(83, 1000)) == ["applied"]
    assert await refunded(conn, inv) == ("refunded", Decimal(30), Decimal(100), Decimal(100))
    assert await available(conn, bob) == 0
    assert (
        await one(
            conn,
            "select string_agg(title, ',' order by created_at, title) from notifications "
            "where user_id = %s and data ->> 'invoice_id' = %s::text",
            bob.id,
            inv,
        )
        == "Payment received,Payment partly refunded,Payment partly refunded,Payment refunded"
    )
    assert await exposures(conn, inv) == []
    await audit_clean(conn)


async def test_stripe_partial_refunds_count_the_charge_total_in_any_order(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice, pat = users["alice"], users["provider"]
    strategy = await strategy_of(conn, pat, 100)
    inv = uuid.uuid4()
    await conn.execute(
        "insert into invoices (id, user_id, provider, provider_invoice_id, amount, credits) "
        "values (%s, %s, 'stripe', 'cs_part', 29, 500)",
        (inv, alice.id),
    )
    paid = payments.stripe(
        "evt_part_paid",
        "checkout.session.completed",
        {
            "id": "cs_part",
            "object": "checkout.session",
            "payment_status": "paid",
            "amount_total": 2900,
            "currency": "usd",
            "payment_intent": "pi_part",
            "metadata": {"invoice_id": str(inv)},
        },
    )

    def charge(event_id: str, refunded_cents: int) -> payments.Delivery:
        return payments.stripe(
            event_id,
            "charge.refunded",
            {
                "id": "ch_part",
                "object": "charge",
                "amount": 2900,
                "currency": "usd",
                "amount_refunded": refunded_cents,
                "refunded": refunded_cents == 2900,
                "payment_intent": "pi_part",
            },
        )

    # The second partial refund (20 of 29 USD so far) comes first, before the payment.
    assert await deliver(conn, pool, registry, charge("evt_part_r2", 2000)) == ["waiting"]
    assert await deliver(conn, pool, registry, paid) == ["applied", "applied"]
    await subscribe(conn, alice, strategy)  # 100 of what is left go to a strategy
    # 500 * 20 / 29 credits were taken back; the late first refund (10 so far) is no news.
    assert await deliver(conn, pool, registry, charge("evt_part_r1", 1000)) == ["unchanged"]
    assert await refunded(conn, inv) == (
        "partially_refunded",
        Decimal(20),
        Decimal("344.82758620"),
        Decimal("344.82758620"),
    )
    assert await available(conn, alice) == Decimal("55.17241380")
    await audit_clean(conn)

    # The full refund takes the rest from the strategy payment: the provider's and the
    # platform's shares of what Alice no longer has.
    assert await deliver(conn, pool, registry, charge("evt_part_r3", 2900)) == ["applied"]
    assert await refunded(conn, inv) == ("refunded", Decimal(29), Decimal(500), Decimal(500))
    assert await available(conn, alice) == 0
    assert await exposures(conn, inv) == []
    await audit_clean(conn)
