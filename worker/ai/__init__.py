"""AI analyses and the strategy assistant: the ``ai.analyze`` job kind.

Apps call ``request_ai_analysis``; the fleet answers with a model on any OpenAI-compatible
endpoint (:class:`AiSettings`, the client in ``worker.ai.model``, imported only when a
model is configured) or, with none configured, the offline analyst. See
docs/ai.md.
"""

from __future__ import annotations

from worker.ai.errors import ModelError, ModelUnavailable
from worker.ai.jobs import KIND, Analyst, register
from worker.ai.offline import ANALYSTS, MODEL_NAME, draft_strategy
from worker.ai.schema import Analysis, Completion, Finding, StrategyDraft, Suggestion
from worker.ai.settings import AiSettings

__all__ = [
    "ANALYSTS",
    "KIND",
    "MODEL_NAME",
    "AiSettings",
    "Analysis",
    "Analyst",
    "Completion",
    "Finding",
    "ModelError",
    "ModelUnavailable",
    "StrategyDraft",
    "Suggestion",
    "draft_strategy",
    "register",
]
