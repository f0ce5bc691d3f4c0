"""Every capability's ``register(registry)``, called by the composition root (``tradefleet worker``).

Add one line per capability package that defines job kinds, periodic jobs or side tasks.
"""

from __future__ import annotations

from worker.fleet.registry import Registry


def register_all(registry: Registry) -> None:
    from worker.fleet import builtin

    builtin.register(registry)

    from worker import bots

    bots.register(registry)

    from worker import billing, notify, signals

    billing.register(registry)
    signals.register(registry)
    notify.register(registry)
    from worker.backtest import jobs as backtest_jobs
    backtest_jobs.register(registry)
