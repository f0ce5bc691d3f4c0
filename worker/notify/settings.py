"""Settings of notification delivery: the outbound channels' credentials."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotifySettings(BaseSettings):
    """Read from the environment (and an optional ``.env``)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = Field(
        default=None,
        description="Telegram Bot API token; without it Telegram deliveries fail as not configured.",
    )
    telegram_api_url: str = Field(
        default="https://api.telegram.org", description="Telegram Bot API base URL."
    )
