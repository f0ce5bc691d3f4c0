"""Money in and out, one chain per provider, on the real database with the providers' APIs
faked by respx: checkout -> webhook -> invoice paid -> plan active -> credits granted ->
renewal -> failed renewal -> dunning -> recovery (Paystack) or downgrade (Stripe, Tripay)
-> refund -> clawback, then, for the providers that pay out (Paystack, Stripe), a strategy
payment -> payout request -> transfer -> webhook -> hold posted. Every webhook is delivered
twice and out of order, and ``credit_audit()`` is clean after every step."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest
import respx
from psycopg_pool import AsyncConnectionPool

from tests.support import payments
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
    earnings,
    one,
    paystack_charge_answer,
    paystack_success,
    period_ends,
    plan,
    running_bots,
    stripe_event,
)
from tests.support.db import User, request_as
from tests.support.fleet import run_queued_jobs
from worker.billing import renew
from worker.fleet.registry import Registry

STRIPE = "https://stripe.test"
PAYSTACK = "https://paystack.test"


@pytest.fixture
def registry() -> Registry:
    return billing_registry(SETTINGS, httpx.AsyncClient())


async def run(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, reg: Registry
) -> list[str]:
    return [str(r["outcome"]) for r in await run_queued_jobs(conn, pool, reg, "billing.")]


async def renewal_run(pool: AsyncConnectionPool) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        return await renew(pool, http, SETTINGS)


async def status(conn: psycopg.AsyncConnection[Any], table: str, row_id: Any) -> str:
    return str(await one(conn, f"select status from {table} where id = %s", row_id))


async def subscribe_to_strategy(
    conn: psycopg.AsyncConnection[Any], subscriber: User, provider: User, price: int
) -> None:
    strategy = uuid.uuid4()
    await conn.execute(
        "insert into strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)"
        " values (%s, %s, 'Pat Momentum', 'marketplace', true, true, %s)",
        (strategy, provider.id, price),
    )
    async with request_as(conn, subscriber) as cur:
        await cur.execute("select public.subscribe_to_strategy(%s)", (strategy,))


async def request_payout(conn: psycopg.AsyncConnection[Any], user: User, amount: int) -> Any:
    async with request_as(conn, user) as cur:
        await cur.execute("select id, status from request_payout(%s, %s)", (amount, uuid.uuid4()))
        row = await cur.fetchone()
    assert row is not None and row["status"] == "approved"
    return row["id"]


async def send_payouts(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, reg: Registry
) -> Any:
    await conn.execute("select enqueue_job('billing.payouts', '{}')")
    (result,) = await run_queued_jobs(conn, pool, reg, "billing.payouts")
    return dict(result)


def paystack_event(event: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    delivery = payments.paystack(event, data)
    return delivery.event_id, {"event": event, "data": data}


async def test_paystack_chain_from_checkout_to_a_paid_out_provider(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice, pat = users["alice"], users["provider"]
    gold = await plan(conn, "Gold chain", "5000", "NGN")
    pack = await one(
        conn,
        "insert into credit_packs (name, credits, price, currency)"
        " values ('NGN chain pack', 300, 2000, 'NGN') returning id",
    )
    # Checkout -> webhook -> paid -> plan active -> credits: the pack's payment first.
    plan_inv = await checkout(conn, alice, "paystack", None, plan_id=gold)
    pack_inv = await checkout(conn, alice, "paystack", None, pack_id=pack)
    await deliver(
        conn,
        "paystack",
        [
            paystack_success("chain_ps_2", str(pack_inv), pack_inv, 200000),
            paystack_success("chain_ps_1", str(plan_inv), plan_inv, 500000),
        ],
    )
    assert await run(conn, pool, registry) == ["applied", "applied"]
    assert (await status(conn, "invoices", plan_inv), await current_plan(conn, alice)) == (
        "paid",
        "Gold chain",
    )
    assert await balance(conn, alice) == 1300
    await audit_clean(conn)
    await running_bots(conn, alice, 3)

    # Renewal: the saved card is charged at the period's end.
    await period_ends(conn, alice, "1 minute")
    with respx.mock() as mock:
        mock.post(f"{PAYSTACK}/transaction/charge_authorization").mock(
            side_effect=lambda r: paystack_charge_answer(r, "success", "Approved")
        )
        assert (await renewal_run(pool))["paid"] == 1
    assert await balance(conn, alice) == 2300
    await audit_clean(conn)

    # Failed renewal -> dunning -> recovery on the retry.
    await period_ends(conn, alice, "1 minute")
    with respx.mock() as mock:
        mock.post(f"{PAYSTACK}/transaction/charge_authorization").mock(
            side_effect=lambda r: paystack_charge_answer(r, "failed", "Insufficient Funds")
        )
        assert (await renewal_run(pool))["failed"] == 1
    sub = await current(conn, alice)
    assert sub["past_due_since"] is not None and await current_plan(conn, alice) == "Gold chain"
    await audit_clean(conn)
    await days_pass(conn, alice, 1.01)
    with respx.mock() as mock:
        mock.post(f"{PAYSTACK}/transaction/charge_authorization").mock(
            side_effect=lambda r: paystack_charge_answer(r, "success", "Approved")
        )
        assert (await renewal_run(pool))["paid"] == 1
    sub = await current(conn, alice)
    assert sub["past_due_since"] is None and await balance(conn, alice) == 3300
    assert [s for s, _ in await bots_by_status(conn, alice)] == ["running"] * 3
    await audit_clean(conn)

    # Refund -> clawback: the pack refunded in two parts, the whole refund first.
    part = paystack_event(
        "refund.processed",
        {
            "id": 8101,
            "transaction_reference": str(pack_inv),
            "amount": 50000,
            "currency": "NGN",
            "status": "processed",
        },
    )
    rest = paystack_event(
        "refund.processed",
        {
            "id": 8102,
            "transaction_reference": str(pack_inv),
            "amount": 150000,
            "currency": "NGN",
            "status": "processed",
        },
    )
    await deliver(conn, "paystack", [rest])
    assert await run(conn, pool, registry) == ["applied"]
    assert await status(conn, "invoices", pack_inv) == "partially_refunded"
    assert await balance(conn, alice) == 3300 - 225
    await audit_clean(conn)
    await deliver(conn, "paystack", [part])
    assert await run(conn, pool, registry) == ["applied"]
    assert await status(conn, "invoices", pack_inv) == "refunded"
    assert await balance(conn, alice) == 3000  # exactly the 300 bought, in two parts
    assert await current_plan(conn, alice) == "Gold chain"
    await audit_clean(conn)

    # Strategy payment -> payout request -> transfer -> webhook -> hold posted.
    await subscribe_to_strategy(conn, alice, pat, 100)
    assert await earnings(conn, pat) == (80, 80)
    with respx.mock() as mock:
        mock.get(f"{PAYSTACK}/bank/resolve").mock(
            return_value=httpx.Response(
                200,
                json={
                    "status": True,
                    "message": "Account number resolved",
                    "data": {"account_number": "0001234567", "account_name": "PAT", "bank_id": 9},
                },
            )
        )
        mock.post(f"{PAYSTACK}/transferrecipient").mock(
            return_value=httpx.Response(
                201, json={"status": True, "data": {"recipient_code": "RCP_chain", "type": "nuban"}}
            )
        )
        async with request_as(conn, pat) as cur:
            await cur.execute(
                "select status from connect_payout_destination('paystack', 'NGN', '058', '0001234567')"
            )
        assert await run(conn, pool, registry) == ["ready"]
        payout = await request_payout(conn, pat, 60)
        assert await earnings(conn, pat) == (80, 20)
        await audit_clean(conn)
        mock.post(f"{PAYSTACK}/transfer").mock(
            return_value=httpx.Response(
                200,
                json={
                    "status": True,
                    "message": "Transfer has been queued",
                    "data": {
                        "reference": str(payout),
                        "status": "pending",
                        "transfer_code": "TRF_chain",
                    },
                },
            )
        )
        assert (await send_payouts(conn, pool, registry))["sent"] == 1
    assert await status(conn, "payouts", payout) == "sent"

    def transfer(event: str, event_id: int) -> tuple[str, dict[str, Any]]:
        return paystack_event(
            event,
            {
                "id": event_id,
                "amount": 6000,
                "currency": "NGN",
                "reference": str(payout),
                "status": event.split(".")[1],
                "transfer_code": "TRF_chain",
            },
        )

    # The success, twice, and a stale failure before it is applied: posted once.
    await deliver(conn, "paystack", [transfer("transfer.success", 8201)])
    assert await run(conn, pool, registry) == ["applied"]
    await deliver(conn, "paystack", [transfer("transfer.failed", 8200)])
    assert await run(conn, pool, registry) == ["unchanged"]
    assert await status(conn, "payouts", payout) == "paid"
    assert await earnings(conn, pat) == (20, 20)
    await audit_clean(conn)


async def test_stripe_chain_from_checkout_to_a_paid_out_provider(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice, pat = users["alice"], users["provider"]
    pro = await plan(conn, "Pro chain", "29", "USD", monthly_credits=2000)
    inv = await checkout(conn, alice, "stripe", "cs_chain", plan_id=pro)
    meta = {"user_id": str(alice.id), "plan_id": str(pro)}
    parent = {"subscription_details": {"subscription": "sub_chain", "metadata": meta}}
    first = stripe_event(
        "evt_chain_in1",
        "invoice.paid",
        {
            "id": "in_chain_1",
            "object": "invoice",
            "billing_reason": "subscription_create",
            "amount_paid": 2900,
            "currency": "usd",
            "customer": "cus_chain",
            "parent": parent,
        },
    )
    completed = stripe_event(
        "evt_chain_cs",
        "checkout.session.completed",
        {
            "id": "cs_chain",
            "object": "checkout.session",
            "mode": "subscription",
            "payment_status": "paid",
            "amount_total": 2900,
            "currency": "usd",
            "customer": "cus_chain",
            "subscription": "sub_chain",
            "invoice": "in_chain_1",
            "metadata": {"invoice_id": str(inv), **meta},
        },
    )
    # Checkout -> webhooks (the invoice before its checkout, each twice) -> paid -> credits.
    await deliver(conn, "stripe", [first, completed])
    assert (await run(conn, pool, registry)).count("applied") == 1
    assert (await status(conn, "invoices", inv), await current_plan(conn, alice)) == (
        "paid",
        "Pro chain",
    )
    assert await balance(conn, alice) == 2000
    await audit_clean(conn)
    await running_bots(conn, alice, 3)

    # Renewal billed by Stripe.
    cycle = {
        "object": "invoice",
        "billing_reason": "subscription_cycle",
        "currency": "usd",
        "customer": "cus_chain",
        "parent": parent,
    }
    await period_ends(conn, alice, "1 minute")
    await renewal_run(pool)
    await deliver(
        conn,
        "stripe",
        [
            stripe_event(
                "evt_chain_in2", "invoice.paid", {"id": "in_chain_2", "amount_paid": 2900, **cycle}
            )
        ],
    )
    assert await run(conn, pool, registry) == ["applied"]
    assert await balance(conn, alice) == 4000
    await audit_clean(conn)

    # A credit pack paid once, then its charge refunded in two parts (the later total first).
    pack_inv = uuid.uuid4()
    await conn.execute(
        "insert into invoices (id, user_id, provider, provider_invoice_id, amount, currency, credits)"
        " values (%s, %s, 'stripe', 'cs_chain_pack', 10, 'USD', 1000)",
        (pack_inv, alice.id),
    )
    paid_pack = stripe_event(
        "evt_chain_pack",
        "checkout.session.completed",
        {
            "id": "cs_chain_pack",
            "object": "checkout.session",
            "mode": "payment",
            "payment_status": "paid",
            "amount_total": 1000,
            "currency": "usd",
            "payment_intent": "pi_chain_pack",
            "metadata": {"invoice_id": str(pack_inv)},
        },
    )

    def refunded(event_id: str, cents: int) -> tuple[str, dict[str, Any]]:
        return stripe_event(
            event_id,
            "charge.refunded",
            {
                "id": "ch_chain_pack",
                "object": "charge",
                "amount": 1000,
                "currency": "usd",
                "amount_refunded": cents,
                "refunded": cents == 1000,
                "payment_intent": "pi_chain_pack",
            },
        )

    await deliver(
        conn, "stripe", [refunded("evt_chain_r2", 1000), paid_pack, refunded("evt_chain_r1", 400)]
    )
    # The whole refund waits for the payment; woken after the partial one, it takes the rest.
    outcomes = await run(conn, pool, registry)
    assert "waiting" in outcomes and "ignored" not in outcomes
    assert await one(conn, "select credits_refunded from invoices where id = %s", pack_inv) == 1000
    assert await status(conn, "invoices", pack_inv) == "refunded"
    assert await balance(conn, alice) == 4000  # the 1000 bought came back once, exactly
    await audit_clean(conn)

    # Failed renewal -> dunning -> Stripe deletes the subscription: downgrade to Free.
    await period_ends(conn, alice, "1 minute")
    await renewal_run(pool)
    failed = stripe_event(
        "evt_chain_in3_failed",
        "invoice.payment_failed",
        {
            "id": "in_chain_3",
            "amount_due": 2900,
            "next_payment_attempt": int(time.time()) + 86400,
            **cycle,
        },
    )
    deleted = stripe_event(
        "evt_chain_deleted",
        "customer.subscription.deleted",
        {
            "id": "sub_chain",
            "object": "subscription",
            "status": "canceled",
            "cancellation_details": {"reason": "payment_failed"},
        },
    )
    await deliver(conn, "stripe", [failed])
    assert await run(conn, pool, registry) == ["applied"]
    assert (await current(conn, alice))["past_due_since"] is not None
    await audit_clean(conn)
    await deliver(conn, "stripe", [deleted])
    assert await run(conn, pool, registry) == ["applied"]
    assert await current_plan(conn, alice) == "Free"
    assert [s for s, _ in await bots_by_status(conn, alice)] == ["paused", "running", "running"]
    await audit_clean(conn)

    # Strategy payment -> payout request -> transfer -> webhook -> hold posted.
    await subscribe_to_strategy(conn, alice, pat, 100)
    assert await earnings(conn, pat) == (80, 80)
    await conn.execute(
        "insert into payout_destinations (user_id, provider, status, currency, stripe_account_id)"
        " values (%s, 'stripe', 'ready', 'USD', 'acct_chain')",
        (pat.id,),
    )
    payout = await request_payout(conn, pat, 70)
    assert await earnings(conn, pat) == (80, 10)
    await audit_clean(conn)
    obj = {
        "id": "tr_chain",
        "object": "transfer",
        "amount": 7000,
        "currency": "usd",
        "destination": "acct_chain",
        "reversed": False,
        "metadata": {"payout_id": str(payout)},
    }
    with respx.mock() as mock:
        mock.post(f"{STRIPE}/v1/transfers").mock(return_value=httpx.Response(200, json=obj))
        assert (await send_payouts(conn, pool, registry))["sent"] == 1
    created = stripe_event("evt_chain_tr", "transfer.created", obj)
    await deliver(conn, "stripe", [created])
    assert await run(conn, pool, registry) == ["applied"]
    assert await status(conn, "payouts", payout) == "paid"
    assert await earnings(conn, pat) == (10, 10)
    await audit_clean(conn)


def tripay(
    invoice_id: uuid.UUID, reference: str, state: str, amount: int
) -> tuple[str, dict[str, Any]]:
    return f"{reference}:{state}", {
        "reference": reference,
        "merchant_ref": str(invoice_id),
        "payment_method": "BRI Virtual Account",
        "payment_method_code": "BRIVA",
        "total_amount": amount,
        "status": state,
        "paid_at": int(time.time()) if state == "PAID" else None,
    }


def tripay_link(reference: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "success": True,
            "message": "",
            "data": {
                "reference": reference,
                "checkout_url": f"https://tripay.co.id/checkout/{reference}",
                "status": "UNPAID",
            },
        },
    )


async def test_tripay_chain_from_checkout_to_a_clawed_back_strategy_payment(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    """Tripay pays in and never out (payouts go through Stripe or Paystack): its chain ends
    with the refund of credits already spent on a strategy, clawed back from the provider."""
    bob, pat = users["bob"], users["provider"]
    silver = await plan(conn, "Silver chain", "150000", "IDR", monthly_credits=500)
    inv = await checkout(conn, bob, "tripay", "T0001CH1", plan_id=silver)
    # Checkout -> callback (twice, a stale EXPIRED after the payment) -> plan -> credits.
    await deliver(
        conn,
        "tripay",
        [tripay(inv, "T0001CH1", "PAID", 150000), tripay(inv, "T0001CH1", "EXPIRED", 150000)],
    )
    assert await run(conn, pool, registry) == ["applied", "unchanged"]
    assert (await current_plan(conn, bob), await balance(conn, bob)) == ("Silver chain", 500)
    await audit_clean(conn)
    await running_bots(conn, bob, 3)

    # Renewal: a link ahead of the period's end, paid by callback (twice).
    await conn.execute(
        "update subscriptions set expires_at = now() + interval '2 days',"
        " started_at = now() + interval '2 days' - interval '1 month' where user_id = %s and status = 'active'",
        (bob.id,),
    )
    with respx.mock() as mock:
        mock.post("https://tripay.test/api/transaction/create").mock(
            return_value=tripay_link("T0001CH2")
        )
        assert (await renewal_run(pool))["link"] == 1
    renewal = await one(
        conn, "select id from invoices where subscription_id is not null and user_id = %s", bob.id
    )
    await days_pass(conn, bob, 2.1)  # paid in the grace period, the new month begun
    await deliver(conn, "tripay", [tripay(renewal, "T0001CH2", "PAID", 150000)])
    assert await run(conn, pool, registry) == ["applied"]
    assert await balance(conn, bob) == 1000
    await audit_clean(conn)

    # A credit pack, its credits spent on Pat's strategy.
    pack = await one(
        conn,
        "insert into credit_packs (name, credits, price, currency) values ('IDR chain pack', 200, 50000, 'IDR')"
        " returning id",
    )
    pack_inv = await checkout(conn, bob, "tripay", "T0001CH3", pack_id=pack)
    await deliver(conn, "tripay", [tripay(pack_inv, "T0001CH3", "PAID", 50000)])
    assert await run(conn, pool, registry) == ["applied"]
    await conn.execute(
        "select credit_create_transfer(gen_random_uuid(), (select id from credit_accounts where user_id = %s"
        " and kind = 'user'), (select id from credit_accounts where code = 'system:usage'), 1000, 'usage')",
        (bob.id,),
    )
    await subscribe_to_strategy(conn, bob, pat, 150)
    assert (await balance(conn, bob), await earnings(conn, pat)) == (50, (120, 120))
    await audit_clean(conn)

    # Failed renewal: the next link is never paid; dunning through the grace period, then Free.
    await conn.execute(
        "update subscriptions set expires_at = now() + interval '2 days',"
        " started_at = now() + interval '2 days' - interval '1 month' where user_id = %s and status = 'active'",
        (bob.id,),
    )
    with respx.mock() as mock:
        mock.post("https://tripay.test/api/transaction/create").mock(
            return_value=tripay_link("T0001CH4")
        )
        assert (await renewal_run(pool))["link"] == 1
    await days_pass(conn, bob, 3)
    assert await current_plan(conn, bob) == "Silver chain"  # kept in the grace period
    await days_pass(conn, bob, 7)
    await conn.execute("select enqueue_job('billing.sweep')")
    await run_queued_jobs(conn, pool, registry, "billing.")
    assert await current_plan(conn, bob) == "Free"
    assert [s for s, _ in await bots_by_status(conn, bob)] == ["paused", "running", "running"]
    await audit_clean(conn)

    # Refund of the pack (twice): 50 from Bob, the rest from the strategy payment: 120 of
    # Pat's earnings and 30 of the platform's fee.
    await deliver(conn, "tripay", [tripay(pack_inv, "T0001CH3", "REFUND", 50000)])
    assert await run(conn, pool, registry) == ["applied"]
    assert await status(conn, "invoices", pack_inv) == "refunded"
    assert (await balance(conn, bob), await earnings(conn, pat)) == (0, (0, 0))
    shares = await one(
        conn,
        "select string_agg(coalesce(metadata ->> 'share', 'user') || '=' || amount::numeric(12, 2), ','"
        " order by metadata ->> 'share' nulls first) from credit_transfers"
        " where reference_type = 'invoice' and reference_id = %s and kind = 'refund'",
        str(pack_inv),
    )
    assert shares == "user=50.00,platform=30.00,provider=120.00"
    await audit_clean(conn)
