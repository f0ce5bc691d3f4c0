"""The fleet runtime: durable job queue, wake-ups, bot leases, scheduler, worker process.

Capabilities use it through :mod:`worker.fleet.registry` only::

    def register(registry: Registry) -> None:               # called by worker.capabilities
        @registry.job("credits.settle", max_attempts=5, timeout_s=60)
        async def settle(ctx: JobContext) -> dict:          # idempotent; raise Retryable/Fatal
            ...
        registry.every("credits.expire_holds", timedelta(minutes=5), "credits.expire_holds")
        registry.side_task("signals.stream", run_stream)    # (pool, worker_id) -> awaitable
        registry.lease_task("bots.runner", run_bots)        # (LeaseManager) -> awaitable

and enqueue work with :func:`worker.fleet.queue.enqueue` (or SQL ``public.enqueue_job``).
Modules: ``queue`` (SQL wrappers), ``workers``, ``leases`` (LeaseManager), ``events``
(LISTEN/NOTIFY, Realtime), ``scheduler`` (apscheduler), ``runtime`` (Worker), ``pool``,
``logs``, ``builtin`` (the fleet's own kinds).
"""
