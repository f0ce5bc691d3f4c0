"""API usage reaches its owner through the fleet's periodic rollup: calls the api function
recorded become per-minute and per-day rows the owner reads, and the closed days of a
priced plan are billed once, however often the job runs."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from tests.support.db import User, request_as
from worker.credits import jobs, ledger
from worker.fleet.registry import Registry


async def available(conn: psycopg.AsyncConnection[Any], user: User) -> Decimal:
    """The user's available credits, as the app reads them."""
    async with request_as(conn, user) as cur:
        await cur.execute("select available from public.credit_balances where kind = 'user'")
        row = await cur.fetchone()
    assert row is not None
    return Decimal(row["available"])


async def test_the_rollup_is_a_periodic_job_every_minute() -> None:
    registry = Registry()
    jobs.register(registry)
    periodic = registry.periodic_jobs[jobs.API_USAGE]
    assert periodic.every == timedelta(minutes=1)
    assert periodic.kind == jobs.API_USAGE


async def test_recorded_calls_reach_their_owner_and_a_closed_day_is_billed_once(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    alice = users["alice"]
    await conn.execute(
        "insert into public.plans (name, price_monthly, max_bots, max_strategies, api_access,"
        " api_credits_per_1000_calls) values ('Metered', 1, 1, 1, true, 500)"
    )
    await conn.execute(
        "update public.subscriptions set plan_id = (select id from public.plans where name = 'Metered'),"
        " status = 'active', expires_at = now() + interval '1 day' where user_id = %s",
        (alice.id,),
    )
    await ledger.grant(
        pool, id=ledger.transfer_id("test", "api"), user_id=alice.id, amount=Decimal(10)
    )
    async with request_as(conn, alice) as cur:
        await cur.execute("select id from public.create_api_key('metered', '{bots:read}')")
        row = await cur.fetchone()
    assert row is not None
    key_id = row["id"]
    calls = [
        {
            "key_id": str(key_id),
            "user_id": str(alice.id),
            "endpoint": "GET /v1/bots",
            "status": 200,
            "latency_ms": 3,
            "at": "2026-01-02T08:00:00Z",
        }
        for _ in range(4)
    ]
    async with pool.connection() as c:
        await c.execute("select public.api_record_calls(%s)", (json.dumps(calls),))

    before = await available(conn, alice)
    assert await ledger.roll_up_api_usage(pool) == {"calls": 4, "days_billed": 1}
    assert await ledger.roll_up_api_usage(pool) == {"calls": 0, "days_billed": 0}

    async with request_as(conn, alice) as cur:
        await cur.execute("select day::text, calls, credits_charged from public.api_usage_per_day")
        days = await cur.fetchall()
    assert [(d["day"], d["calls"], d["credits_charged"]) for d in days] == [
        ("2026-01-02", 4, Decimal("2.00000000"))
    ]
    assert before - await available(conn, alice) == Decimal("2.00000000")
