"""Settings of the exchange layer: where recorded market definitions are read from."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ExchangesSettings(BaseSettings):
    """Read from the environment (and an optional ``.env``)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    tradefleet_markets_dir: Path | None = Field(
        default=None,
        description=(
            "Directory of recorded load_markets() output (<exchange id>.json) for paper trading; "
            "default: the definitions shipped in worker/exchanges/markets."
        ),
    )

    @field_validator("tradefleet_markets_dir", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v
