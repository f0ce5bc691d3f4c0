"""Settings of AI analyses: the OpenAI-compatible endpoint, its models and limits.

With no ``TRADEFLEET_AI_MODEL`` (and no per-type model) the offline analyst answers: the
feature works without any model configured.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AiSettings(BaseSettings):
    """Read from the environment (and an optional ``.env``)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    tradefleet_ai_base_url: str | None = Field(
        default=None,
        description=(
            "Base URL of an OpenAI-compatible chat-completions API (OpenAI, Azure OpenAI, "
            "OpenRouter, vLLM, Ollama, llama.cpp: e.g. http://127.0.0.1:11434/v1); "
            "unset means the SDK's default (OpenAI)."
        ),
    )
    tradefleet_ai_api_key: SecretStr | None = Field(
        default=None, description="API key sent as a bearer token (local servers take any)."
    )
    tradefleet_ai_model: str | None = Field(
        default=None,
        description="Model of every analysis type; unset (and no per-type model) = offline analyst.",
    )
    tradefleet_ai_model_performance: str | None = Field(default=None)
    tradefleet_ai_model_risk: str | None = Field(default=None)
    tradefleet_ai_model_backtest: str | None = Field(default=None)
    tradefleet_ai_model_portfolio: str | None = Field(default=None)
    tradefleet_ai_model_strategy_generation: str | None = Field(default=None)
    tradefleet_ai_timeout_s: float = Field(default=60.0, gt=0, le=600)
    tradefleet_ai_max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of timeouts, 429 and 5xx by the SDK."
    )
    tradefleet_ai_max_tokens: int = Field(
        default=1200, ge=64, le=32768, description="Cap on the completion tokens of one call."
    )

    @field_validator(
        "tradefleet_ai_base_url",
        "tradefleet_ai_model",
        "tradefleet_ai_model_performance",
        "tradefleet_ai_model_risk",
        "tradefleet_ai_model_backtest",
        "tradefleet_ai_model_portfolio",
        "tradefleet_ai_model_strategy_generation",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    def model_for(self, analysis_type: str) -> str | None:
        """The model configured for ``analysis_type``; None means the offline analyst."""
        specific = getattr(self, f"tradefleet_ai_model_{analysis_type}", None)
        return specific or self.tradefleet_ai_model
