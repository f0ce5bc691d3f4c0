"""Renewals, dunning and reminders run by the fleet; the provider events that drive
Stripe's own renewals; the payment methods the providers tell us about.

The rules live in SQL (``public.billing_renewals_due``, ``billing_renewal_attempted``,
``billing_send_reminders``, ``billing_provider_renewal_failed``,
``billing_provider_subscription_ended``); this module makes the providers' calls.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from pydantic import SecretStr

from worker import inbox
from worker.errors import Retryable

from . import providers
from .models import as_uuid, from_unix
from .settings import BillingSettings

log = logging.getLogger(__name__)

REMINDERS = "select public.billing_send_reminders() as sent"
DUE = "select * from public.billing_renewals_due(now(), %(lead)s)"
ATTEMPTED = """
select (public.billing_renewal_attempted(%(invoice_id)s, %(outcome)s, %(reason)s, %(url)s,
                                         %(reference)s)).id
"""
PAID = """
select public.billing_apply_invoice_event(%(invoice_id)s, 'paid', %(amount)s, %(paid_at)s, %(details)s)
  as outcome
"""
INVOICE = "select description, expired_at, customer_email from public.invoices where id = %(id)s"
SAVE_METHOD = """
select public.billing_save_payment_method(i.user_id, i.provider, %(customer)s, %(authorization)s,
                                          %(email)s, %(channel)s)
  from public.invoices i where i.id = %(invoice_id)s
"""
STRIPE_SUB_REF = "select public.billing_provider_subscription_ref(%(id)s) as ref"
RENEWAL_FAILED = """
select public.billing_provider_renewal_failed('stripe', %(sub)s, %(next)s, %(reason)s, %(at)s) as outcome
"""
SUBSCRIPTION_UPDATED = """
select public.billing_provider_subscription_updated('stripe', %(sub)s, %(cancel)s, %(at)s) as outcome
"""
TRIAL = """
select public.billing_provider_trial('stripe', %(sub)s, %(user)s, %(plan)s, %(ends)s, %(at)s) as outcome
"""
SUBSCRIPTION_ENDED = (
    "select public.billing_provider_subscription_ended('stripe', %(sub)s, %(reason)s) as outcome"
)


def _set(secret: SecretStr | str | None) -> bool:
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return bool(value and value.strip())


def configured(settings: BillingSettings, provider: str) -> bool:
    """Whether the fleet can call ``provider`` (an empty variable counts as unset)."""
    if provider == "paystack":
        return _set(settings.paystack_secret_key)
    if provider == "tripay":
        return (
            _set(settings.tripay_api_key)
            and _set(settings.tripay_private_key)
            and _set(settings.tripay_merchant_code)
        )
    return _set(settings.stripe_secret_key)


async def _attempted(conn: psycopg.AsyncConnection[Any], invoice_id: Any, **kw: Any) -> None:
    params = {"invoice_id": invoice_id, "reason": None, "url": None, "reference": None, **kw}
    await conn.execute(ATTEMPTED, params)


async def _renew_one(
    conn: psycopg.AsyncConnection[Any],
    http: httpx.AsyncClient,
    settings: BillingSettings,
    due: dict[str, Any],
) -> str:
    provider, invoice_id = due["provider"], due["invoice_id"]
    if provider == "paystack":
        if not due["authorization_code"] or not due["email"]:
            await _attempted(conn, invoice_id, outcome="failed", reason="no saved card to charge")
            return "failed"
        result = await providers.paystack_charge(
            http,
            settings,
            authorization_code=due["authorization_code"],
            email=due["email"],
            amount=due["amount"],
            currency=due["currency"],
            reference=f"{invoice_id}-{due['attempt']}",
            invoice_id=str(invoice_id),
        )
        if result.outcome == "paid":
            await conn.execute(
                PAID,
                {
                    "invoice_id": invoice_id,
                    "amount": result.amount,
                    "paid_at": result.paid_at,
                    "details": json.dumps(
                        {"transaction_id": result.reference, "payment_method": "paystack"}
                    ),
                },
            )
            return "paid"
        await _attempted(conn, invoice_id, outcome="failed", reason=result.reason)
        return "failed"
    # Tripay: a closed transaction the user pays from the link they are sent.
    cur = await conn.execute(INVOICE, {"id": invoice_id})
    row = await cur.fetchone()
    if row is None:
        return "missing"
    description, expires_at, email = row
    try:
        reference, url = await providers.tripay_create(
            http,
            settings,
            channel=due["channel"] or settings.tripay_default_channel,
            merchant_ref=str(invoice_id),
            amount=due["amount"],
            name=email or str(due["user_id"]),
            email=email or "",
            description=description or "renewal",
            expires_at=expires_at or datetime.now(UTC) + timedelta(days=3),
        )
    except providers.ProviderRefused as e:
        log.warning(
            "tripay renewal not created", extra={"invoice_id": str(invoice_id), "error": str(e)}
        )
        return "refused"
    await _attempted(conn, invoice_id, outcome="link", url=url, reference=reference)
    return "link"


async def renew(pool: Any, http: httpx.AsyncClient, settings: BillingSettings) -> dict[str, Any]:
    """Send due reminders, then make every due renewal attempt. A provider that cannot be
    reached (or is not configured) is tried again once the attempt's claim runs out."""
    counts: dict[str, Any] = {}
    async with pool.connection() as conn:
        cur = await conn.execute(REMINDERS)
        row = await cur.fetchone()
        counts["reminders"] = row[0] if row else 0
        async with conn.cursor(row_factory=dict_row) as dcur:
            await dcur.execute(DUE, {"lead": timedelta(seconds=settings.billing_renew_lead_s)})
            due = await dcur.fetchall()
    for item in due:
        if not configured(settings, item["provider"]):
            counts["not_configured"] = counts.get("not_configured", 0) + 1
            continue
        try:
            async with pool.connection() as conn, conn.transaction():
                outcome = await _renew_one(conn, http, settings, item)
        except Retryable as e:
            log.warning(
                "renewal attempt postponed",
                extra={"invoice_id": str(item["invoice_id"]), "error": str(e)},
            )
            outcome = "postponed"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


