"""Settings of the exchange layer: the markets cache refresh and the recorded market
definitions used while an exchange is not loaded yet."""

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

    tradefleet_markets_refresh: bool | None = Field(
        default=None,
        description=(
            "Refresh the markets cache from the exchanges' public APIs (daily, and when a bot "
            "needs a market the cache lacks); default: on, off when candles are replayed."
        ),
    )
    tradefleet_markets_refresh_min_s: float = Field(
        default=300.0,
        ge=0,
        description="Least seconds between two refreshes of one exchange asked for by a missing market.",
    )

    tradefleet_exchange_urls: str | None = Field(
        default=None,
        description=(
            "Comma-separated <exchange id>=<base URL> pairs: live bots' REST calls to these "
            "exchanges go to that URL instead (local fake exchanges of the end-to-end tests "
            "and benchmarks); unset in production."
        ),
    )

    @field_validator("tradefleet_markets_dir", "tradefleet_markets_refresh", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @property
    def exchange_urls(self) -> dict[str, str]:
        """``TRADEFLEET_EXCHANGE_URLS`` as {exchange id: base URL}."""
        out: dict[str, str] = {}
        for pair in (self.tradefleet_exchange_urls or "").split(","):
            name, _, url = pair.strip().partition("=")
            if name and url:
                out[name.strip()] = url.strip()
        return out
