"""The model layer: one structured chat completion on any OpenAI-compatible endpoint.

The answer must be JSON matching the output model's schema (``response_format`` with a
JSON schema) and is validated by pydantic. An invalid answer is sent back once with the
validation error; a second invalid answer fails with :class:`ModelError`
(``invalid_output``). Timeouts, 429 (the SDK honours ``retry-after``) and 5xx are retried
by the SDK ``max_retries`` times, then raised as :class:`ModelUnavailable` (``Retryable``).
"""

from __future__ import annotations

import json
import time
from typing import Any, TypeVar, cast

import httpx
import openai
from openai import AsyncOpenAI
from pydantic import BaseModel, ValidationError

from worker.ai.errors import ModelError, ModelUnavailable
from worker.ai.schema import Completion, json_schema
from worker.ai.settings import AiSettings

T = TypeVar("T", bound=BaseModel)


def _retry_after(e: openai.APIStatusError) -> float | None:
    value = e.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _problems(e: ValidationError | ValueError) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in e.errors()[:10]
        )
    return str(e)


class ModelClient:
    """Structured chat completions against the configured endpoint."""

    def __init__(self, settings: AiSettings, http_client: httpx.AsyncClient | None = None) -> None:
        key = settings.tradefleet_ai_api_key
        self.settings = settings
        self._client = AsyncOpenAI(
            base_url=settings.tradefleet_ai_base_url,
            api_key=key.get_secret_value() if key is not None else "not-set",
            timeout=settings.tradefleet_ai_timeout_s,
            max_retries=settings.tradefleet_ai_max_retries,
            http_client=http_client,
        )

    async def close(self) -> None:
        await self._client.close()

    async def _call(
        self, model: str, messages: list[dict[str, str]], output: type[T], max_tokens: int
    ) -> Any:
        try:
            return await self._client.chat.completions.create(
                model=model,
                messages=cast(Any, messages),
                max_tokens=max_tokens,
                temperature=0,
                response_format=cast(
                    Any,
                    {
                        "type": "json_schema",
                        "json_schema": {
                            "name": output.__name__.lower(),
                            "schema": json_schema(output),
                            "strict": False,
                        },
                    },
                ),
            )
        except openai.APITimeoutError as e:
            raise ModelUnavailable(f"the model endpoint timed out: {e}") from e
        except openai.APIConnectionError as e:
            raise ModelUnavailable(f"the model endpoint is unreachable: {e}") from e
        except openai.RateLimitError as e:
            after = _retry_after(e)
            wait = f"; retry after {after:g} s" if after is not None else ""
            raise ModelUnavailable(
                f"the model endpoint rate limited the request (429){wait}", retry_after=after
            ) from e
        except openai.InternalServerError as e:
            raise ModelUnavailable(f"the model endpoint failed ({e.status_code})") from e
        except openai.APIStatusError as e:
            raise ModelError(
                "model_rejected",
                f"the model endpoint refused the request ({e.status_code}): {e.message}",
            ) from e

    async def complete(
        self, *, model: str, system: str, user: str, output: type[T], max_tokens: int | None = None
    ) -> Completion[T]:
        """Ask ``model`` for an ``output``; one retry with the validation error."""
        cap = max_tokens or self.settings.tradefleet_ai_max_tokens
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        prompt_tokens = completion_tokens = 0
        started = time.perf_counter()
        problem = ""
        for attempt in (1, 2):
            response = await self._call(model, messages, output, cap)
            usage = getattr(response, "usage", None)
            if usage is not None:
                prompt_tokens += int(usage.prompt_tokens or 0)
                completion_tokens += int(usage.completion_tokens or 0)
            if not response.choices:
                problem = "the answer had no choices"
                content = ""
            else:
                choice = response.choices[0]
                refusal = getattr(choice.message, "refusal", None)
                if refusal or choice.finish_reason == "content_filter":
                    raise ModelError(
                        "model_refused",
                        f"the model refused: {refusal or 'content filtered'}",
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                    )
                content = choice.message.content or ""
                if choice.finish_reason == "length":
                    problem = f"the answer was cut at {cap} tokens (finish_reason length)"
                else:
                    try:
                        parsed = output.model_validate(json.loads(content))
                    except (ValueError, ValidationError) as e:
                        problem = _problems(e)
                    else:
                        return Completion(
                            output=parsed,
                            model=str(getattr(response, "model", None) or model),
                            prompt_tokens=prompt_tokens,
                            completion_tokens=completion_tokens,
                            latency_ms=int((time.perf_counter() - started) * 1000),
                            attempts=attempt,
                        )
            messages = [
                *messages,
                {"role": "assistant", "content": content},
                {
                    "role": "user",
                    "content": "That answer is invalid: "
                    f"{problem}. Answer again with only JSON that matches the schema.",
                },
            ]
        raise ModelError(
            "invalid_output",
            f"the model answered invalid output twice: {problem}",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
