"""Settings of the billing capability (see ``.env.example``)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, SecretStr
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
    billing_renew_interval_s: float = Field(
        default=600.0,
        gt=0,
        description="Send trial and period-end reminders and run due renewals this often.",
    )
    billing_renew_lead_s: float = Field(
        default=3600.0,
        ge=0,
        description="A paid period enters its renewal this long before it ends (Paystack is "
        "charged then; Tripay renewal invoices are created 3 days before).",
    )
    stripe_secret_key: SecretStr | None = Field(
        default=None,
        description="Stripe secret key: cancels subscriptions at period end; with Connect "
        "write access it also creates providers' Connect accounts, onboarding links and payout "
        "transfers (unset: Stripe payouts are refused).",
    )
    stripe_api_url: str = Field(default="https://api.stripe.com", description="Stripe API.")
    paystack_secret_key: SecretStr | None = Field(
        default=None,
        description="Paystack secret key: charges saved authorisations, resolves bank "
        "accounts, creates transfer recipients and payout transfers (unset: Paystack payouts are "
        "refused).",
    )
    paystack_api_url: str = Field(default="https://api.paystack.co", description="Paystack API.")
    tripay_api_key: SecretStr | None = Field(
        default=None, description="Tripay API key: creates renewal transactions."
    )
    tripay_private_key: SecretStr | None = Field(
        default=None, description="Tripay private key that signs transactions."
    )
    tripay_merchant_code: str | None = Field(default=None, description="Tripay merchant code.")
    tripay_api_url: str = Field(default="https://tripay.co.id/api", description="Tripay API.")
    tripay_default_channel: str = Field(
        default="QRIS",
        description="Tripay channel of a renewal when the user's last payment named none.",
    )
    billing_return_url: str = Field(
        default="http://127.0.0.1:3000/billing",
        description="Where a provider sends the user back after paying a renewal.",
    )
    billing_payout_units_per_credit: Decimal = Field(
        default=Decimal(1),
        gt=0,
        description="One credit pays out as this many units of the destination's currency.",
    )
    billing_connect_return_url: str = Field(
        default="http://localhost:3000/payouts?connected=1",
        description="Where Stripe sends a provider who finished Connect onboarding.",
    )
    billing_connect_refresh_url: str = Field(
        default="http://localhost:3000/payouts?refresh=1",
        description="Where Stripe sends a provider whose onboarding link expired.",
    )
    billing_payout_interval_s: float = Field(
        default=60.0, gt=0, description="Send approved payouts this often."
    )
    billing_monthly_payout_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="Look this often for providers due their monthly payout (once a month each).",
    )
