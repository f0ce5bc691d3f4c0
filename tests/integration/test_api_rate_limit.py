"""The rate limits hold under concurrency: 100 requests racing on 100 real connections
against a limit of 10 a minute admit exactly 10 — per user and per key in the public API
(the other 90 get 429 with the figures the api function turns into Retry-After and
RateLimit-* headers), and per user for PostgREST's expensive writes (the pre-request
hook)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from tests.support import db as support

REQUESTS = 100
LIMIT = 10


async def api_key(conn: psycopg.AsyncConnection[Any], user_id: str) -> str:
    """A key of the user's, created the way an app creates one (as the signed-in user)."""
    claims = json.dumps({"sub": user_id, "role": "authenticated"})
    async with conn.transaction():
        await conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        await conn.execute("set local role authenticated")
        row = await (
            await conn.execute("select key from public.create_api_key('race', '{bots:read}')")
        ).fetchone()
    assert row is not None
    return str(row[0])


async def test_racing_requests_admit_exactly_the_limit(
    conn: psycopg.AsyncConnection[Any], db_url: str
) -> None:
    user = await support.create_user(conn, "racer@test.local")
    await conn.execute(
        "insert into public.plans (name, price_monthly, max_bots, max_strategies, api_access,"
        " features) values ('Race', 1, 1, 1, true, %s)",
        (json.dumps({"api_requests_per_minute": LIMIT}),),
    )
    await conn.execute(
        "update public.subscriptions set plan_id = (select id from public.plans where name = 'Race'),"
        " status = 'active', expires_at = now() + interval '1 day' where user_id = %s",
        (user.id,),
    )
    key = await api_key(conn, str(user.id))

    connections = [
        await psycopg.AsyncConnection.connect(db_url, autocommit=True) for _ in range(REQUESTS)
    ]
    try:
        for c in connections:
            await c.execute("set role service_role")
        start = asyncio.Event()

        async def request(c: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
            await start.wait()
            row = await (
                await c.execute(
                    "select public.api_authorize(%s, 'bots:read', '198.51.100.1')", (key,)
                )
            ).fetchone()
            assert row is not None
            return dict(row[0])

        tasks = [asyncio.create_task(request(c)) for c in connections]
        await asyncio.sleep(0.1)
        start.set()
        answers = await asyncio.gather(*tasks)
    finally:
        for c in connections:
            await c.close()

    statuses = [a["status"] for a in answers]
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == REQUESTS - LIMIT
    refused = [a for a in answers if a["status"] == 429]
    assert all(a["limit"] == LIMIT and a["remaining"] == 0 for a in refused)
    assert all(1 <= a["retry_after"] <= 60 for a in refused)
    # What each admitted request was told is left counts down to nothing (each reads the
    # limiter at its own transaction's start, so two may round to the same figure).
    admitted = [a["remaining"] for a in answers if a["status"] == 200]
    assert min(admitted) == 0 and all(0 <= r < LIMIT for r in admitted)

    # The next request is refused too: the 90 refusals did not move the limiter.
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
        await c.execute("set role service_role")
        row = await (
            await c.execute("select public.api_authorize(%s, 'bots:read')", (key,))
        ).fetchone()
    assert row is not None and row[0]["status"] == 429


async def on_plan(
    conn: psycopg.AsyncConnection[Any], user_id: Any, features: dict[str, Any]
) -> None:
    """Put the user on a new plan with API access and these features."""
    name = f"Race {uuid.uuid4()}"
    await conn.execute(
        "insert into public.plans (name, price_monthly, max_bots, max_strategies, api_access,"
        " features) values (%s, 1, 1, 1, true, %s)",
        (name, json.dumps(features)),
    )
    await conn.execute(
        "update public.subscriptions set plan_id = (select id from public.plans where name = %s),"
        " status = 'active', expires_at = now() + interval '1 day' where user_id = %s",
        (name, user_id),
    )


async def race(
    db_url: str, role: str, attempt: Callable[[psycopg.AsyncConnection[Any]], Any]
) -> list[Any]:
    """REQUESTS calls of ``attempt``, each on its own connection acting as ``role``, released at once."""
    connections = [
        await psycopg.AsyncConnection.connect(db_url, autocommit=True) for _ in range(REQUESTS)
    ]
    try:
        for c in connections:
            await c.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        start = asyncio.Event()

        async def request(c: psycopg.AsyncConnection[Any]) -> Any:
            await start.wait()
            return await attempt(c)

        tasks = [asyncio.create_task(request(c)) for c in connections]
        await asyncio.sleep(0.1)
        start.set()
        return list(await asyncio.gather(*tasks))
    finally:
        for c in connections:
            await c.close()


async def test_racing_requests_on_one_key_admit_exactly_the_key_limit(
    conn: psycopg.AsyncConnection[Any], db_url: str
) -> None:
    user = await support.create_user(conn, "key-racer@test.local")
    await on_plan(
        conn, user.id, {"api_requests_per_minute": 1000, "api_key_requests_per_minute": LIMIT}
    )
    key = await api_key(conn, str(user.id))
    other = await api_key(conn, str(user.id))

    async def authorize(c: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
        row = await (
            await c.execute("select public.api_authorize(%s, 'bots:read')", (key,))
        ).fetchone()
        assert row is not None
        return dict(row[0])

    answers = await race(db_url, "service_role", authorize)
    statuses = [a["status"] for a in answers]
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == REQUESTS - LIMIT
    assert all("api_key_requests_per_minute" in a["error"] for a in answers if a["status"] == 429)
    # The user's own bucket took only the admitted ten: the user's other key still passes.
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
        await c.execute("set role service_role")
        row = await (
            await c.execute("select public.api_authorize(%s, 'bots:read')", (other,))
        ).fetchone()
    assert row is not None and row[0]["status"] == 200
    # 11 requests of 1000 a minute hold the user's bucket 0.66 s ahead; 101 would hold it 6 s.
    ahead = await (
        await conn.execute(
            "select extract(epoch from tat - clock_timestamp()) from private.rate_limit_buckets"
            " where bucket = %s",
            (f"api:user:{user.id}",),
        )
    ).fetchone()
    assert ahead is not None and float(ahead[0]) < 1.0


async def test_racing_writes_through_postgrest_admit_exactly_the_write_limit(
    conn: psycopg.AsyncConnection[Any], db_url: str
) -> None:
    """PostgREST runs db_pre_request before each request; 100 racing POSTs to /backtest_runs
    against a limit of 10 a minute: exactly 10 runs are queued, 90 get 429."""
    user = await support.create_user(conn, "backtester@test.local")
    await on_plan(
        conn,
        user.id,
        {"write_requests_per_minute": {"backtest_runs": LIMIT}, "max_concurrent_backtests": 1000},
    )
    await conn.execute(
        "update public.plans set backtest_minutes_per_month = 10000"
        " where id = (select plan_id from public.subscriptions where user_id = %s)",
        (user.id,),
    )

    async def run(c: psycopg.AsyncConnection[Any]) -> str:
        try:
            async with support.request_as(c, user, path="/backtest_runs") as cur:
                await cur.execute(
                    "insert into public.backtest_runs (strategy, trading_pair, timeframe)"
                    " values ('rsi', 'BTC/USDT', '1h')"
                )
        except psycopg.Error as e:
            assert e.sqlstate == "PGRST", e
            assert e.diag.message_detail is not None
            detail = json.loads(e.diag.message_detail)
            assert detail["status"] == 429 and int(detail["headers"]["Retry-After"]) >= 1
            assert detail["headers"]["RateLimit-Limit"] == str(LIMIT)
            return "refused"
        return "written"

    outcomes = await race(db_url, "postgres", run)
    assert outcomes.count("written") == LIMIT
    assert outcomes.count("refused") == REQUESTS - LIMIT
    row = await (
        await conn.execute(
            "select count(*) from public.backtest_runs where user_id = %s", (user.id,)
        )
    ).fetchone()
    assert row is not None and row[0] == LIMIT
