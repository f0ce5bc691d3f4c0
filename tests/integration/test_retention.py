"""Retention: the periodic fleet.prune deletes exactly the history older than its keeps, in
batches that never wait for rows others hold, while bots go on writing logs."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.support.db import create_user
from tests.support.fleet import fleet_settings, worker_running
from tests.support.waiting import wait_for
from worker.fleet import retention
from worker.fleet.queue import Job
from worker.fleet.registry import Registry
from worker.fleet.runtime import Worker
from worker.fleet.settings import RetentionSettings

OLD_LOGS = 900
# History on both sides of each default keep (30, 30, 90, 7, 7 and 30 days).
HISTORY = [
    """
    insert into bot_logs (user_id, log_level, message, created_at)
    select %(u)s, 'info', 'old', now() - interval '31 days' - n * interval '1 second'
      from generate_series(1, %(n)s) n
    """,
    """
    select private.create_history_partition('bot_logs', now() - interval '40 days')
    """,
    """
    insert into bot_logs (user_id, log_level, message, created_at)
    select %(u)s, 'info', 'old day', now() - interval '40 days' + n * interval '1 second'
      from generate_series(1, 5) n
    """,
    """
    insert into bot_logs (user_id, log_level, message, created_at)
    values (%(u)s, 'info', 'recent', now() - interval '29 days'),
           (%(u)s, 'info', 'recent', now() - interval '1 hour')
    """,
    """
    insert into webhook_events (provider, event_id, event_type, payload, status, received_at, processed_at)
    values ('alpaca', 'processed-old', 't', '{}', 'processed', now() - interval '40 days', now() - interval '31 days'),
           ('alpaca', 'ignored-old', 't', '{}', 'ignored', now() - interval '40 days', now() - interval '31 days'),
           ('alpaca', 'failed-old', 't', '{}', 'failed', now() - interval '40 days', now() - interval '31 days'),
           ('alpaca', 'received-old', 't', '{}', 'received', now() - interval '40 days', null),
           ('alpaca', 'processed-recent', 't', '{}', 'processed', now() - interval '40 days', now() - interval '29 days')
    """,
    """
    insert into notifications (user_id, kind, title, created_at, read_at)
    values (%(u)s, 'system', 'read-old', now() - interval '100 days', now() - interval '91 days'),
           (%(u)s, 'system', 'unread-old', now() - interval '100 days', null),
           (%(u)s, 'system', 'read-recent', now() - interval '100 days', now() - interval '89 days')
    """,
    """
    insert into jobs (kind, payload, status, created_at, finished_at)
    values ('test.history', '{"n": "succeeded-old"}', 'succeeded', now() - interval '9 days', now() - interval '8 days'),
           ('test.history', '{"n": "cancelled-old"}', 'cancelled', now() - interval '9 days', now() - interval '8 days'),
           ('test.history', '{"n": "dead-old"}', 'dead', now() - interval '9 days', now() - interval '8 days'),
           ('test.history', '{"n": "succeeded-recent"}', 'succeeded', now() - interval '9 days', now() - interval '6 days')
    """,
    """
    insert into service_checks (service, target, status, ok, latency_ms, error, checked_at)
    values ('stripe', '', 'down', false, 5000, 'check-old', now() - interval '8 days'),
           ('exchange', 'binance', 'healthy', true, 80, 'check-old', now() - interval '7 days 1 minute'),
           ('stripe', '', 'healthy', true, 90, 'check-recent', now() - interval '6 days')
    """,
    """
    select private.create_history_partition('api_usage_minutes', now() - interval '40 days')
    """,
    """
    with k as (
      insert into api_keys (user_id, name, environment, prefix, key_hash, scopes)
      values (%(u)s, 'usage', 'live', 'tf_live_usage001', decode('0badc0de', 'hex'), '{bots:read}')
      returning id
    )
    insert into api_usage_minutes (key_id, user_id, minute, endpoint, status, calls, latency_ms_sum, latency_ms_max)
    select k.id, %(u)s, date_trunc('minute', m.at), m.endpoint, 200, 1, 5, 5
      from k, (values (date_trunc('day', now() - interval '40 days') + interval '1 hour', 'old-day'),
                      (date_trunc('day', now() - interval '40 days') + interval '2 hours', 'old-day'),
                      (now() - interval '31 days', 'old'),
                      (now() - interval '31 days 1 minute', 'old'),
                      (now() - interval '29 days', 'recent'),
                      (now() - interval '1 hour', 'recent')) m(at, endpoint)
    """,
]


def settings(**over: Any) -> RetentionSettings:
    base: dict[str, Any] = {"retention_batch": 50, "retention_pause_s": 0}
    return RetentionSettings(_env_file=None, **{**base, **over})  # type: ignore[call-arg]


async def fill_history(conn: psycopg.AsyncConnection[Any], user_id: Any) -> None:
    """History on both sides of each default keep (30, 30, 90, 7, 7 and 30 days)."""
    for statement in HISTORY:
        await conn.execute(statement, {"u": user_id, "n": OLD_LOGS})


async def names(conn: psycopg.AsyncConnection[Any], query: str) -> list[str]:
    cur = await conn.execute(query)
    return sorted(str(r[0]) for r in await cur.fetchall())


async def test_the_periodic_prune_deletes_exactly_the_old_history_while_a_bot_logs(
    db_url: str, conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool
) -> None:
    user = await create_user(conn, "logger@test.local")
    await fill_history(conn, user.id)
    registry = Registry()
    retention.register(registry, settings())
    written = 0
    stop = asyncio.Event()

    async def bot_writing_logs() -> None:
        nonlocal written
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
            while not stop.is_set():
                await c.execute(
                    "insert into bot_logs (user_id, log_level, message) values (%s, 'info', 'live')",
                    (user.id,),
                )
                written += 1
                await asyncio.sleep(0.002)

    async def pruned() -> bool:
        cur = await conn.execute(
            "select result from jobs where kind = 'fleet.prune' and status = 'succeeded'"
        )
        return await cur.fetchone() is not None

    writer = asyncio.create_task(bot_writing_logs())
    try:
        async with worker_running(Worker(fleet_settings(db_url), registry)):
            await wait_for("the periodic fleet.prune to succeed", pruned, limit_s=60)
    finally:
        stop.set()
        await writer

    cur = await conn.execute("select result from jobs where kind = 'fleet.prune'")
    assert await cur.fetchall() == [
        (
            {
                "deleted": {
                    "bot_logs": OLD_LOGS,
                    "webhook_events": 2,
                    "notifications": 1,
                    "jobs": 2,
                    "service_checks": 2,
                    "api_usage_minutes": 2,
                },
                # Webhook events and notifications this old wait in their `_kept` partition.
                "partitions_dropped": {
                    "bot_logs": 1,
                    "webhook_events": 0,
                    "notifications": 0,
                    "api_usage_minutes": 1,
                },
                "unfinished": [],
            },
        )
    ]
    assert written > 0
    cur = await conn.execute(
        "select message, count(*) from bot_logs where user_id = %s group by 1 order by 1",
        (user.id,),
    )
    assert await cur.fetchall() == [("live", written), ("recent", 2)]
    assert await names(conn, "select event_id from webhook_events") == [
        "failed-old",
        "processed-recent",
        "received-old",
    ]
    assert await names(conn, "select title from notifications") == ["read-recent", "unread-old"]
    assert await names(conn, "select payload ->> 'n' from jobs where kind = 'test.history'") == [
        "dead-old",
        "succeeded-recent",
    ]
    assert await names(conn, "select error from service_checks") == ["check-recent"]
    # Per-minute API usage: the whole old day and the old minutes went, the per-day rows
    # (none here) are not touched.
    assert await names(conn, "select endpoint from api_usage_minutes") == ["recent", "recent"]


async def test_rows_another_transaction_holds_are_skipped_not_waited_for(
    db_url: str, conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool
) -> None:
    user = await create_user(conn, "holder@test.local")
    await fill_history(conn, user.id)
    async with await psycopg.AsyncConnection.connect(db_url) as holder:
        cur = await holder.execute(
            "select id from bot_logs where message = 'old' order by created_at limit 1 for update"
        )
        held = await cur.fetchone()
        # A safety net only: a prune that waited for the lock would never return.
        deleted, done = await asyncio.wait_for(
            retention.prune_history(pool, "bot_logs", 30 * 86400, batch=100), 30
        )
        assert (deleted, done) == (OLD_LOGS - 1, True)
        await holder.rollback()
    cur = await conn.execute("select id from bot_logs where message = 'old'")
    assert await cur.fetchall() == [held]
    assert await retention.prune_history(pool, "bot_logs", 30 * 86400, batch=100) == (1, True)


async def test_a_run_stops_between_batches_at_its_deadline_and_the_next_goes_on(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool
) -> None:
    user = await create_user(conn, "deadline@test.local")
    await fill_history(conn, user.id)
    assert await retention.prune_history(pool, "bot_logs", 30 * 86400, batch=100, deadline=0.0) == (
        100,
        False,
    )
    assert await retention.prune_history(pool, "bot_logs", 30 * 86400, batch=100) == (
        OLD_LOGS - 100,
        True,
    )


async def test_bad_keeps_are_named_errors(pool: AsyncConnectionPool) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="keep must be positive"):
        await retention.prune_history(pool, "jobs", 0)
    with pytest.raises(ValueError, match="bot_logs_keep_s"):
        settings(bot_logs_keep_s=-1)


async def test_the_partitions_job_creates_what_is_due_and_says_so(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, caplog: pytest.LogCaptureFixture
) -> None:
    # Partitions come due as days pass: a week further ahead than the migrations made.
    await conn.execute(
        "update private.history_partitions set ahead = ahead + interval '7 days' where table_name = 'bot_logs'"
    )
    registry = Registry()
    retention.register(registry, settings())
    job = Job(
        id=1, queue="default", kind="fleet.partitions", payload={}, attempts=1, max_attempts=3
    )
    with caplog.at_level("INFO"):
        result = await registry.kinds["fleet.partitions"].handler(
            registry.context(job, pool, "test")
        )
    assert result["created"] >= 1
    logged = [r for r in caplog.records if r.getMessage() == "history partitions created"]
    assert [getattr(r, "partitions_created", None) for r in logged] == [result["created"]]
