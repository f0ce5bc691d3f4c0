"""The worker's Prometheus metrics (``prometheus_client``), served at ``/metrics`` by
:mod:`worker.fleet.probes` when ``METRICS_PORT`` is set.

Counted as things happen in this process:

- ``tradefleet_jobs_claimed_total{kind}``: jobs this worker claimed;
- ``tradefleet_jobs_succeeded_total{kind}``, ``tradefleet_jobs_failed_total{kind}`` (an
  attempt failed and the job will run again) and ``tradefleet_jobs_dead_total{kind}`` (it
  failed for good), as written to the queue;
- ``tradefleet_job_duration_seconds{kind}``: how long handlers ran (histogram);
- ``tradefleet_candle_close_to_persisted_seconds``: from a candle close to the bots' steps
  of that close stored (histogram, seconds of the bots' clock; capabilities observe it).

Read when scraped (:meth:`FleetMetrics.refresh`):

- ``tradefleet_bots_leased``: bots this worker holds a lease on;
- ``tradefleet_db_pool_connections{pool,state}`` (``size``, ``available``, ``max``) and
  ``tradefleet_db_pool_requests_waiting{pool}``: the worker's connection pools;
- ``tradefleet_queue_lag_seconds{queue}``: age of the oldest job ready to run in each of
  this worker's queues (0 when none waits);
- ``tradefleet_webhook_event_lag_seconds``: age of the oldest webhook event the fleet has
  not processed yet (received or failed; 0 when none).

The lags are fleet-wide figures every worker reports (take ``max`` across workers); if the
database does not answer within a second they are left out of that scrape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from psycopg_pool import AsyncConnectionPool

LAG_QUERY = """
select q.queue,
       coalesce(extract(epoch from now() - (
         select min(j.run_at) from public.jobs j
          where j.status = 'queued' and j.queue = q.queue and j.run_at <= now())), 0)::float8
  from unnest(%(queues)s::text[]) q(queue)
"""
WEBHOOK_LAG_QUERY = """
select coalesce(extract(epoch from now() - min(e.received_at)), 0)::float8
  from public.webhook_events e where e.status in ('received', 'failed')
"""
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
CANDLE_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)

# No *_created series: Prometheus does not need them and they double every counter.
disable_created_metrics()  # type: ignore[no-untyped-call]


class FleetMetrics:
    """The metrics of one worker process, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs_claimed = Counter(
            "tradefleet_jobs_claimed", "Jobs claimed by this worker.", ["kind"], registry=r
        )
        self.jobs_succeeded = Counter(
            "tradefleet_jobs_succeeded", "Jobs this worker completed.", ["kind"], registry=r
        )
        self.jobs_failed = Counter(
            "tradefleet_jobs_failed",
            "Failed attempts that will run again (after backoff).",
            ["kind"],
            registry=r,
        )
        self.jobs_dead = Counter(
            "tradefleet_jobs_dead", "Jobs that failed for good (status dead).", ["kind"], registry=r
        )
        self.job_duration = Histogram(
            "tradefleet_job_duration_seconds",
            "How long job handlers ran, whatever their outcome.",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.candle_close_to_persisted = Histogram(
            "tradefleet_candle_close_to_persisted_seconds",
            "From a candle close to the bots' steps of that close stored.",
            buckets=CANDLE_BUCKETS,
            registry=r,
        )
        self.bots_leased = Gauge(
            "tradefleet_bots_leased", "Bots this worker holds a lease on.", registry=r
        )
        self.pool_connections = Gauge(
            "tradefleet_db_pool_connections",
            "Connections of the worker's pools: size (open), available (idle), max.",
            ["pool", "state"],
            registry=r,
        )
        self.pool_waiting = Gauge(
            "tradefleet_db_pool_requests_waiting",
            "Requests waiting for a connection of the pool.",
            ["pool"],
            registry=r,
        )
        self.queue_lag = Gauge(
            "tradefleet_queue_lag_seconds",
            "Age of the oldest job ready to run in the queue (0 when none waits).",
            ["queue"],
            registry=r,
        )
        self.webhook_lag = Gauge(
            "tradefleet_webhook_event_lag_seconds",
            "Age of the oldest webhook event not processed yet (0 when none).",
            registry=r,
        )

    def count_outcome(self, kind: str, status: str | None) -> None:
        """Count a failed attempt by the status the queue gave the job."""
        (self.jobs_dead if status == "dead" else self.jobs_failed).labels(kind).inc()

    async def refresh(
        self,
        pools: Mapping[str, AsyncConnectionPool | None],
        queues: Sequence[str],
        bots_leased: int,
        timeout_s: float = 1.0,
    ) -> None:
        """Set the gauges read at scrape time."""
        self.bots_leased.set(bots_leased)
        for name, pool in pools.items():
            if pool is None:
                continue
            stats = pool.get_stats()
            self.pool_connections.labels(name, "size").set(stats.get("pool_size", 0))
            self.pool_connections.labels(name, "available").set(stats.get("pool_available", 0))
            self.pool_connections.labels(name, "max").set(stats.get("pool_max", 0))
            self.pool_waiting.labels(name).set(stats.get("requests_waiting", 0))
        pool = pools.get("main")
        if pool is None:
            return
        self.queue_lag.clear()
        self.webhook_lag.set(0)
        try:
            async with asyncio.timeout(timeout_s):
                async with pool.connection(timeout=timeout_s) as conn:
                    cur = await conn.execute(LAG_QUERY, {"queues": list(queues)})
                    for queue, lag in await cur.fetchall():
                        self.queue_lag.labels(queue).set(lag)
                    cur = await conn.execute(WEBHOOK_LAG_QUERY)
                    row = await cur.fetchone()
                    self.webhook_lag.set(row[0] if row else 0)
        except Exception:  # the database is away: the scrape still answers, without lags
            self.queue_lag.clear()
            self.webhook_lag.set(float("nan"))

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = FleetMetrics()
"""This process's metrics: one worker per process, so one set."""
