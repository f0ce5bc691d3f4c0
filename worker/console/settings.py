"""The console's settings, from the environment (and an optional ``.env``); see ``.env.example``.

The token settings are the Edge Functions' (``TRADEFLEET_JWT_SECRET``, ``SUPABASE_JWKS``,
``SUPABASE_URL``, ``TRADEFLEET_JWT_ISSUER``): the console verifies an admin's Supabase
session exactly as they verify a user's.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator

from worker.fleet.settings import DatabaseSettings


class ConsoleSettings(DatabaseSettings):
    """What ``tradefleet console`` needs."""

    console_host: str = Field(default="127.0.0.1", description="Address the console listens on.")
    console_port: int = Field(default=8484, ge=1, le=65535, description="Port of the console.")
    console_secure_cookie: bool = Field(
        default=False,
        description="Send the session cookie over HTTPS only (set it behind a TLS proxy).",
    )
    console_event_interval_s: float = Field(
        default=0.25,
        ge=0,
        le=60,
        description="Fewest seconds between two live updates of one part of a page.",
    )
    supabase_url: str | None = Field(
        default=None, description="Project URL: signing keys and issuer come from it."
    )
    supabase_jwks: SecretStr | None = Field(
        default=None, description="The project's signing keys as a JSON Web Key Set."
    )
    tradefleet_jwt_secret: SecretStr | None = Field(
        default=None, description="The legacy HS256 JWT secret, if the project still uses it."
    )
    tradefleet_jwt_issuer: str | None = Field(
        default=None, description="Issuer tokens must name; default <SUPABASE_URL>/auth/v1."
    )

    @model_validator(mode="after")
    def _keys_known(self) -> Self:
        if not (self.supabase_url or self.supabase_jwks or self.tradefleet_jwt_secret):
            raise ValueError(
                "the console cannot verify sign-ins: set SUPABASE_URL (its signing keys are "
                "fetched), SUPABASE_JWKS or TRADEFLEET_JWT_SECRET"
            )
        if not (self.tradefleet_jwt_issuer or self.supabase_url):
            raise ValueError("set TRADEFLEET_JWT_ISSUER or SUPABASE_URL: the token issuer")
        return self

    @property
    def issuer(self) -> str:
        if self.tradefleet_jwt_issuer:
            return self.tradefleet_jwt_issuer
        assert self.supabase_url is not None  # checked above
        return f"{self.supabase_url.rstrip('/')}/auth/v1"
