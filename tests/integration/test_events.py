"""Wake-ups (LISTEN/NOTIFY and Supabase Realtime) and the poll that makes them optional."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.fakes.fake_realtime import FakeRealtime
from worker.config import Settings
from worker.db import open_pool
from worker.fleet import queue
from worker.fleet.events import EventSource, ListenNotifySource, RealtimeSource, Wake
from worker.fleet.registry import JobContext, Periodic, Registry
from worker.fleet.runtime import Worker
from worker.fleet.scheduler import enqueue_periodic


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    p = await open_pool(db_url, max_size=3, name="test-events")
    try:
        yield p
    finally:
        await p.close()


class Wakes:
    def __init__(self) -> None:
        self.got: list[str | None] = []
        self.changed = asyncio.Event()

    def __call__(self, queue_name: str | None) -> None:
        self.got.append(queue_name)
        self.changed.set()

    async def until(self, pred: Callable[[list[str | None]], bool], limit_s: float = 5.0) -> None:
        async with asyncio.timeout(limit_s):
            while not pred(self.got):
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def running(source: EventSource, wake: Wake) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(wake))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_listen_notify_wakes_per_queue_and_survives_a_killed_connection(
    pool: AsyncConnectionPool, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    wakes = Wakes()
    source = ListenNotifySource(db_url, retry_max_s=0.2)
    async with running(source, wakes):
        await wakes.until(lambda g: None in g)  # connected: "poll now"
        await queue.enqueue(pool, "fleet.noop", queue="slow")
        await wakes.until(lambda g: "slow" in g)
        await conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where application_name = 'tradefleet-listen' and datname = current_database()"
        )
        await wakes.until(lambda g: g.count(None) >= 2)  # reconnected, and polls what it missed
        await queue.enqueue(pool, "fleet.noop", queue="after")
        await wakes.until(lambda g: "after" in g)


async def test_realtime_source_joins_postgres_changes_and_wakes_on_job_inserts(
    pool: AsyncConnectionPool, db_url: str
) -> None:
    async with FakeRealtime(db_url, api_key="service-key") as fake:
        wakes = Wakes()
        source = RealtimeSource(fake.url, "service-key", retry_max_s=0.2)
        async with running(source, wakes):
            await wakes.until(lambda g: None in g)
            join = fake.joins[0]
            assert join["config"]["postgres_changes"] == [
                {"event": "INSERT", "schema": "public", "table": "jobs"}
            ]
            assert join["access_token"] == "service-key"
            await queue.enqueue(pool, "fleet.noop", queue="realtime-q")
            await wakes.until(lambda g: "realtime-q" in g)
            assert fake.heartbeats >= 1  # the client heartbeats and the server answers

            await fake.drop_connections()  # an outage: the source reconnects and rejoins
            await wakes.until(lambda g: g.count(None) >= 2, limit_s=10)
            assert fake.connections >= 2
            await queue.enqueue(pool, "fleet.noop", queue="after-outage")
            await wakes.until(lambda g: "after-outage" in g)


class Silent:
    """An event source whose notifications are all lost."""

    name = "silent"

    async def run(self, wake: Wake) -> None:
        await asyncio.Event().wait()


def settings(db_url: str, **over: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": db_url,
        "worker_name": "in-process",
        "poll_interval_s": 0.3,
        "lease_ttl_s": 3,
        "sweep_interval_s": 0.5,
        "job_lock_s": 5,
        "drain_timeout_s": 1,
        "job_backoff_base_s": 0.05,
    }
    return Settings(_env_file=None, **{**base, **over})  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def worker_running(w: Worker) -> AsyncIterator[Worker]:
    task = asyncio.create_task(w.run())
    try:
        yield w
    finally:
        w.request_stop()
        async with asyncio.timeout(10):
            assert await task == 0


async def until_status(
    conn: psycopg.AsyncConnection[Any], job_id: int, status: str, limit_s: float = 5.0
) -> float:
    start = time.monotonic()
    async with asyncio.timeout(limit_s):
        while True:
            cur = await conn.execute("select status from jobs where id = %s", (job_id,))
            if await cur.fetchone() == (status,):
                return time.monotonic() - start
            await asyncio.sleep(0.02)


def registry_with(kind: str, handler: Callable[[JobContext], Awaitable[Any]]) -> Registry:
    r = Registry()
    r.job(kind)(handler)
    return r


async def ok(ctx: JobContext) -> dict[str, Any]:
    return {"echo": ctx.job.payload}


async def test_lost_notifications_never_lose_a_job(
    pool: AsyncConnectionPool, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    w = Worker(settings(db_url), registry_with("test.ok", ok), event_source=Silent())
    async with worker_running(w):
        job_id = await queue.enqueue(pool, "test.ok", {"n": 1})
        await until_status(conn, job_id, "succeeded", limit_s=3)  # found by the poll
    cur = await conn.execute("select result from jobs where id = %s", (job_id,))
    assert await cur.fetchone() == ({"echo": {"n": 1}},)


async def test_notified_worker_starts_jobs_well_before_the_poll(
    pool: AsyncConnectionPool, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    w = Worker(settings(db_url, poll_interval_s=30), registry_with("test.ok", ok))
    async with worker_running(w):
        await asyncio.sleep(0.5)  # let it connect its LISTEN session and do its first poll
        for _ in range(5):
            job_id = await queue.enqueue(pool, "test.ok")
            assert await until_status(conn, job_id, "succeeded", limit_s=2) < 1.0


async def test_periodic_job_is_enqueued_once_per_period_by_many_workers(
    pool: AsyncConnectionPool,
) -> None:
    p = Periodic("nightly", "fleet.noop", timedelta(hours=1))
    ids = await asyncio.gather(*(enqueue_periodic(pool, p) for _ in range(5)))
    assert len(set(ids)) == 1


async def test_worker_configured_for_realtime_is_woken_through_it(
    pool: AsyncConnectionPool, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    async with FakeRealtime(db_url, api_key="service-key") as fake:
        s = settings(
            db_url,
            poll_interval_s=30,
            event_source="realtime",
            supabase_url=fake.url,
            supabase_service_role_key="service-key",
        )
        w = Worker(s, registry_with("test.ok", ok))
        assert isinstance(w.event_source, RealtimeSource)
        async with worker_running(w):
            await asyncio.wait_for(w.event_source.connected.wait(), 5)
            job_id = await queue.enqueue(pool, "test.ok")
            assert await until_status(conn, job_id, "succeeded", limit_s=3) < 2.0
        assert fake.events_sent >= 1
