"""Billing: payment webhooks (Stripe, Paystack, Tripay) become invoice state, plan
subscriptions and credits; a periodic sweep expires overdue invoices and lapsed plans, and
retries payment events waiting for their predecessor (ending those unmatched after
``BILLING_WEBHOOK_WAIT_H`` as ignored).

The rules live in SQL (``public.billing_apply_invoice_event``, ``public.billing_expire_due``);
this package parses provider payloads and calls them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from worker.fleet.registry import JobContext, NoPayload, Registry

from .jobs import WebhookEvent, handle_webhook, process_webhook_event, sweep
from .settings import BillingSettings

__all__ = ["BillingSettings", "process_webhook_event", "register"]


def register(registry: Registry, settings: BillingSettings) -> None:
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
