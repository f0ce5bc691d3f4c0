"""Settings of the signals capability (see ``.env.example``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SignalsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    signals_renew_interval_s: float = Field(
        default=600.0, gt=0, description="Renew (charge or expire) due subscriptions this often."
    )
