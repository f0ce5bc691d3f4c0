"""The composition root's list of capabilities: each gets its own settings (a
pydantic-settings class beside it, read from the environment here) at registration.

A capability module exposes ``register(registry, settings)``; add one line per capability
package that defines job kinds, periodic jobs or side tasks. Modules named by
``WORKER_EXTRA_CAPABILITIES`` are loaded the same way: ``register`` and, if it has
settings, a ``Settings`` class.
"""

from __future__ import annotations

import importlib
from typing import Any

from worker.errors import ConfigError
from worker.fleet.registry import Registry
from worker.fleet.settings import FleetSettings, RetentionSettings, load_settings


def register_all(registry: Registry, fleet: FleetSettings) -> None:
    """Register every capability, then the extra modules ``fleet`` names."""
    from worker import billing, bots, notify, signals
    from worker.backtest import jobs as backtest_jobs
    from worker.backtest.settings import BacktestSettings
    from worker.billing.settings import BillingSettings
    from worker.bots.settings import BotsSettings
    from worker.credits import jobs as credit_jobs
    from worker.fleet import builtin, retention
    from worker.holdings import jobs as holdings_jobs
    from worker.holdings.settings import HoldingsSettings
    from worker.notify.settings import NotifySettings
    from worker.signals.settings import SignalsSettings

    builtin.register(registry)
    retention.register(registry, load_settings(RetentionSettings))
    credit_jobs.register(registry)
    bots.register(registry, load_settings(BotsSettings))
    billing.register(registry, load_settings(BillingSettings))
    signals.register(registry, load_settings(SignalsSettings))
    notify.register(registry, load_settings(NotifySettings))
    holdings_jobs.register(registry, load_settings(HoldingsSettings))
    backtest_jobs.register(registry, load_settings(BacktestSettings))
    for name in fleet.worker_extra_capabilities:
        register_module(registry, name)


def register_module(registry: Registry, name: str) -> None:
    """Load the capability module ``name`` (its ``Settings`` too, if it has one)."""
    try:
        module: Any = importlib.import_module(name)
    except ImportError as e:
        raise ConfigError(
            f"WORKER_EXTRA_CAPABILITIES names {name!r}, which fails to import: {e}"
        ) from e
    settings_class = getattr(module, "Settings", None)
    if settings_class is None:
        module.register(registry)
    else:
        module.register(registry, load_settings(settings_class))
