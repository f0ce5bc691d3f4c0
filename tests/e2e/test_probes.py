"""A real ``tradefleet worker`` with METRICS_PORT: /metrics counts what it did, /readyz
says 503 while it drains or while its database is away, /healthz stays alive."""

from __future__ import annotations

import asyncio
import math
import signal
import socket
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.db import create_user
from tests.support.processes import Cluster, Fleet, free_port, scalar
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"http://127.0.0.1:{port}{path}")


async def scrape(port: int) -> Samples:
    response = await get(port, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def answers(port: int, path: str, status: int, reason: str | None = None) -> bool:
    try:
        response = await get(port, path)
    except httpx.HTTPError:
        return False
    if response.status_code != status:
        return False
    return reason is None or reason in response.json().get("reason", "")


def start(fleet: Fleet, name: str, **env: str) -> int:
    port = free_port()
    fleet.start(name, METRICS_PORT=str(port), METRICS_HOST="127.0.0.1", **env)
    return port


async def test_metrics_count_the_jobs_bots_and_lags_of_a_worker(fleet: Fleet) -> None:
    url = fleet.url
    port = start(fleet, "probed")
    await wait_for("the worker to be ready", lambda: answers(port, "/readyz", 200), limit_s=30)
    before = await scrape(port)
    assert sample(before, "tradefleet_jobs_claimed_total", kind="fleet.record") == 0

    await scalar(
        url,
        "select count(*) from enqueue_jobs('fleet.record', array_fill('{}'::jsonb, array[5]))",
    )
    await scalar(url, """select enqueue_job('fleet.fail', '{"mode": "fatal"}')""")
    await scalar(
        url, """select enqueue_job('fleet.fail', '{"mode": "retryable"}', p_max_attempts => 2)"""
    )
    # Work nobody here takes, waiting for a minute; a webhook event waiting for two.
    await scalar(
        url,
        "select enqueue_job('test.nobody', '{}', 'default', now() - interval '60 seconds')",
    )
    await scalar(
        url,
        "insert into webhook_events (provider, event_id, event_type, payload, received_at) "
        "values ('alpaca', 'waiting', 't', '{}', now() - interval '120 seconds') returning 1",
    )
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        owner = await create_user(c, f"probed-{uuid.uuid4().hex[:6]}@test.local")
        await c.execute("set session_replication_role = replica")
        await c.execute(
            "insert into bots (user_id, name, exchange, trading_pair, timeframe, strategy,"
            " initial_balance, current_balance, stake_amount, status) select %s, 'bot ' || g,"
            " 'binance', 'ETH/BTC', '5m', 'sma_cross', 1, 1, 0.1, 'running'"
            " from generate_series(1, 3) g",
            (owner.id,),
        )

    async def settled() -> bool:
        n = await scalar(
            url,
            "select count(*) from jobs where kind in ('fleet.record', 'fleet.fail')"
            " and status in ('succeeded', 'dead')",
        )
        return int(n) == 7

    await wait_for("the jobs to settle", settled, limit_s=30)

    async def scraped_all() -> bool:
        s = await scrape(port)
        return (
            sample(s, "tradefleet_jobs_succeeded_total", kind="fleet.record") == 5
            and sample(s, "tradefleet_jobs_dead_total", kind="fleet.fail") == 2
            and sample(s, "tradefleet_bots_leased") == 3
        )

    await wait_for("the outcomes to be counted", scraped_all, limit_s=15)
    after = await scrape(port)
    assert sample(after, "tradefleet_jobs_claimed_total", kind="fleet.record") == 5
    assert sample(after, "tradefleet_jobs_claimed_total", kind="fleet.fail") == 3
    assert sample(after, "tradefleet_jobs_failed_total", kind="fleet.fail") == 1
    assert sample(after, "tradefleet_job_duration_seconds_count", kind="fleet.record") == 5
    assert sample(after, "tradefleet_job_duration_seconds_count", kind="fleet.fail") == 3
    assert sample(after, "tradefleet_db_pool_connections", pool="main", state="max") > 0
    assert sample(after, "tradefleet_db_pool_connections", pool="main", state="size") > 0
    assert sample(after, "tradefleet_queue_lag_seconds", queue="default") >= 60
    assert sample(after, "tradefleet_webhook_event_lag_seconds") >= 120
    assert ("tradefleet_candle_close_to_persisted_seconds_count", frozenset()) in after


async def test_readyz_is_503_while_the_worker_drains(fleet: Fleet) -> None:
    url = fleet.url
    port = start(fleet, "drainer", DRAIN_TIMEOUT_S="30")
    await wait_for("the worker to be ready", lambda: answers(port, "/readyz", 200), limit_s=30)
    await scalar(url, """select enqueue_job('fleet.record', '{"sleep_s": 60}')""")

    async def running() -> bool:
        return int(await scalar(url, "select count(*) from fleet_test_runs")) == 1

    await wait_for("the long job to start", running)
    fleet.procs["drainer"].send_signal(signal.SIGTERM)
    await wait_for("readyz to say draining", lambda: answers(port, "/readyz", 503, "draining"))
    assert await answers(port, "/healthz", 200)
    assert fleet.procs["drainer"].poll() is None  # still draining, still answering


async def test_readyz_is_503_while_the_database_is_away(
    own_cluster: Cluster, tmp_path: Any
) -> None:
    fleet = Fleet(own_cluster.url, tmp_path)
    try:
        port = start(fleet, "cut-off")
        await wait_for("the worker to be ready", lambda: answers(port, "/readyz", 200), limit_s=30)
        await asyncio.to_thread(own_cluster.stop)
        await wait_for(
            "readyz to say the database is away",
            lambda: answers(port, "/readyz", 503, "database unreachable"),
        )
        assert await answers(port, "/healthz", 200)
        away = await scrape(port)  # metrics still answer, without the lags
        assert ("tradefleet_queue_lag_seconds", frozenset({("queue", "default")})) not in away
        assert math.isnan(sample(away, "tradefleet_webhook_event_lag_seconds"))
        await asyncio.to_thread(own_cluster.start)
        await wait_for(
            "the worker to be ready again", lambda: answers(port, "/readyz", 200), limit_s=30
        )
        assert fleet.procs["cut-off"].poll() is None
    finally:
        fleet.stop_all()


async def test_a_port_in_use_is_one_line_and_exit_code_2(fleet: Fleet) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = fleet.start("clash", METRICS_PORT=str(port), METRICS_HOST="127.0.0.1")
        assert await asyncio.to_thread(proc.wait, 60) == 2
    assert fleet.log("clash").strip().splitlines()[-1] == (
        f"tradefleet worker: METRICS_PORT={port} cannot be served on 127.0.0.1: "
        "Address already in use; choose a free port for each worker"
    )
