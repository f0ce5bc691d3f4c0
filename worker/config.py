"""Worker configuration from the environment (and an optional ``.env``); see ``.env.example``."""

from __future__ import annotations

import os
import socket
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Everything a ``tradefleet worker`` process needs; secrets are ``SecretStr`` so they
    never print in logs or reprs."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:54322/postgres"),
        description="Direct (session) connection to the Supabase database.",
    )
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
    worker_queues: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["default"])
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
        default=None, description="Default: LEASE_TTL_S / 3."
    )
    job_lock_s: float = Field(
        default=60.0, gt=0, description="Visibility timeout, extended by heartbeats."
    )
    job_backoff_base_s: float = Field(default=2.0, gt=0)
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
    tradefleet_master_keys: SecretStr | None = Field(
        default=None, description="Sealing keys for exchange credentials (used by capabilities)."
    )
    tradefleet_test_kinds: bool = Field(
        default=False, description="Register the fleet's test job kinds."
    )

    @field_validator("worker_queues", mode="before")
    @classmethod
    def _split_queues(cls, v: object) -> object:
        if isinstance(v, str):
            return [q.strip() for q in v.split(",") if q.strip()]
        return v

    @property
    def heartbeat_s(self) -> float:
        return self.heartbeat_interval_s or self.lease_ttl_s / 3