async def provider_cancel(
    pool: Any,
    http: httpx.AsyncClient,
    settings: BillingSettings,
    subscription_id: uuid.UUID,
    cancel: bool,
) -> dict[str, Any]:
    """Tell Stripe the subscription ends (or no longer ends) at its period's end."""
    async with pool.connection() as conn:
        cur = await conn.execute(STRIPE_SUB_REF, {"id": subscription_id})
        row = await cur.fetchone()
    ref = row[0] if row else None
    if ref is None:
        return {"outcome": "no_provider_subscription"}
    if not configured(settings, "stripe"):
        raise Retryable("STRIPE_SECRET_KEY is not set: cannot tell Stripe about the cancellation")
    await providers.stripe_cancel_at_period_end(http, settings, ref, cancel)
    return {"outcome": "sent", "subscription": ref, "cancel": cancel}


# --- provider events -------------------------------------------------------------------------


def _object(payload: dict[str, Any]) -> dict[str, Any]:
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def _subscription_of(obj: dict[str, Any]) -> str | None:
    sub = obj.get("subscription")
    if isinstance(sub, str):
        return sub
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    sub = details.get("subscription") if isinstance(details, dict) else None
    return sub if isinstance(sub, str) else None


async def apply_subscription_event(
    cur: psycopg.AsyncCursor[dict[str, Any]], provider: str, payload: dict[str, Any]
) -> tuple[str, str] | None:
    """A Stripe event about a subscription's renewal rather than an invoice of ours: a
    cycle's failed charge (dunning), a cancellation at period end made at Stripe (the
    billing portal) or taken back, or the subscription's end. Returns (outcome, the
    subscription it names), or ``None`` for any other event (the invoice flow's). The
    subscription's key is locked first, as the payment that would wake the event locks it."""
    if provider != "stripe":
        return None
    kind, obj = payload.get("type"), _object(payload)
    if kind in ("customer.subscription.created", "customer.subscription.updated") and (
        obj.get("status") == "trialing"
    ):
        return await _trial(cur, payload, obj)
    if kind == "invoice.payment_failed" and obj.get("billing_reason") == "subscription_cycle":
        sub = _subscription_of(obj)
        if sub is None:
            return None
        await inbox.lock_keys(cur.connection, provider, [sub])
        created = payload.get("created")
        attempt = obj.get("next_payment_attempt")
        error = obj.get("last_finalization_error")
        await cur.execute(
            RENEWAL_FAILED,
            {
                "sub": sub,
                "next": from_unix(attempt) if isinstance(attempt, int) else None,
                "reason": error.get("message") if isinstance(error, dict) else None,
                "at": from_unix(created) if isinstance(created, int) else datetime.now(UTC),
            },
        )
    elif kind == "customer.subscription.deleted" and isinstance(obj.get("id"), str):
        sub = obj["id"]
        await inbox.lock_keys(cur.connection, provider, [sub])
        details = obj.get("cancellation_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        await cur.execute(SUBSCRIPTION_ENDED, {"sub": sub, "reason": reason})
    elif (
        kind == "customer.subscription.updated"
        and isinstance(obj.get("id"), str)
        and isinstance(obj.get("cancel_at_period_end"), bool)
        and isinstance(payload.get("created"), int)
    ):
        sub = obj["id"]
        await inbox.lock_keys(cur.connection, provider, [sub])
        await cur.execute(
            SUBSCRIPTION_UPDATED,
            {
                "sub": sub,
                "cancel": obj["cancel_at_period_end"],
                "at": from_unix(payload["created"]),
            },
        )
    else:
        return None
    row = await cur.fetchone()
    return (str(row["outcome"]) if row else "not_found"), sub


async def _trial(
    cur: psycopg.AsyncCursor[dict[str, Any]], payload: dict[str, Any], obj: dict[str, Any]
) -> tuple[str, str] | None:
    """A Stripe subscription in trial (``trial_period_days`` of the checkout): the user is
    on the plan until ``trial_end``; the renewal that Stripe bills at the trial's end pays
    the checkout's invoice, and waits for this event (it is woken here)."""
    sub, trial_end, created = obj.get("id"), obj.get("trial_end"), payload.get("created")
    raw = obj.get("metadata")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    user, plan = as_uuid(meta.get("user_id")), as_uuid(meta.get("plan_id"))
    if (
        not isinstance(sub, str)
        or not isinstance(trial_end, int)
        or not isinstance(created, int)
        or user is None
        or plan is None
    ):
        return None
    await inbox.lock_keys(cur.connection, "stripe", [sub])
    await cur.execute(
        TRIAL,
        {
            "sub": sub,
            "user": user,
            "plan": plan,
            "ends": from_unix(trial_end),
            "at": from_unix(created),
        },
    )
    row = await cur.fetchone()
    outcome = str(row["outcome"]) if row else "not_found"
    if outcome == "not_found":
        return outcome, sub
    await inbox.wake(cur.connection, ["stripe"], [sub])
    cancel = obj.get("cancel_at_period_end")
    if payload.get("type") == "customer.subscription.updated" and isinstance(cancel, bool):
        await cur.execute(
            SUBSCRIPTION_UPDATED, {"sub": sub, "cancel": cancel, "at": from_unix(created)}
        )
        updated = await cur.fetchone()
        if updated is not None and updated["outcome"] == "applied":
            outcome = "applied"
    return outcome, sub


async def save_payment_method(
    cur: psycopg.AsyncCursor[dict[str, Any]],
    provider: str,
    payload: dict[str, Any],
    invoice_id: uuid.UUID,
) -> None:
    """Keep what charging the payer again needs: Stripe's customer, Paystack's reusable
    authorisation, the Tripay channel they chose."""
    customer = authorization = email = channel = None
    if provider == "stripe":
        c = _object(payload).get("customer")
        customer = c if isinstance(c, str) else None
    elif provider == "paystack":
        raw = payload.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        auth = data.get("authorization")
        if isinstance(auth, dict) and auth.get("reusable") is True:
            code = auth.get("authorization_code")
            authorization = code if isinstance(code, str) else None
        cust = data.get("customer")
        if isinstance(cust, dict):
            email = cust.get("email") if isinstance(cust.get("email"), str) else None
            code = cust.get("customer_code")
            customer = code if isinstance(code, str) else None
    elif provider == "tripay":
        code = payload.get("payment_method_code")
        channel = code if isinstance(code, str) else None
    if customer or authorization or email or channel:
        await cur.execute(
            SAVE_METHOD,
            {
                "invoice_id": invoice_id,
                "customer": customer,
                "authorization": authorization,
                "email": email,
                "channel": channel,
            },
        )


__all__ = [
    "apply_subscription_event",
    "provider_cancel",
    "renew",
    "save_payment_method",
]
