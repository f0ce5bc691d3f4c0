"""AI analyses end to end: an app's request -> the ai.analyze job -> a stored analysis
read through RLS, with credits held for the most tokens and posted for those used; a
description -> a backtested, saved rules strategy; bad input -> a named error on the
row, the hold voided, nothing else written."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import respx
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.support.bots import create_bot
from tests.support.db import User, request_as
from worker import ai
from worker.backtest import jobs as backtest_jobs
from worker.credits import ledger
from worker.fleet.registry import Job, Registry

BASE = "http://llm.test/v1"
PERIOD = {"start_date": "2018-01-12T00:00:00Z", "end_date": "2018-01-20T00:00:00Z"}
ANSWER = {
    "summary": "Two closed trades, one win; the bot has no stop-loss.",
    "findings": [
        {
            "severity": "high",
            "title": "No stop-loss",
            "detail": "stop_loss_pct is null",
            "figure": "stop_loss_pct",
        }
    ],
    "suggestions": [
        {
            "title": "Use a 5% stop",
            "detail": "caps the loss",
            "target": "bot",
            "parameters": {"stop_loss": 5, "fast": 4},
        }
    ],
}


def completion(
    content: str, prompt_tokens: int = 1500, completion_tokens: int = 500
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1765000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def model_settings() -> ai.AiSettings:
    return ai.AiSettings(
        tradefleet_ai_base_url=BASE,
        tradefleet_ai_api_key="sk-test",
        tradefleet_ai_model="gpt-4o-mini",
        tradefleet_ai_max_retries=0,
    )


def registry(settings: ai.AiSettings | None = None) -> Registry:
    reg = Registry()
    ai.register(reg, settings or ai.AiSettings(tradefleet_ai_model=None))
    backtest_jobs.register(reg)
    return reg


async def request(
    conn: psycopg.AsyncConnection[Any], user: User, kind: str, **args: Any
) -> uuid.UUID:
    """What the app sends: ``POST /rest/v1/rpc/request_ai_analysis``."""
    async with request_as(conn, user) as cur:
        await cur.execute(
            "select id from request_ai_analysis(%(t)s, %(bot)s, %(strategy)s, %(run)s, %(input)s)",
            {
                "t": kind,
                "bot": args.get("bot"),
                "strategy": args.get("strategy"),
                "run": args.get("run"),
                "input": json.dumps(args.get("input", {})),
            },
        )
        row = await cur.fetchone()
    assert row is not None
    return uuid.UUID(str(row["id"]))


async def run_job(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, reg: Registry, key: str
) -> Any:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select id, queue, kind, payload, attempts + 1 as attempts, max_attempts from jobs where idempotency_key = %s",
            (key,),
        )
        rows = await cur.fetchall()
    assert len(rows) == 1, f"one job for {key}"
    job = Job(**rows[0])
    return await reg.kinds[job.kind].handler(reg.context(job, pool, "test"))


async def analysis(
    conn: psycopg.AsyncConnection[Any], user: User, analysis_id: uuid.UUID
) -> dict[str, Any] | None:
    """The row as its owner reads it through PostgREST (RLS)."""
    async with request_as(conn, user) as cur:
        await cur.execute("select * from ai_analyses where id = %s", (analysis_id,))
        return await cur.fetchone()


async def closed_trades(conn: psycopg.AsyncConnection[Any], user: User, bot_id: str) -> None:
    for i, profit in enumerate(("0.002", "-0.001")):
        await conn.execute(
            "insert into trades (bot_id, user_id, exchange, trading_pair, side, amount, price, exit_price, profit, "
            "status, entry_time, exit_time) values (%s, %s, 'binance', 'ETH/BTC', 'buy', 1, 0.1, 0.1, %s, 'closed', "
            "now() - make_interval(hours => %s + 2), now() - make_interval(hours => %s))",
            (bot_id, user.id, Decimal(profit), i * 3, i * 3),
        )


async def test_a_requested_review_is_answered_stored_beside_its_figures_and_charged_per_token(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], pool: AsyncConnectionPool
) -> None:
    alice, bob = users["alice"], users["bob"]
    await conn.execute(
        "update plans set features = features || '{\"credits_per_1k_ai_tokens\": 0.5}' where name = 'Free'"
    )
    await ledger.grant(
        pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(50), reference_type="test"
    )
    bot = await create_bot(conn, alice, status="stopped")
    await closed_trades(conn, alice, bot)
    before = await ledger.balance(pool, user_id=alice.id)
    assert before is not None

    analysis_id = await request(conn, alice, "performance", bot=bot)
    row = await analysis(conn, alice, analysis_id)
    assert row is not None and row["status"] == "queued"

    with respx.mock:
        route = respx.post(f"{BASE}/chat/completions").mock(
            return_value=httpx.Response(200, json=completion(json.dumps(ANSWER)))
        )
        out = await run_job(conn, pool, registry(model_settings()), f"ai.analyze:{analysis_id}")
        prompt = json.loads(route.calls[0].request.content)["messages"][1]["content"]
    assert out["status"] == "completed"
    # Only alice's own figures went into the prompt, computed by the platform.
    assert '"closed_trades": 2' in prompt and '"win_rate": 50.0' in prompt
    assert str(bob.id) not in prompt and "sk-test" not in prompt

    row = await analysis(conn, alice, analysis_id)
    assert row is not None
    assert row["status"] == "completed" and row["summary"] == ANSWER["summary"]
    assert row["findings"][0]["severity"] == "high"
    assert row["figures"]["closed_trades"] == 2 and row["figures"]["stop_loss_pct"] is None
    assert (
        row["model_used"],
        row["prompt_tokens"],
        row["completion_tokens"],
        row["tokens_used"],
    ) == ("gpt-4o-mini-2024-07-18", 1500, 500, 2000)
    # 2,000 tokens at 0.5 credits per 1,000: exactly 1 credit charged, nothing left held.
    assert row["credits_charged"] == Decimal(1)
    after = await ledger.balance(pool, user_id=alice.id)
    assert after is not None
    assert before.balance - after.balance == Decimal(1) and after.held == 0
    assert await analysis(conn, bob, analysis_id) is None

    # The suggestion applies in one call, under alice's own grants.
    async with request_as(conn, alice) as cur:
        await cur.execute("select apply_ai_suggestion(%s, 0) as applied", (analysis_id,))
        await cur.execute("select stop_loss, parameters from bots where id = %s", (bot,))
        applied = await cur.fetchone()
    assert applied is not None and applied["stop_loss"] == 5 and applied["parameters"]["fast"] == 4


async def test_a_description_becomes_a_backtested_strategy_the_user_saves(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], pool: AsyncConnectionPool
) -> None:
    alice = users["alice"]
    await ledger.grant(
        pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(100), reference_type="test"
    )
    await conn.execute("update plans set custom_strategies = true where name = 'Free'")
    reg = registry()
    description = "Buy when RSI drops below 30 and sell above 70, 5% stop loss"
    analysis_id = await request(
        conn,
        alice,
        "strategy_generation",
        input={"description": description, "trading_pair": "ETH/BTC", "timeframe": "5m", **PERIOD},
    )
    out = await run_job(conn, pool, reg, f"ai.analyze:{analysis_id}")
    assert out["status"] == "completed", out
    row = await analysis(conn, alice, analysis_id)
    assert row is not None and row["model_used"] == ai.MODEL_NAME and row["credits_charged"] == 0
    assert row["generated_strategy"]["rules"]["stop_loss"] == 0.05
    run_id = row["result_backtest_run_id"]
    assert run_id is not None

    done = await run_job(conn, pool, reg, f"backtest.run:{run_id}")
    assert done["status"] == "completed"
    async with request_as(conn, alice) as cur:
        await cur.execute(
            "select id, total_trades, stats from backtest_results where run_id = %s", (run_id,)
        )
        result = await cur.fetchone()
        assert result is not None and "sharpe_ratio" in result["stats"]
        await cur.execute("select figures from ai_analyses where id = %s", (analysis_id,))
        reported = await cur.fetchone()
        # The backtest's metrics came back to the analysis (Realtime shows the change).
        assert reported is not None
        assert reported["figures"]["backtest"]["result_id"] == str(result["id"])
        assert reported["figures"]["backtest"]["total_trades"] == result["total_trades"]
        await cur.execute("select save_ai_strategy(%s, 'My RSI') as id", (analysis_id,))
        saved = await cur.fetchone()
        assert saved is not None
        await cur.execute(
            "select name, strategy_type, engine from strategies where id = %s", (saved["id"],)
        )
        strategy = await cur.fetchone()
        await cur.execute("select content from get_strategy_content(%s)", (saved["id"],))
        content = await cur.fetchone()
    assert strategy == {"name": "My RSI", "strategy_type": "ai_generated", "engine": "rules"}
    assert (
        content is not None and json.loads(content["content"]) == row["generated_strategy"]["rules"]
    )


@pytest.mark.parametrize(
    ("kind", "body", "code"),
    [
        ("strategy_generation", None, "no_valid_strategy"),
        ("performance", "not json at all", "invalid_output"),
    ],
)
async def test_bad_input_is_a_named_error_on_the_row_and_the_hold_is_voided(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    kind: str,
    body: str | None,
    code: str,
) -> None:
    alice = users["alice"]
    await conn.execute(
        "update plans set features = features || '{\"credits_per_1k_ai_tokens\": 0.5}' where name = 'Free'"
    )
    await ledger.grant(
        pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(50), reference_type="test"
    )
    before = await ledger.balance(pool, user_id=alice.id)
    bot = await create_bot(conn, alice, status="stopped")
    if kind == "strategy_generation":
        analysis_id = await request(conn, alice, kind, input={"description": "make me rich, fast"})
        out = await run_job(conn, pool, registry(), f"ai.analyze:{analysis_id}")
    else:
        analysis_id = await request(conn, alice, kind, bot=bot)
        with respx.mock:
            respx.post(f"{BASE}/chat/completions").mock(
                return_value=httpx.Response(200, json=completion(body or ""))
            )
            out = await run_job(conn, pool, registry(model_settings()), f"ai.analyze:{analysis_id}")
    assert out["status"] == "failed"
    row = await analysis(conn, alice, analysis_id)
    assert row is not None
    assert (row["status"], row["error_code"]) == ("failed", code)
    assert (
        row["summary"] is None and row["findings"] == [] and row["result_backtest_run_id"] is None
    )
    after = await ledger.balance(pool, user_id=alice.id)
    assert before is not None and after is not None
    assert (after.balance, after.held) == (before.balance, 0)
    assert await conn.execute("select count(*) from backtest_runs") is not None
    cur = await conn.execute("select count(*) from backtest_runs")
    assert (await cur.fetchone()) == (0,)


async def test_the_monthly_plan_limit_and_the_rate_limit_are_named_errors(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    alice = users["alice"]
    await conn.execute(
        "update plans set ai_requests_per_month = 1, features = features || '{\"ai_requests_per_minute\": 100}' "
        "where name = 'Free'"
    )
    await request(conn, alice, "portfolio")
    with pytest.raises(
        psycopg.errors.CheckViolation, match="the Free plan allows 1 AI requests a month"
    ):
        await request(conn, alice, "portfolio")
    await conn.execute(
        "update plans set ai_requests_per_month = null, features = features || '{\"ai_requests_per_minute\": 1}' "
        "where name = 'Free'"
    )
    bob = users["bob"]
    await request(conn, bob, "portfolio")
    with pytest.raises(psycopg.Error, match="rate limited: at most 1 AI requests a minute") as e:
        await request(conn, bob, "portfolio")
    assert e.value.sqlstate == "PT429"


@pytest.mark.parametrize(
    ("kind", "whose_bot", "code"),
    [("optimization", "alice", "unknown_analysis_type"), ("risk", "bob", "not_found")],
)
async def test_a_row_the_fleet_cannot_analyse_fails_with_a_named_error(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    kind: str,
    whose_bot: str,
    code: str,
) -> None:
    """Rows written by other means than the RPC (a service, an import) are checked again:
    the figures are read under the requester's RLS, so another user's bot is not found."""
    alice = users["alice"]
    bot = await create_bot(conn, users[whose_bot], status="stopped")
    cur = await conn.execute(
        "insert into ai_analyses (user_id, bot_id, analysis_type, input_data) "
        "values (%s, %s, %s, '{}') returning id",
        (alice.id, bot, kind),
    )
    got = await cur.fetchone()
    assert got is not None
    analysis_id = got[0]
    out = await run_job(conn, pool, registry(), f"ai.analyze:{analysis_id}")
    assert out["status"] == "failed"
    row = await analysis(conn, alice, analysis_id)
    assert row is not None
    assert (row["status"], row["error_code"], row["summary"], row["figures"]) == (
        "failed",
        code,
        None,
        {},
    )
