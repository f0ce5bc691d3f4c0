"""The fleet runtime: durable job queue, wake-ups, bot leases, scheduler, worker process.

Capabilities use it through :mod:`worker.fleet.registry` only::

    class Settle(Payload):                                  # the job's payload model
        user_id: UUID

    def register(registry: Registry, settings: CreditSettings) -> None:  # worker.capabilities
        @registry.job("credits.settle", payload=Settle, max_attempts=5, timeout_s=60)
        async def settle(ctx: JobContext[Settle]) -> dict:  # idempotent; raise Retryable/Fatal
            ... ctx.payload.user_id ...
        registry.every("credits.expire_holds", timedelta(minutes=5), "credits.expire_holds")
        registry.side_task("signals.stream", run_stream)    # (pool, worker_id) -> awaitable
        registry.lease_task("bots.runner", run_bots)        # (LeaseManager) -> awaitable

and enqueue work with :meth:`Registry.enqueue <worker.fleet.registry.Registry.enqueue>`
(validated), :func:`worker.fleet.queue.enqueue` or SQL ``public.enqueue_job``.
Modules: ``settings`` (FleetSettings), ``queue`` (SQL wrappers), ``workers``, ``leases``
(LeaseManager), ``events`` (LISTEN/NOTIFY, Realtime), ``scheduler`` (apscheduler),
``runtime`` (Worker), ``logs``, ``builtin`` (the fleet's own kinds), ``retention``
(the periodic history cleanup).
"""
