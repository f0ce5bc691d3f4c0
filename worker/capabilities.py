"""Every capability's ``register(registry)``, called by the composition root (``tradefleet worker``).

Add one line per capability package that defines job kinds, periodic jobs or side tasks.
"""

from __future__ import annotations

from worker.fleet.registry import Registry


def register_all(registry: Registry) -> None:
    from worker import billing, bots, notify, signals
    from worker.backtest import jobs as backtest_jobs
    from worker.backtest.settings import BacktestSettings
    from worker.bots.settings import BotsSettings
    from worker.credits import jobs as credit_jobs
    from worker.fleet import builtin
    from worker.holdings import jobs as holdings_jobs
    from worker.holdings.settings import HoldingsSettings
    from worker.notify.settings import NotifySettings

    builtin.register(registry)
    credit_jobs.register(registry)
    bots.register(registry, BotsSettings())
    billing.register(registry)
    signals.register(registry)
    notify.register(registry, NotifySettings())
    holdings_jobs.register(registry, HoldingsSettings())
    backtest_jobs.register(registry, BacktestSettings())
