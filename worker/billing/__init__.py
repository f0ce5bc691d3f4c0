"""Billing: payment webhooks (Stripe, Paystack, Tripay) become invoice state, plan
subscriptions and credits (refunds and lost disputes claw them back); providers' payouts
are sent through Stripe Connect or Paystack transfers and settled by their webhooks; a periodic sweep expires overdue invoices and lapsed plans, and
retries payment events waiting for their predecessor (ending those unmatched after
``BILLING_WEBHOOK_WAIT_H`` as ignored). ``billing.renew`` sends trial and period-end
reminders and makes due renewal attempts (Paystack charges of the saved authorisation,
Tripay renewal transactions); ``billing.provider_cancel`` tells Stripe about a
cancellation at period end.

The rules live in SQL (``public.billing_apply_invoice_event``, ``public.billing_expire_due``);
this package parses provider payloads and calls them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx

from worker.fleet.registry import JobContext, NoPayload, Payload, Registry

from .jobs import WebhookEvent, handle_webhook, process_webhook_event, sweep
from .payout_api import PaystackTransfers, StripeConnect
from .payouts import (
    ConnectDestination,
    PayoutClients,
    connect_destination,
    refresh_stripe_destinations,
    request_monthly,
    send_approved,
)
from .renewals import provider_cancel, renew
from .settings import BillingSettings

__all__ = ["BillingSettings", "process_webhook_event", "register", "renew"]


class ProviderCancel(Payload):
    """``billing.provider_cancel``, enqueued by ``billing_cancel_at_period_end``."""

    subscription_id: uuid.UUID
    cancel: bool


def payout_clients(settings: BillingSettings, http: httpx.AsyncClient) -> PayoutClients:
    stripe_key = settings.stripe_secret_key
    paystack_key = settings.paystack_secret_key
    return PayoutClients(
        stripe=StripeConnect(
            http,
            settings.stripe_api_url,
            stripe_key.get_secret_value() if stripe_key else None,
        ),
        paystack=PaystackTransfers(
            http,
            settings.paystack_api_url,
            paystack_key.get_secret_value() if paystack_key else None,
        ),
        units_per_credit=settings.billing_payout_units_per_credit,
        connect_refresh_url=settings.billing_connect_refresh_url,
        connect_return_url=settings.billing_connect_return_url,
    )


def register(
    registry: Registry, settings: BillingSettings, http: httpx.AsyncClient | None = None
) -> None:
    clients = payout_clients(
        settings,
        http or httpx.AsyncClient(headers={"user-agent": "tradefleet-billing"}, timeout=20.0),
    )

    @registry.job(
        "billing.payout_destination", payload=ConnectDestination, max_attempts=5, timeout_s=60
    )
    async def handle_destination(ctx: JobContext[ConnectDestination]) -> dict[str, Any]:
        return await connect_destination(ctx.pool, clients, ctx.payload)

    @registry.job("billing.payouts", payload=NoPayload, max_attempts=3, timeout_s=120)
    async def handle_payouts(ctx: JobContext[NoPayload]) -> dict[str, Any]:
        ready = await refresh_stripe_destinations(ctx.pool, clients)
        return {**await send_approved(ctx.pool, clients), "ready": ready}

    @registry.job("billing.monthly_payouts", payload=NoPayload, max_attempts=3, timeout_s=120)
    async def handle_monthly(ctx: JobContext[NoPayload]) -> dict[str, Any]:
        return await request_monthly(ctx.pool)

    registry.every(
        "billing.payouts", timedelta(seconds=settings.billing_payout_interval_s), "billing.payouts"
    )
    registry.every(
        "billing.monthly_payouts",
        timedelta(seconds=settings.billing_monthly_payout_interval_s),
        "billing.monthly_payouts",
    )
    registry.job("billing.webhook", payload=WebhookEvent, max_attempts=10, timeout_s=60)(
        handle_webhook
    )
    wait_for = timedelta(hours=settings.billing_webhook_wait_h)

    @registry.job("billing.sweep", payload=NoPayload, max_attempts=3, timeout_s=120)
    async def handle_sweep(ctx: JobContext[NoPayload]) -> dict[str, Any]:
        return await sweep(ctx.pool, wait_for)

    registry.every(
        "billing.sweep", timedelta(seconds=settings.billing_sweep_interval_s), "billing.sweep"
    )

    http = httpx.AsyncClient(headers={"user-agent": "tradefleet-billing"}, timeout=20.0)

    @registry.job("billing.renew", payload=NoPayload, max_attempts=3, timeout_s=300)
    async def handle_renew(ctx: JobContext[NoPayload]) -> dict[str, Any]:
        return await renew(ctx.pool, http, settings)

    registry.every(
        "billing.renew", timedelta(seconds=settings.billing_renew_interval_s), "billing.renew"
    )

    @registry.job("billing.provider_cancel", payload=ProviderCancel, max_attempts=10, timeout_s=60)
    async def handle_provider_cancel(ctx: JobContext[ProviderCancel]) -> dict[str, Any]:
        return await provider_cancel(
            ctx.pool, http, settings, ctx.payload.subscription_id, ctx.payload.cancel
        )
