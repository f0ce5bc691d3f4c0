"""Why a model's answer could not be used, without importing the model client."""

from __future__ import annotations

from worker.errors import Fatal, Retryable


class ModelError(Fatal):
    """The model's answer cannot be used; ``code`` names why (stored on the analysis)."""

    def __init__(
        self, code: str, message: str, *, prompt_tokens: int = 0, completion_tokens: int = 0
    ) -> None:
        super().__init__(message)
        self.code = code
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


class ModelUnavailable(Retryable):
    """The endpoint timed out, rate limited or failed after the SDK's retries."""

    code = "model_unavailable"
