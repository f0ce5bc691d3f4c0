"""Billing: payment webhooks (Stripe, Paystack, Tripay) become invoice state, plan
subscriptions and credits; a periodic sweep expires overdue invoices and lapsed plans.

The rules live in SQL (``public.billing_apply_invoice_event``, ``public.billing_expire_due``);
this package parses provider payloads and calls them.
"""

from __future__ import annotations

from datetime import timedelta

from worker.fleet.registry import NoPayload, Registry

from .jobs import WebhookEvent, handle_sweep, handle_webhook, process_webhook_event
from .settings import BillingSettings

__all__ = ["BillingSettings", "process_webhook_event", "register"]


def register(registry: Registry, settings: BillingSettings) -> None:
    registry.job("billing.webhook", payload=WebhookEvent, max_attempts=10, timeout_s=60)(
        handle_webhook
    )
    registry.job("billing.sweep", payload=NoPayload, max_attempts=3, timeout_s=120)(handle_sweep)
    registry.every(
        "billing.sweep", timedelta(seconds=settings.billing_sweep_interval_s), "billing.sweep"
    )
