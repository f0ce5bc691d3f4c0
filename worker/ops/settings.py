"""Settings of the operators' side: service health checks and alerts (see ``.env.example``
and ``docs/operations.md``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Rule = Literal[
    "worker_dead",
    "queue_waiting",
    "dead_jobs",
    "webhook_failures",
    "ledger_audit",
    "service_down",
    "bot_errors",
]
RULES: tuple[Rule, ...] = (
    "worker_dead",
    "queue_waiting",
    "dead_jobs",
    "webhook_failures",
    "ledger_audit",
    "service_down",
    "bot_errors",
)


def _blank_is_unset(v: object) -> object:
    return None if isinstance(v, str) and not v.strip() else v


class OpsSettings(BaseSettings):
    """Read from the environment (and an optional ``.env``). SnapTrade, Alpaca and Telegram
    credentials are those of their capabilities (``HoldingsSettings``, ``NotifySettings``)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # -- service health ---------------------------------------------------------------------
    health_interval_s: float = Field(
        default=30.0, ge=5, description="ops.health checks every configured service this often."
    )
    health_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="A check that takes longer has failed."
    )
    health_slow_ms: float = Field(
        default=2000.0, gt=0, description="A success slower than this leaves a service degraded."
    )
    health_down_after: int = Field(
        default=3, ge=1, le=100, description="This many failures in a row make a service down."
    )
    health_exchanges: bool | None = Field(
        default=None,
        description="Check the exchanges running bots use (ccxt fetch_status / fetch_time); "
        "default: on, off when candles are replayed.",
    )
    health_discord: bool = Field(
        default=False,
        description="Check Discord's API (on anyway when ALERT_DISCORD_WEBHOOK_URL is set).",
    )
    stripe_secret_key: SecretStr | None = Field(
        default=None,
        description="Stripe API key (restricted, read-only is enough); enables its check.",
    )
    stripe_api_url: str = Field(
        default="https://api.stripe.com", description="Stripe API base URL."
    )
    paystack_secret_key: SecretStr | None = Field(
        default=None, description="Paystack secret key; enables its check."
    )
    paystack_api_url: str = Field(
        default="https://api.paystack.co", description="Paystack API base URL."
    )
    tripay_api_key: SecretStr | None = Field(
        default=None, description="Tripay API key; enables its check."
    )
    tripay_api_url: str = Field(
        default="https://tripay.co.id/api",
        description="Tripay API base URL (https://tripay.co.id/api-sandbox for the sandbox).",
    )
    discord_api_url: str = Field(
        default="https://discord.com/api/v10", description="Discord API base URL."
    )

    # -- alerts -------------------------------------------------------------------------------
    alerts_interval_s: float = Field(
        default=30.0, ge=5, description="ops.alerts evaluates the alert rules this often."
    )
    alert_rules: Annotated[list[Rule], NoDecode] = Field(
        default_factory=lambda: list(RULES),
        description="The rules evaluated (comma-separated); default: all of them.",
    )
    alert_telegram_chat_id: str | None = Field(
        default=None, description="Telegram chat of the operators (with TELEGRAM_BOT_TOKEN)."
    )
    alert_discord_webhook_url: SecretStr | None = Field(
        default=None, description="Discord incoming webhook of the operators' channel."
    )
    alert_webhook_url: SecretStr | None = Field(
        default=None, description="Any HTTP endpoint that takes the alerts as JSON posts."
    )
    alert_worker_dead_for_s: float = Field(
        default=3600.0,
        gt=0,
        description="A worker marked dead is an incident for this long (or until it is back).",
    )
    alert_queue_wait_s: float = Field(
        default=300.0, gt=0, description="A job ready to run waiting longer than this alerts."
    )
    alert_dead_jobs: int = Field(
        default=1, ge=1, description="This many jobs of a kind dead in the window alert."
    )
    alert_dead_jobs_window_s: float = Field(
        default=300.0, gt=0, description="The window of the dead-jobs rule."
    )
    alert_webhook_failures: int = Field(
        default=1, ge=1, description="This many failed webhook events of a provider alert."
    )
    alert_ledger_audit_every_s: float = Field(
        default=300.0,
        ge=5,
        description="credit_audit() reads the whole ledger: the ledger rule runs this often.",
    )
    alert_bot_errors: int = Field(
        default=50, ge=1, description="This many bot error log lines in the window alert."
    )
    alert_bot_errors_window_s: float = Field(
        default=300.0, gt=0, description="The window of the bot-errors rule."
    )

    _blank = field_validator(
        "health_exchanges",
        "stripe_secret_key",
        "paystack_secret_key",
        "tripay_api_key",
        "alert_telegram_chat_id",
        "alert_discord_webhook_url",
        "alert_webhook_url",
        mode="before",
    )(_blank_is_unset)

    @field_validator("alert_rules", mode="before")
    @classmethod
    def _split_rules(cls, v: object) -> object:
        if isinstance(v, str):
            return [part.strip() for part in v.split(",") if part.strip()]
        return v
