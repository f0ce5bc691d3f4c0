"""Figures: the tokens and credits of each AI analysis on the demo data.

A fresh database with ``supabase/seed.sql``; as the demo users, one analysis of each kind
is requested (performance and risk of a demo bot, risk of a strategy, a backtest
explanation of a run of the demo's ETH/BTC candles, a portfolio insight, the strategy
assistant) and answered by the offline analyst through the ``ai.analyze`` job. Printed
per analysis: prompt and completion tokens (4 characters a token), the tokens a model call
would hold (the prompt and two answers at ``TRADEFLEET_AI_MAX_TOKENS``) and what the same
tokens cost on each seeded plan.

Last line: ``ai: analyses=<n> prompt_tokens=<sum> completion_tokens=<sum> hold_tokens=<sum>``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table

from tests.bench._common import bench_database
from tests.support import db as support
from worker import ai
from worker.backtest import jobs as backtest_jobs
from worker.db import open_pool
from worker.fleet.registry import Job, Registry

ALICE, BOB, CAROL = (
    "a11ce000-0000-4000-8000-000000000001",
    "b0b00000-0000-4000-8000-000000000002",
    "ca201000-0000-4000-8000-000000000003",
)
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "performance of ETH trend",
        ALICE,
        {"t": "performance", "bot": "b0700000-0000-4000-8000-000000000001"},
    ),
    ("risk of XLM RSI", BOB, {"t": "risk", "bot": "b0700000-0000-4000-8000-000000000003"}),
    (
        "risk of strategy AI momentum",
        CAROL,
        {"t": "risk", "strategy": "57a70000-0000-4000-8000-000000000004"},
    ),
    ("portfolio of Alice", ALICE, {"t": "portfolio"}),
    ("backtest explanation", ALICE, {"t": "backtest"}),
    (
        "strategy assistant",
        ALICE,
        {
            "t": "strategy_generation",
            "input": {
                "description": "Buy when RSI(14) is below 30, sell above 70, 5% stop loss",
                "trading_pair": "ETH/BTC",
                "timeframe": "5m",
                "start_date": "2018-01-12",
                "end_date": "2018-01-20",
            },
        },
    ),
]
REQUEST = """
select set_config('role', 'authenticated', true),
       set_config('request.jwt.claims', %(claims)s, true);
"""


async def _job(conn: Any, pool: Any, reg: Registry, key: str) -> Any:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select id, queue, kind, payload, attempts + 1 as attempts, max_attempts from jobs "
            "where idempotency_key = %s",
            (key,),
        )
        job = Job(**(await cur.fetchone()))
    return await reg.kinds[job.kind].handler(reg.context(job, pool, "bench"))


async def _request(conn: Any, user: str, args: dict[str, Any]) -> uuid.UUID:
    claims = json.dumps({"sub": user, "role": "authenticated"})
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(REQUEST, {"claims": claims})
        await cur.execute(
            "select id from public.request_ai_analysis(%s, %s, %s, %s, %s)",
            (
                args["t"],
                args.get("bot"),
                args.get("strategy"),
                args.get("run"),
                json.dumps(args.get("input", {})),
            ),
        )
        row = await cur.fetchone()
        await cur.execute("reset role")
    return uuid.UUID(str(row["id"]))


async def measure(url: str) -> list[dict[str, Any]]:
    import psycopg

    settings = ai.AiSettings(tradefleet_ai_model=None)
    analyst = ai.Analyst(settings)
    reg = Registry()
    ai.register(reg, settings)
    backtest_jobs.register(reg)
    pool = await open_pool(url, min_size=1, max_size=4, name="bench-ai")
    rows = []
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            cur = await conn.execute(
                "select name, (features ->> 'credits_per_1k_ai_tokens')::numeric from plans "
                "where features ? 'credits_per_1k_ai_tokens' order by sort_order"
            )
            prices = [(str(n), Decimal(p)) for n, p in await cur.fetchall()]
            async with conn.transaction():
                await conn.execute(
                    REQUEST, {"claims": json.dumps({"sub": ALICE, "role": "authenticated"})}
                )
                cur = await conn.execute(
                    "insert into backtest_runs (strategy, parameters, trading_pair, timeframe, start_date, end_date) "
                    "values ('sma_cross', '{\"fast\": 10, \"slow\": 30}', 'ETH/BTC', '5m', '2018-01-12', '2018-01-20') "
                    "returning id"
                )
                run_id = (await cur.fetchone())[0]
                await conn.execute("reset role")
            await _job(conn, pool, reg, f"backtest.run:{run_id}")
            for label, user, args in REQUESTS:
                if args["t"] == "backtest":
                    args = {**args, "run": run_id}
                analysis_id = await _request(conn, user, args)
                out = await _job(conn, pool, reg, f"ai.analyze:{analysis_id}")
                cur = await conn.execute(
                    "select status, prompt_tokens, completion_tokens, figures from ai_analyses where id = %s",
                    (analysis_id,),
                )
                status, prompt, completion, figures = await cur.fetchone()
                assert status == "completed", out
                subject = (
                    args.get("input", {}).get("description", "")
                    if args["t"] == "strategy_generation"
                    else figures
                )
                rows.append(
                    {
                        "label": label,
                        "prompt": prompt,
                        "completion": completion,
                        "hold": analyst.max_tokens(args["t"], subject),
                        "prices": prices,
                    }
                )
    finally:
        await pool.close()
    return rows


def main() -> None:
    console = Console(width=140)
    with bench_database("ai") as url:
        subprocess.run(
            [
                "psql",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                url,
                "-f",
                str(support.ROOT / "supabase" / "seed.sql"),
            ],
            check=True,
            capture_output=True,
        )
        rows = asyncio.run(measure(url))
    table = Table(
        title="AI analyses on the demo data (offline analyst; tokens at 4 characters a token)"
    )
    for col in ("analysis", "prompt", "completion", "hold (model call)"):
        table.add_column(col)
    prices = rows[0]["prices"]
    for name, _ in prices:
        table.add_column(f"credits on {name}")
    for r in rows:
        used = r["prompt"] + r["completion"]
        table.add_row(
            r["label"],
            str(r["prompt"]),
            str(r["completion"]),
            str(r["hold"]),
            *(f"{(p * used / 1000):.4f}" for _, p in prices),
        )
    console.print(table)
    console.print(
        f"ai: analyses={len(rows)} prompt_tokens={sum(r['prompt'] for r in rows)} "
        f"completion_tokens={sum(r['completion'] for r in rows)} hold_tokens={sum(r['hold'] for r in rows)}"
    )


if __name__ == "__main__":
    main()
