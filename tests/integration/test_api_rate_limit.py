"""The public API's rate limit holds under concurrency: 100 requests racing on 100 real
connections against a limit of 10 a minute admit exactly 10, and the other 90 get 429
with the figures the api function turns into Retry-After and RateLimit-* headers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg

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
