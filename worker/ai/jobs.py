"""``ai.analyze``: one analysis requested by an app, run by the fleet.

``request_ai_analysis`` inserts an ``ai_analyses`` row (queued); its trigger enqueues one
job. The handler:

1. marks the row ``running`` (a finished row is left alone);
2. loads the figures under the user's row level security (:mod:`worker.ai.figures`);
3. with a model configured, holds credits for the most tokens the call may use (the
   prompt and twice ``max_tokens``: one retry) at the plan's
   ``credits_per_1k_ai_tokens``;
4. asks the model (:mod:`worker.ai.model`) or the offline analyst (:mod:`worker.ai.offline`);
5. in one transaction stores the answer beside its figures, with model, tokens, latency
   and cost, and posts the cost of the tokens used (the rest of the hold is released).

A failure writes a named ``error_code`` and message on the row and voids the hold;
nothing else is written. A strategy description becomes validated ``rules`` and is
backtested at once: a ``backtest_runs`` row inserted as the user (their quotas apply).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from worker import credits
from worker.ai import offline, prompts
from worker.ai.errors import ModelError, ModelUnavailable
from worker.ai.figures import NotFound, as_user, load
from worker.ai.schema import ANALYSIS_TYPES, Analysis, Completion, StrategyDraft
from worker.ai.settings import AiSettings
from worker.errors import Fatal
from worker.fleet.registry import JobContext, Registry

if TYPE_CHECKING:
    from worker.ai.model import ModelClient

KIND = "ai.analyze"
CENTS = Decimal("0.00000001")

START = """
update public.ai_analyses set status = 'running', started_at = coalesce(started_at, now()), error = null
 where id = %(id)s and status in ('queued', 'running')
returning *
"""
FINISH = """
update public.ai_analyses
   set status = 'completed', summary = %(summary)s, findings = %(findings)s, suggestions = %(suggestions)s,
       figures = %(figures)s, results = %(results)s, recommendations = %(recommendations)s,
       confidence_score = %(confidence)s, model_used = %(model)s, prompt_tokens = %(prompt_tokens)s,
       completion_tokens = %(completion_tokens)s, tokens_used = %(prompt_tokens)s + %(completion_tokens)s,
       processing_time_ms = %(latency_ms)s, credits_charged = %(credits)s,
       generated_strategy = %(generated)s, result_backtest_run_id = %(run_id)s,
       error = null, error_code = null, finished_at = now()
 where id = %(id)s
"""
FAIL = """
update public.ai_analyses
   set status = 'failed', error_code = %(code)s, error = %(error)s, finished_at = now()
 where id = %(id)s
"""
REQUEUE = "update public.ai_analyses set status = 'queued', error = %(error)s where id = %(id)s"
PRICE = "select public.ai_token_price(%(user_id)s) as price"
USER_ACCOUNT = "select id from public.credit_accounts where user_id = %(user_id)s and kind = 'user'"
INSERT_RUN = """
insert into public.backtest_runs (strategy, parameters, exchange, trading_pair, timeframe, start_date, end_date)
values ('rules', %(rules)s, %(exchange)s, %(trading_pair)s, %(timeframe)s, %(start_date)s, %(end_date)s)
returning id
"""


class Failed(Fatal):
    """An analysis that cannot be done; ``code`` is stored on the row."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AnalyzePayload(BaseModel):
    analysis_id: uuid.UUID


def estimate_tokens(text: str) -> int:
    """A model-independent estimate: one token per four characters."""
    return math.ceil(len(text) / 4)


def credits_for(tokens: int, price_per_1k: Decimal) -> Decimal:
    return (price_per_1k * tokens / 1000).quantize(CENTS, rounding=ROUND_CEILING)


async def _one(
    pool: AsyncConnectionPool, query: str, params: dict[str, Any]
) -> dict[str, Any] | None:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


