"""What the billing tests share: checkouts as billing-checkout opens them, webhooks as the
Edge Functions store them, time passing for one subscription, and the ledger's audit."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from tests.support.db import User
from worker.billing import BillingSettings, register
from worker.fleet.registry import Registry

SETTINGS = BillingSettings(
    stripe_secret_key="sk_test_fake",
    stripe_api_url="https://stripe.test",
    paystack_secret_key="sk_test_paystack",
    paystack_api_url="https://paystack.test",
    tripay_api_key="tripay-api-key",
    tripay_private_key="tripay-private",
    tripay_merchant_code="T0001",
    tripay_api_url="https://tripay.test/api",
)


async def one(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    cur = await conn.execute(query, args)
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def plan(
    conn: psycopg.AsyncConnection[Any],
    name: str,
    price: str,
    currency: str,
    *,
    monthly_credits: int = 1000,
    trial_days: int = 0,
) -> uuid.UUID:
    plan_id = uuid.uuid4()
    await conn.execute(
        "insert into plans (id, name, price_monthly, currency, max_bots, max_strategies, features,"
        " trial_days) values (%s, %s, %s, %s, 10, 10, %s, %s)",
        (
            plan_id,
            name,
            price,
            currency,
            json.dumps({"monthly_credits": monthly_credits}),
            trial_days,
        ),
    )
    return plan_id


async def checkout(
    conn: psycopg.AsyncConnection[Any],
    user: User,
    provider: str,
    reference: str | None,
    *,
    plan_id: uuid.UUID | None = None,
    pack_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """What billing-checkout does around the provider's call: open the invoice, record the
    payment URL and the provider's reference (Paystack's is our invoice id)."""
    opened = await one(
        conn,
        "select public.billing_checkout_open(%s, %s, %s, %s)",
        user.id,
        provider,
        plan_id,
        pack_id,
    )
    invoice_id = uuid.UUID(opened["id"])
    ref = reference or str(invoice_id)
    await conn.execute(
        "select public.billing_checkout_started(%s, %s, %s, %s)",
        (invoice_id, f"https://pay.test/{ref}", ref, [ref]),
    )
    return invoice_id


async def deliver(
    conn: psycopg.AsyncConnection[Any], provider: str, events: list[tuple[str, dict[str, Any]]]
) -> None:
    """Store each event twice, as a provider's retry would (the second is a duplicate)."""
    for event_id, payload in [*events, *events]:
        event_type = payload.get("type") or payload.get("event") or payload.get("status")
        await conn.execute(
            "insert into webhook_events (provider, event_id, event_type, payload)"
            " values (%s, %s, %s, %s)",
            (provider, event_id, event_type, json.dumps(payload)),
        )


