"""Settings of the bot engine: where candles come from (the exchanges under the wall
clock, or recorded candles replayed) and the master keys that open live bots' API keys."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.exchanges.settings import ExchangesSettings
from worker.sealing import SealingSettings


class BotsSettings(BaseSettings):
    """Read from the environment (and an optional ``.env``)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    tradefleet_replay_dir: Path | None = Field(
        default=None,
        description=(
            "Directory of recorded candles (<BASE>_<QUOTE>-<timeframe>.csv) to replay instead "
            "of the exchanges' public APIs; needs TRADEFLEET_REPLAY_START."
        ),
    )
    tradefleet_replay_start: str | None = Field(
        default=None,
        description="Replayed time at the anchor, ISO 8601 (e.g. 2018-01-12T00:00:00Z).",
    )
    tradefleet_replay_speed: float = Field(
        default=1.0, description="How many times faster than the wall clock replayed time runs."
    )
    tradefleet_replay_anchor: float | None = Field(
        default=None,
        description=(
            "Wall time (unix seconds) at which replayed time was the start; workers given the "
            "same anchor agree on the replayed time. Default: when the worker starts."
        ),
    )
    tradefleet_live_concurrency: int = Field(
        default=64,
        ge=1,
        description=(
            "Live bots' exchange calls running at once per worker at a candle close "
            "(different bots' calls overlap; one bot's run in order)."
        ),
    )
    tradefleet_live_per_account: int = Field(
        default=4,
        ge=1,
        description="Of those, at most this many per exchange account (one API key).",
    )
    sealing: SealingSettings = Field(
        default_factory=SealingSettings,
        description="Master keys that open live bots' sealed exchange keys (TRADEFLEET_MASTER_KEYS).",
    )

    exchanges: ExchangesSettings = Field(
        default_factory=ExchangesSettings,
        description="Recorded market definitions paper bots trade on (TRADEFLEET_MARKETS_DIR).",
    )

    @field_validator(
        "tradefleet_replay_dir",
        "tradefleet_replay_start",
        "tradefleet_replay_speed",
        "tradefleet_replay_anchor",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, v: object, info: object) -> object:
        if isinstance(v, str) and not v.strip():
            return 1.0 if getattr(info, "field_name", "") == "tradefleet_replay_speed" else None
        return v

    @property
    def replaying(self) -> bool:
        return bool(self.tradefleet_replay_dir and self.tradefleet_replay_start)