class Analyst:
    """Answers with the configured model, else the offline analyst."""

    def __init__(self, settings: AiSettings, client: ModelClient | None = None) -> None:
        self.settings = settings
        self.client = client

    def model_for(self, kind: str) -> str | None:
        return self.settings.model_for(kind)

    def _client(self) -> ModelClient:
        if self.client is None:
            # The SDK is imported only when a model is configured: it is slow to import.
            from worker.ai.model import ModelClient

            self.client = ModelClient(self.settings)
        return self.client

    async def analyse(self, kind: str, figures: dict[str, Any]) -> Completion[Analysis]:
        system, user = prompts.analysis(kind, figures)
        model = self.model_for(kind)
        if model is None:
            started = time.perf_counter()
            answer = offline.ANALYSTS[kind](figures)
            return Completion(
                output=answer,
                model=offline.MODEL_NAME,
                prompt_tokens=estimate_tokens(system + user),
                completion_tokens=estimate_tokens(answer.model_dump_json()),
                latency_ms=int((time.perf_counter() - started) * 1000),
                attempts=1,
            )
        return await self._client().complete(model=model, system=system, user=user, output=Analysis)

    async def draft(self, description: str) -> Completion[StrategyDraft]:
        system, user = prompts.strategy(description)
        model = self.model_for("strategy_generation")
        if model is None:
            started = time.perf_counter()
            try:
                draft = offline.draft_strategy(description)
            except ValueError as e:
                raise Failed("no_valid_strategy", str(e)) from e
            return Completion(
                output=draft,
                model=offline.MODEL_NAME,
                prompt_tokens=estimate_tokens(system + user),
                completion_tokens=estimate_tokens(draft.model_dump_json()),
                latency_ms=int((time.perf_counter() - started) * 1000),
                attempts=1,
            )
        return await self._client().complete(
            model=model, system=system, user=user, output=StrategyDraft
        )

    def max_tokens(self, kind: str, figures: dict[str, Any] | str) -> int:
        """The most tokens one request may use: the prompt and two answers (one retry),
        the retry resending the prompt and the first answer."""
        text = figures if isinstance(figures, str) else json.dumps(figures)
        prompt = estimate_tokens(text) + 400
        cap = self.settings.tradefleet_ai_max_tokens
        return 2 * prompt + 3 * cap


async def _hold(
    ctx: JobContext[AnalyzePayload],
    row: dict[str, Any],
    analyst: Analyst,
    subject: dict[str, Any] | str,
) -> tuple[credits.Transfer | None, Decimal]:
    """Hold the price of the most tokens the request may use; (None, price) when free."""
    kind = str(row["analysis_type"])
    if analyst.model_for(kind) is None:
        return None, Decimal(0)
    user_id = row["user_id"]
    got = await _one(ctx.pool, PRICE, {"user_id": user_id})
    price = Decimal(got["price"]) if got and got["price"] is not None else Decimal(0)
    if price <= 0:
        return None, price
    account = await _one(ctx.pool, USER_ACCOUNT, {"user_id": user_id})
    system = await credits.system_account(ctx.pool, "system:usage")
    if account is None or system is None:
        raise Failed("insufficient_credits", "no credit account to charge the AI request to")
    amount = credits_for(analyst.max_tokens(kind, subject), price)
    try:
        held = await credits.hold(
            ctx.pool,
            id=credits.transfer_id(KIND, row["id"], "hold", ctx.job.attempts),
            debit_account_id=account["id"],
            credit_account_id=system,
            amount=amount,
            reference_type="ai_analysis",
            reference_id=str(row["id"]),
            metadata={"usage": "ai_tokens", "credits_per_1k_tokens": str(price)},
        )
    except credits.InsufficientCredits as e:
        raise Failed("insufficient_credits", f"not enough credits for this AI request: {e}") from e
    return held, price


async def _void(
    ctx: JobContext[AnalyzePayload], row: dict[str, Any], hold: credits.Transfer | None
) -> None:
    if hold is None:
        return
    try:
        await credits.void(
            ctx.pool, id=credits.transfer_id(KIND, row["id"], "void", hold.id), pending_id=hold.id
        )
    except Exception as e:  # the hold expires on its own; keep the analysis's own error
        ctx.log.warning(
            "could not void the AI hold", extra={"action": "hold_void_failed", "error": str(e)}
        )


async def _backtest(
    pool: AsyncConnectionPool, row: dict[str, Any], rules: dict[str, Any]
) -> uuid.UUID:
    """Queue a backtest of ``rules`` on the market the user chose, as the user."""
    inp = row["input_data"]
    params = {
        "rules": Jsonb(rules),
        "exchange": inp.get("exchange") or "binance",
        "trading_pair": inp.get("trading_pair") or "ETH/BTC",
        "timeframe": inp.get("timeframe") or "5m",
        "start_date": inp.get("start_date"),
        "end_date": inp.get("end_date"),
    }
    try:
        async with as_user(pool, row["user_id"]) as cur:
            await cur.execute(INSERT_RUN, params)
            got = await cur.fetchone()
    except (
        psycopg.errors.CheckViolation,
        psycopg.errors.RaiseException,
        psycopg.errors.DataError,
        psycopg.errors.InsufficientPrivilege,
    ) as e:
        raise Failed(
            "backtest_refused",
            f"the strategy could not be backtested: {e.diag.message_primary or e}",
        ) from e
    assert got is not None
    return uuid.UUID(str(got["id"]))


