"""Settings of app-requested backtests: where recorded candles are read from."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class BacktestSettings(BaseSettings):
    """Read from the environment (and an optional ``.env``)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    tradefleet_candles_dir: Path | None = Field(
        default=None,
        description=(
            "Directory of recorded candles (<BASE>_<QUOTE>-<timeframe>.csv) a backtest reads when "
            "the candles table has none for its market; relative to the repository, "
            "default data/candles."
        ),
    )

    @field_validator("tradefleet_candles_dir", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v
