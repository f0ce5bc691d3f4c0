"""The model layer against respx fakes of the chat-completions API, in its real response
shapes: usage, finish reasons, structured output, refusals, timeouts, 429, 500, bad JSON."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from worker.ai import Analysis, ModelError, ModelUnavailable, StrategyDraft
from worker.ai.model import ModelClient
from worker.ai.settings import AiSettings

BASE = "http://llm.test/v1"
URL = f"{BASE}/chat/completions"

GOOD = {
    "summary": "Win rate 55%, profit factor 1.6.",
    "findings": [
        {"severity": "info", "title": "Healthy", "detail": "PF 1.6", "figure": "profit_factor"}
    ],
    "suggestions": [
        {"title": "Tighten stop", "detail": "10%", "target": "bot", "parameters": {"stop_loss": 10}}
    ],
}


def completion(
    content: str | None,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    prompt_tokens: int = 812,
    completion_tokens: int = 143,
) -> dict[str, Any]:
    """A chat.completion object as the API returns it."""
    return {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion",
        "created": 1765000000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    }


def error(status: int, message: str, type_: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"message": message, "type": type_, "param": None, "code": None}}
    )


def client(retries: int = 0) -> ModelClient:
    return ModelClient(
        AiSettings(
            tradefleet_ai_base_url=BASE,
            tradefleet_ai_api_key="sk-test",
            tradefleet_ai_model="gpt-4o-mini",
            tradefleet_ai_max_retries=retries,
            tradefleet_ai_timeout_s=5,
        )
    )


async def ask(c: ModelClient, output: type[Any] = Analysis) -> Any:
    return await c.complete(model="gpt-4o-mini", system="s", user="u", output=output)


@respx.mock
async def test_a_structured_answer_is_validated_and_its_usage_counted() -> None:
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, json=completion(json.dumps(GOOD)))
    )
    done = await ask(client())
    assert done.output.findings[0].figure == "profit_factor"
    assert done.output.suggestions[0].parameters == {"stop_loss": 10}
    assert (done.prompt_tokens, done.completion_tokens, done.attempts) == (812, 143, 1)
    assert done.model == "gpt-4o-mini-2024-07-18"
    sent = json.loads(route.calls[0].request.content)
    assert sent["response_format"]["type"] == "json_schema"
    assert "summary" in sent["response_format"]["json_schema"]["schema"]["properties"]
    assert route.calls[0].request.headers["authorization"] == "Bearer sk-test"


@respx.mock
async def test_an_invalid_answer_is_retried_once_with_the_validation_error() -> None:
    bad = {**GOOD, "findings": [{"severity": "apocalyptic", "title": "x", "detail": "y"}]}
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(200, json=completion(json.dumps(bad))),
            httpx.Response(200, json=completion(json.dumps(GOOD), prompt_tokens=900)),
        ]
    )
    done = await ask(client())
    assert done.attempts == 2 and done.prompt_tokens == 812 + 900
    retry = json.loads(route.calls[1].request.content)["messages"]
    assert retry[-2]["role"] == "assistant"
    assert "findings.0.severity" in retry[-1]["content"]


@respx.mock
async def test_malformed_json_twice_fails_clearly_with_the_tokens_spent() -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, json=completion('{"summary": "cut')))
    with pytest.raises(ModelError) as e:
        await ask(client())
    assert e.value.code == "invalid_output"
    assert "invalid output twice" in str(e.value)
    assert e.value.prompt_tokens == 2 * 812


@respx.mock
async def test_an_answer_cut_at_max_tokens_is_retried_then_fails() -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(200, json=completion('{"summ', finish_reason="length"))
    )
    with pytest.raises(ModelError, match="cut at"):
        await ask(client())


@respx.mock
async def test_a_refusal_fails_at_once_as_refused() -> None:
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, json=completion(None, refusal="I can't help with that."))
    )
    with pytest.raises(ModelError) as e:
        await ask(client())
    assert e.value.code == "model_refused" and "can't help" in str(e.value)
    assert route.call_count == 1


@respx.mock
async def test_a_rule_the_strategy_validator_rejects_goes_back_to_the_model() -> None:
    wrong = {
        "name": "n",
        "explanation": "e",
        "rules": {"exit_long": {"left": 1, "op": "<", "right": 2}},
    }
    right = {
        "name": "RSI",
        "explanation": "e",
        "rules": {"entry_long": {"left": {"indicator": "rsi"}, "op": "<", "right": 30}},
    }
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(200, json=completion(json.dumps(wrong))),
            httpx.Response(200, json=completion(json.dumps(right))),
        ]
    )
    done = await ask(client(), StrategyDraft)
    assert done.output.name == "RSI"
    assert "entry_long" in json.loads(route.calls[1].request.content)["messages"][-1]["content"]


@respx.mock
async def test_429_with_retry_after_is_retried_by_the_sdk_then_succeeds() -> None:
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(
                429,
                headers={"retry-after-ms": "10", "retry-after": "1"},
                json={
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                        "param": None,
                    }
                },
            ),
            httpx.Response(200, json=completion(json.dumps(GOOD))),
        ]
    )
    done = await ask(client(retries=1))
    assert route.call_count == 2 and done.output.summary.startswith("Win rate")


@respx.mock
async def test_429_after_the_retries_is_retryable_with_the_wait() -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(
            429,
            headers={"retry-after": "7"},
            json={
                "error": {
                    "message": "Rate limit reached",
                    "type": "requests",
                    "code": "rate_limit_exceeded",
                    "param": None,
                }
            },
        )
    )
    with pytest.raises(ModelUnavailable) as e:
        await ask(client())
    assert e.value.retry_after == 7 and "429" in str(e.value)


@respx.mock
async def test_500_and_timeouts_are_retryable() -> None:
    respx.post(URL).mock(return_value=error(500, "The server had an error", "server_error"))
    with pytest.raises(ModelUnavailable, match="500"):
        await ask(client())
    respx.post(URL).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(ModelUnavailable, match="timed out"):
        await ask(client())


@respx.mock
async def test_a_bad_key_is_a_named_failure_not_a_retry() -> None:
    respx.post(URL).mock(
        return_value=error(401, "Incorrect API key provided", "invalid_request_error")
    )
    with pytest.raises(ModelError) as e:
        await ask(client())
    assert e.value.code == "model_rejected" and "401" in str(e.value)
