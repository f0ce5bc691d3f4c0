"""Settings of the billing capability (see ``.env.example``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    billing_sweep_interval_s: float = Field(
        default=300.0, gt=0, description="Expire overdue invoices and lapsed plans this often."
    )
    billing_webhook_wait_h: float = Field(
        default=72.0,
        gt=0,
        description="A payment event that cannot apply yet (a refund before its payment, a "
        "renewal before the first payment) waits this long for it, then ends ignored.",
    )
