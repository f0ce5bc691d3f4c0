"""Settings of sealing: the master keys, from the environment (and an optional ``.env``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.errors import Fatal
from worker.sealing.keyring import MASTER_KEYS_ENV, Keyring


class SealingSettings(BaseSettings):
    """Master keys that seal exchange keys and brokerage user secrets."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    tradefleet_master_keys: SecretStr | None = Field(
        default=None,
        description=(
            "Master keys as 'kid1:<base64 32 bytes>,kid2:<...>'; the first seals, the others "
            "only open older values until 'tradefleet keys rotate' moved them."
        ),
    )

    database_url: SecretStr | None = Field(
        default=None,
        description="Database whose sealed values 'tradefleet keys rotate' re-encrypts.",
    )

    @property
    def database_url_value(self) -> str:
        return self.database_url.get_secret_value() if self.database_url else ""

    @property
    def configured(self) -> bool:
        return bool(
            self.tradefleet_master_keys and self.tradefleet_master_keys.get_secret_value().strip()
        )

    def keyring(self) -> Keyring:
        """The keyring of the configured master keys (``Fatal`` when none are set)."""
        if not self.configured or self.tradefleet_master_keys is None:
            raise Fatal(f"{MASTER_KEYS_ENV} is not set; exchange keys cannot be sealed or opened")
        return Keyring.parse(self.tradefleet_master_keys.get_secret_value())
