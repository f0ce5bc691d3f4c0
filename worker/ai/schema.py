"""What an analyst answers, as pydantic models: the JSON schema sent to a model and the
validation of what comes back (the offline analyst writes the same models)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from worker.strategies import validate_params

Severity = Literal["info", "low", "medium", "high", "critical"]
AnalysisType = Literal["performance", "risk", "backtest", "portfolio", "strategy_generation"]
ANALYSIS_TYPES: tuple[str, ...] = (
    "performance",
    "risk",
    "backtest",
    "portfolio",
    "strategy_generation",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Finding(_Model):
    """One observation, grounded in a named figure."""

    severity: Severity
    title: str = Field(min_length=1, max_length=200)
    detail: str = Field(min_length=1, max_length=2000)
    figure: str | None = Field(
        default=None, description="The key of the figure this finding rests on, if any."
    )


class Suggestion(_Model):
    """Something to do; with ``parameters`` it can be applied in one call."""

    title: str = Field(min_length=1, max_length=200)
    detail: str = Field(min_length=1, max_length=2000)
    target: Literal["bot", "strategy"] | None = None
    parameters: dict[str, float | int | bool | str] | None = Field(
        default=None,
        description="Strategy parameters (and the bot's stop_loss / take_profit in percent).",
    )


class Analysis(_Model):
    """A performance review, a risk assessment, a backtest explanation or a portfolio insight."""

    summary: str = Field(min_length=1, max_length=4000)
    findings: list[Finding] = Field(max_length=20)
    suggestions: list[Suggestion] = Field(max_length=10)


class StrategyDraft(_Model):
    """The strategy assistant's answer: a declarative ``rules`` strategy, never code."""

    name: str = Field(min_length=1, max_length=120)
    explanation: str = Field(min_length=1, max_length=2000)
    rules: dict[str, JsonValue]

    @field_validator("rules")
    @classmethod
    def _valid_rules(cls, v: dict[str, JsonValue]) -> dict[str, JsonValue]:
        validate_params("rules", v)  # InvalidParameters is a ValueError: names the rule
        return v


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the strict form structured outputs expect: every object
    closes its properties and lists all of them as required."""
    schema = model.model_json_schema()

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Completion(Generic[T]):
    """A validated answer and what it cost."""

    output: T
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    attempts: int