def stripe_event(event_id: str, type_: str, obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return event_id, {
        "id": event_id,
        "object": "event",
        "type": type_,
        "created": int(time.time()),
        "data": {"object": obj},
    }


async def balance(conn: psycopg.AsyncConnection[Any], user: User) -> Decimal:
    return Decimal(
        await one(
            conn,
            "select balance from credit_accounts where user_id = %s and kind = 'user'",
            user.id,
        )
    )


async def audit_clean(conn: psycopg.AsyncConnection[Any]) -> None:
    cur = await conn.execute("select rule, account_id, detail from credit_audit()")
    assert await cur.fetchall() == []


async def earnings(conn: psycopg.AsyncConnection[Any], user: User) -> tuple[Decimal, Decimal]:
    """(posted balance, available) of the provider's earnings."""
    cur = await conn.execute(
        "select credits_posted - debits_posted, credits_posted - debits_posted - debits_pending"
        " from credit_accounts where user_id = %s and kind = 'provider_earnings'",
        (user.id,),
    )
    row = await cur.fetchone()
    return (Decimal(row[0]), Decimal(row[1])) if row else (Decimal(0), Decimal(0))


def billing_registry(
    settings: BillingSettings | None = None, http: httpx.AsyncClient | None = None
) -> Registry:
    """A registry with the billing jobs, as the fleet registers them."""
    reg = Registry()
    register(reg, settings or BillingSettings(), http)
    return reg


async def current(conn: psycopg.AsyncConnection[Any], user: User) -> dict[str, Any]:
    """The user's current subscription, with its plan's name."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select p.name as plan, s.* from subscriptions s join plans p on p.id = s.plan_id"
            " where s.user_id = %s and s.status in ('active', 'trial')",
            (user.id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def current_plan(conn: psycopg.AsyncConnection[Any], user: User) -> str:
    return str(await one(conn, "select (private.current_plan(%s)).name", user.id))


async def period_ends(conn: psycopg.AsyncConnection[Any], user: User, ago: str) -> None:
    """Time passes: the user's paid period ends ``ago`` (e.g. '1 minute'), a month after it
    started, and everything dated in it moves back with it."""
    sub = await current(conn, user)
    await conn.execute(
        "update subscriptions set expires_at = now() - %s::interval,"
        " started_at = started_at - (expires_at - (now() - %s::interval)) where id = %s",
        (ago, ago, sub["id"]),
    )


async def days_pass(conn: psycopg.AsyncConnection[Any], user: User, days: float) -> None:
    """``days`` pass for the user's current subscription and its renewal invoices."""
    shift = f"{days} days"
    sub = await current(conn, user)
    await conn.execute(
        "update subscriptions set started_at = started_at - %(d)s::interval,"
        " expires_at = expires_at - %(d)s::interval,"
        " renewal_due_at = renewal_due_at - %(d)s::interval, grace_until = grace_until - %(d)s::interval,"
        " past_due_since = past_due_since - %(d)s::interval,"
        " next_renewal_attempt_at = next_renewal_attempt_at - %(d)s::interval where id = %(id)s",
        {"d": shift, "id": sub["id"]},
    )
    await conn.execute(
        "update invoices set expired_at = expired_at - %(d)s::interval where subscription_id = %(id)s",
        {"d": shift, "id": sub["id"]},
    )


async def running_bots(conn: psycopg.AsyncConnection[Any], user: User, n: int) -> None:
    await conn.execute("set session_replication_role = replica")  # past the plan-limit trigger
    try:
        await conn.execute(
            "insert into bots (user_id, name, exchange, trading_pair, timeframe, strategy,"
            " initial_balance, current_balance, stake_amount, status, created_at)"
            " select %s, 'bot ' || g, 'binance', 'ETH/BTC', '5m', 'sma_cross', 1, 1, 0.1, 'running',"
            " now() - make_interval(mins => 10 - g) from generate_series(1, %s) g",
            (user.id, n),
        )
    finally:
        await conn.execute("set session_replication_role = origin")


async def bots_by_status(conn: psycopg.AsyncConnection[Any], user: User) -> list[tuple[str, str]]:
    cur = await conn.execute(
        "select status, coalesce(status_reason, '') from bots where user_id = %s order by created_at",
        (user.id,),
    )
    return [(r[0], r[1]) for r in await cur.fetchall()]


async def titles(conn: psycopg.AsyncConnection[Any], user: User) -> list[str]:
    cur = await conn.execute(
        "select title from notifications where user_id = %s order by created_at, title", (user.id,)
    )
    return [r[0] for r in await cur.fetchall()]


async def notes(conn: psycopg.AsyncConnection[Any], user: User, title: str) -> list[str]:
    cur = await conn.execute(
        "select body from notifications where user_id = %s and title = %s order by created_at",
        (user.id, title),
    )
    return [r[0] for r in await cur.fetchall()]


def paystack_charge_answer(request: httpx.Request, status: str, reason: str) -> httpx.Response:
    """Paystack's answer to charge_authorization (https://paystack.com/docs/api/transaction)."""
    sent = json.loads(request.content)
    assert request.headers["authorization"] == "Bearer sk_test_paystack"
    return httpx.Response(
        200,
        json={
            "status": True,
            "message": "Charge attempted",
            "data": {
                "amount": int(sent["amount"]),
                "currency": sent["currency"],
                "paid_at": "2026-12-07T02:00:00.000Z" if status == "success" else None,
                "reference": sent["reference"],
                "status": status,
                "gateway_response": reason,
                "channel": "card",
            },
        },
    )


def paystack_success(
    event_id: str, reference: str, invoice_id: uuid.UUID, kobo: int
) -> tuple[str, dict[str, Any]]:
    return event_id, {
        "event": "charge.success",
        "data": {
            "id": int(hashlib.sha1(event_id.encode()).hexdigest()[:8], 16),
            "reference": reference,
            "amount": kobo,
            "currency": "NGN",
            "status": "success",
            "paid_at": "2026-12-07T01:00:00.000Z",
            "channel": "card",
            "metadata": {"invoice_id": str(invoice_id)},
            "authorization": {
                "authorization_code": "AUTH_alice",
                "reusable": True,
                "card_type": "visa",
                "last4": "4081",
            },
            "customer": {"email": "alice@test.local", "customer_code": "CUS_alice"},
        },
    }
