"""The fleet's settings, from the environment (and an optional ``.env``); see ``.env.example``.

Each capability keeps its own settings class beside it; the composition root
(:mod:`worker.capabilities`) loads them with :func:`load_settings` and hands each to its
capability's ``register(registry, settings)``.
"""

from __future__ import annotations

import os
import socket
from typing import Annotated, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker.errors import ConfigError

S = TypeVar("S", bound=BaseSettings)


def _default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _split_commas(v: object) -> object:
    if isinstance(v, str):
        return [part.strip() for part in v.split(",") if part.strip()]
    return v


def load_settings(cls: type[S]) -> S:
    """Read ``cls`` from the environment; a missing or invalid setting raises
    :class:`ConfigError` naming the environment variable, never a traceback of pydantic's."""
    try:
        return cls()
    except ValidationError as e:
        raise ConfigError(describe(e)) from None


def describe(e: ValidationError) -> str:
    """One line naming each bad environment variable and what is wrong with it."""
    problems = []
    for err in e.errors():
        name = "_".join(str(part) for part in err["loc"]).upper()
        if not name:  # a rule across several settings: its message names them
            problems.append(str(err["msg"]).removeprefix("Value error, "))
        elif err["type"] == "missing":
            problems.append(f"{name} is not set")
        else:
            problems.append(f"{name} is invalid: {err['msg']}")
    return "; ".join(problems) + " (see .env.example)"


class DatabaseSettings(BaseSettings):
    """What every command that talks to the database needs."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: SecretStr = Field(
        description="Direct (session) connection to the Supabase database; required."
    )


class FleetSettings(DatabaseSettings):
    """Everything the fleet runtime of a ``tradefleet worker`` process needs; secrets are
    ``SecretStr`` so they never print in logs or reprs."""

    worker_db_role: str | None = Field(
        default="service_role", description="Role the worker acts as after connecting."
    )
    worker_name: str = Field(default_factory=_default_name)
    worker_capacity: int = Field(
        default=1000, gt=0, description="Most bots this worker runs at once."
    )
    worker_concurrency: int = Field(
        default=20, gt=0, description="Most jobs this worker runs at once."
    )
    worker_claim_batch: int = Field(
        default=50, gt=0, description="Most jobs claimed per round trip."
    )
    worker_queues: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["default", "credits"],
        description="Queues this worker takes jobs from; the credit jobs run on 'credits'.",
    )
    worker_extra_capabilities: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Importable modules with register(registry, settings) to load as well.",
    )
    event_source: Literal["listen", "realtime"] = "listen"
    supabase_url: str | None = None
    supabase_service_role_key: SecretStr | None = None
    lease_ttl_s: float = Field(
        default=30.0, gt=0, description="Bot lease TTL; bots move within 2x this."
    )
    poll_interval_s: float = Field(
        default=5.0, gt=0, description="Poll for jobs this often even without wake-ups."
    )
    heartbeat_interval_s: float | None = Field(
        default=None, gt=0, description="Default: LEASE_TTL_S / 3."
    )
    job_lock_s: float = Field(
        default=60.0, gt=0, description="Visibility timeout, extended by heartbeats."
    )
    job_backoff_base_s: float = Field(default=2.0, gt=0)
    db_idle_in_transaction_s: float = Field(
        default=120.0,
        gt=0,
        description="A worker's transaction left idle this long is ended by PostgreSQL, and "
        "its locks with it (a worker stopped mid-transaction).",
    )
    drain_timeout_s: float = Field(
        default=25.0, ge=0, description="SIGTERM: how long running jobs may finish."
    )
    sweep_interval_s: float = Field(
        default=5.0, gt=0, description="Mark dead workers, reclaim expired jobs."
    )
    queue_async_commit: bool = Field(
        default=True,
        description="Claims/outcomes commit asynchronously (a PostgreSQL crash re-runs, never loses, jobs).",
    )
    log_level: str = "INFO"
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve /healthz, /readyz and /metrics on this port; unset: no probes.",
    )
    metrics_host: str = Field(
        default="0.0.0.0", description="Address the probes listen on (with METRICS_PORT)."
    )

    _split_queues = field_validator("worker_queues", "worker_extra_capabilities", mode="before")(
        _split_commas
    )

    @model_validator(mode="after")
    def _realtime_needs_supabase(self) -> Self:
        if self.event_source == "realtime" and not (
            self.supabase_url and self.supabase_service_role_key
        ):
            raise ValueError(
                "EVENT_SOURCE=realtime needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"
            )
        return self

    @property
    def heartbeat_s(self) -> float:
        return self.heartbeat_interval_s or self.lease_ttl_s / 3


DAY_S = 86400.0
MAX_KEEP_S = 36500 * DAY_S  # public.prune_history keeps at most 100 years


class RetentionSettings(BaseSettings):
    """How long the periodic job ``fleet.prune`` (:mod:`worker.fleet.retention`) keeps each
    history table, and how it deletes: in batches, each its own short transaction."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_logs_keep_s: float = Field(
        default=30 * DAY_S,
        gt=0,
        le=MAX_KEEP_S,
        description=(
            "Bot log lines older than this are deleted (whole weeks: a weekly partition"
            " goes once its last day is older)."
        ),
    )
    webhook_events_keep_s: float = Field(
        default=30 * DAY_S,
        gt=0,
        le=MAX_KEEP_S,
        description="Processed or ignored webhook events done longer ago than this are deleted.",
    )
    notifications_keep_s: float = Field(
        default=90 * DAY_S,
        gt=0,
        le=MAX_KEEP_S,
        description="Notifications read longer ago than this are deleted (unread ones stay).",
    )
    jobs_keep_s: float = Field(
        default=7 * DAY_S,
        gt=0,
        le=MAX_KEEP_S,
        description="Succeeded and cancelled jobs finished longer ago than this are deleted.",
    )
    service_checks_keep_s: float = Field(
        default=7 * DAY_S,
        gt=0,
        le=MAX_KEEP_S,
        description="Service health checks older than this are deleted.",
    )
    api_usage_minutes_keep_s: float = Field(
        default=30 * DAY_S,
        gt=0,
        le=MAX_KEEP_S,
        description=(
            "Per-minute API usage rollups older than this are deleted (whole days: a daily"
            " partition goes once it ended before now minus the keep); the per-day rollups"
            " are kept."
        ),
    )
    retention_interval_s: float = Field(
        default=3600.0, ge=60, description="fleet.prune runs this often across the fleet."
    )
    retention_batch: int = Field(
        default=1000, ge=1, le=10000, description="Rows deleted per transaction."
    )
    retention_pause_s: float = Field(
        default=0.05, ge=0, description="Pause between two batches, so writers go first."
    )