async def run_job(ctx: JobContext[AnalyzePayload], analyst: Analyst) -> dict[str, Any]:
    analysis_id = ctx.payload.analysis_id
    row = await _one(ctx.pool, START, {"id": analysis_id})
    if row is None:
        return {"analysis_id": str(analysis_id), "status": "skipped"}
    kind = str(row["analysis_type"])
    hold: credits.Transfer | None = None
    try:
        if kind not in ANALYSIS_TYPES:
            raise Failed(
                "unknown_analysis_type",
                f"unknown analysis type {kind}; expected {', '.join(ANALYSIS_TYPES)}",
            )
        generated: dict[str, Any] | None = None
        run_id: uuid.UUID | None = None
        if kind == "strategy_generation":
            description = str(row["input_data"].get("description") or "").strip()
            if not description:
                raise Failed("no_valid_strategy", "describe the strategy in input_data.description")
            figures: dict[str, Any] = {"description": description[:2000]}
            hold, price = await _hold(ctx, row, analyst, description)
            done = await analyst.draft(description)
            draft = done.output
            run_id = await _backtest(ctx.pool, row, dict(draft.rules))
            generated = {"name": draft.name, "engine": "rules", "rules": draft.rules}
            answer = Analysis(summary=draft.explanation, findings=[], suggestions=[])
            figures["backtest_run_id"] = str(run_id)
        else:
            figures = await load(ctx.pool, row)
            hold, price = await _hold(ctx, row, analyst, figures)
            done_a = await analyst.analyse(kind, figures)
            answer = done_a.output
            done = done_a  # type: ignore[assignment]
        cost = Decimal(0)
        if hold is not None:
            cost = min(credits_for(done.prompt_tokens + done.completion_tokens, price), hold.amount)
        async with ctx.pool.connection() as conn, conn.transaction():
            await conn.execute(
                FINISH,
                {
                    "id": analysis_id,
                    "summary": answer.summary,
                    "findings": Jsonb([f.model_dump() for f in answer.findings]),
                    "suggestions": Jsonb(
                        [s.model_dump(exclude_none=True) for s in answer.suggestions]
                    ),
                    "figures": Jsonb(figures),
                    "results": Jsonb(answer.model_dump(mode="json")),
                    "recommendations": [s.title for s in answer.suggestions],
                    "confidence": Decimal("1.00")
                    if done.model == offline.MODEL_NAME
                    else Decimal("0.70"),
                    "model": done.model,
                    "prompt_tokens": done.prompt_tokens,
                    "completion_tokens": done.completion_tokens,
                    "latency_ms": done.latency_ms,
                    "credits": cost,
                    "generated": None if generated is None else Jsonb(generated),
                    "run_id": run_id,
                },
            )
            if hold is not None:
                if cost > 0:
                    await credits.post(
                        conn,
                        id=credits.transfer_id(KIND, analysis_id, "post"),
                        pending_id=hold.id,
                        amount=cost,
                        metadata={"tokens": done.prompt_tokens + done.completion_tokens},
                    )
                else:
                    await credits.void(
                        conn,
                        id=credits.transfer_id(KIND, analysis_id, "void", hold.id),
                        pending_id=hold.id,
                    )
        return {
            "analysis_id": str(analysis_id),
            "status": "completed",
            "model": done.model,
            "tokens": done.prompt_tokens + done.completion_tokens,
            "credits": str(cost),
        }
    except ModelUnavailable as e:
        await _void(ctx, row, hold)
        if ctx.job.attempts < ctx.job.max_attempts:
            await _one_exec(ctx.pool, REQUEUE, {"id": analysis_id, "error": str(e)})
            raise
        await _one_exec(ctx.pool, FAIL, {"id": analysis_id, "code": e.code, "error": str(e)})
        return {"analysis_id": str(analysis_id), "status": "failed", "error": str(e)}
    except (Failed, ModelError, NotFound, offline.NoStrategy) as e:
        await _void(ctx, row, hold)
        code = getattr(e, "code", "failed")
        await _one_exec(ctx.pool, FAIL, {"id": analysis_id, "code": code, "error": str(e)})
        return {
            "analysis_id": str(analysis_id),
            "status": "failed",
            "error_code": code,
            "error": str(e),
        }
    except BaseException as e:
        await _void(ctx, row, hold)
        if isinstance(e, Exception) and ctx.job.attempts >= ctx.job.max_attempts:
            await _one_exec(
                ctx.pool,
                FAIL,
                {
                    "id": analysis_id,
                    "code": "internal_error",
                    "error": f"internal error: {type(e).__name__}",
                },
            )
        raise


async def _one_exec(pool: AsyncConnectionPool, query: str, params: dict[str, Any]) -> None:
    async with pool.connection() as conn:
        await conn.execute(query, params)


def register(
    registry: Registry, settings: AiSettings | None = None, client: ModelClient | None = None
) -> None:
    """``ai.analyze``: analyses and strategy drafts requested from the app."""
    analyst = Analyst(settings if settings is not None else AiSettings(), client)

    async def handle(ctx: JobContext[AnalyzePayload]) -> dict[str, Any]:
        return await run_job(ctx, analyst)

    registry.job(KIND, payload=AnalyzePayload, max_attempts=3, timeout_s=300)(handle)
