"""Settings of holdings sync: the brokerage providers (SnapTrade, Alpaca) and the master
keys that open brokerage user secrets."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.holdings.snaptrade import DEFAULT_BASE_URL
from worker.sealing import SealingSettings


class HoldingsSettings(BaseSettings):
    """Read from the environment (and an optional ``.env``)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    snaptrade_client_id: str | None = Field(
        default=None,
        description="SnapTrade partner client id; with the consumer key enables SnapTrade.",
    )
    snaptrade_consumer_key: SecretStr | None = Field(
        default=None, description="SnapTrade consumer key that signs every request."
    )
    snaptrade_api_url: str = Field(default=DEFAULT_BASE_URL, description="SnapTrade API base URL.")
    alpaca_api_url: str = Field(
        default="https://api.alpaca.markets", description="Alpaca trading API base URL."
    )
    alpaca_data_url: str = Field(
        default="https://data.alpaca.markets", description="Alpaca market data API base URL."
    )
    alpaca_data_key_id: str | None = Field(
        default=None, description="Alpaca key id for quotes of watched symbols (with the secret)."
    )
    alpaca_data_secret: SecretStr | None = Field(
        default=None, description="Alpaca secret for quotes of watched symbols."
    )
    holdings_webhook_wait_h: float = Field(
        default=72.0,
        gt=0,
        description="A SnapTrade event that cannot apply yet (a disconnect before its connect) "
        "waits this long for it, then ends ignored.",
    )
    sealing: SealingSettings = Field(
        default_factory=SealingSettings,
        description="Master keys that open brokerage user secrets (TRADEFLEET_MASTER_KEYS).",
    )
