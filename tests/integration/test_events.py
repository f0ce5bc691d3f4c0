"""Wake-ups (LISTEN/NOTIFY and Supabase Realtime) and the poll that makes them optional."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from tests.fakes.fake_realtime import FakeRealtime
from tests.support.fleet import fleet_settings, job_status, worker_running
from tests.support.waiting import wait_for
from worker.fleet import queue
from worker.fleet.events import EventSource, ListenNotifySource, RealtimeSource, Wake
from worker.fleet.registry import JobContext, Payload, Periodic, Registry
from worker.fleet.runtime import Worker
from worker.fleet.scheduler import enqueue_periodic


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


class Echo(Payload):
    n: int | None = None


async def ok(ctx: JobContext[Echo]) -> dict[str, Any]:
    return {"echo": ctx.payload.model_dump(exclude_unset=True)}


def registry_with_ok() -> Registry:
    r = Registry()
    r.job("test.ok", payload=Echo)(ok)
    return r


async def test_lost_notifications_never_lose_a_job(
    pool: AsyncConnectionPool, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    w = Worker(fleet_settings(db_url), registry_with_ok(), event_source=Silent())
    async with worker_running(w):
        job_id = await queue.enqueue(pool, "test.ok", {"n": 1})
        await job_status(conn, job_id, "succeeded", limit_s=3)  # found by the poll
    cur = await conn.execute("select result from jobs where id = %s", (job_id,))
    assert await cur.fetchone() == ({"echo": {"n": 1}},)


async def test_notified_worker_starts_jobs_well_before_the_poll(
    pool: AsyncConnectionPool, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    w = Worker(fleet_settings(db_url, poll_interval_s=30), registry_with_ok())
    async with worker_running(w):
        source = w.event_source
        assert isinstance(source, ListenNotifySource)
        await wait_for("the LISTEN session", lambda: _is_set(source.connected))
        for _ in range(5):
            job_id = await queue.enqueue(pool, "test.ok")
            assert await job_status(conn, job_id, "succeeded", limit_s=2) < 1.0


async def _is_set(event: asyncio.Event) -> bool:
    return event.is_set()


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
        s = fleet_settings(
            db_url,
            poll_interval_s=30,
            event_source="realtime",
            supabase_url=fake.url,
            supabase_service_role_key="service-key",
        )
        w = Worker(s, registry_with_ok())
        assert isinstance(w.event_source, RealtimeSource)
        async with worker_running(w):
            await asyncio.wait_for(w.event_source.connected.wait(), 5)
            job_id = await queue.enqueue(pool, "test.ok")
            assert await job_status(conn, job_id, "succeeded", limit_s=3) < 2.0
        assert fake.events_sent >= 1
