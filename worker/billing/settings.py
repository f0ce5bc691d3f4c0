"""Settings of the billing capability (see ``.env.example``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    billing_sweep_interval_s: float = Field(
        default=300.0, gt=0, description="Expire overdue invoices and lapsed plans this often."
    )
