"""The composition root's list of capabilities: each gets its own settings (a
pydantic-settings class beside it, read from the environment here) at registration.

A capability module exposes ``register(registry, settings)``; add one line per capability
package that defines job kinds, periodic jobs or side tasks. Modules named by
``WORKER_EXTRA_CAPABILITIES`` are loaded the same way: ``register`` and, if it has
settings, a ``Settings`` class.

Optional parts (master keys, SnapTrade, Alpaca market data, Telegram) switch off when their
settings are missing: :func:`parts_off` names each, the worker logs one warning line per
part at start, and the periodic jobs of a part that is off are not scheduled.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worker.errors import ConfigError
from worker.fleet.registry import Registry
from worker.fleet.settings import FleetSettings, RetentionSettings, load_settings

if TYPE_CHECKING:
    from pydantic import SecretStr

    from worker.holdings.settings import HoldingsSettings
    from worker.notify.settings import NotifySettings

log = logging.getLogger("tradefleet.capabilities")


@dataclass(frozen=True)
class PartOff:
    """An optional part of the worker that is off because its settings are missing."""

    part: str
    missing: tuple[str, ...]  # the environment variables to set
    off: str  # what does not happen meanwhile
    periodic: tuple[str, ...] = ()  # its periodic jobs, not scheduled

    @property
    def message(self) -> str:
        names = " and ".join(self.missing)
        verb = "is" if len(self.missing) == 1 else "are"
        unscheduled = f"; not scheduled: {', '.join(self.periodic)}" if self.periodic else ""
        return f"{self.part} is off: {names} {verb} not set, so {self.off}{unscheduled}"


def _unset(**values: str | SecretStr | None) -> tuple[str, ...]:
    """The names (upper-cased) of the settings among ``values`` that are missing or blank."""
    missing = []
    for name, value in values.items():
        text = value if isinstance(value, str) or value is None else value.get_secret_value()
        if not (text or "").strip():
            missing.append(name.upper())
    return tuple(missing)


def parts_off(holdings: HoldingsSettings, notify: NotifySettings) -> list[PartOff]:
    """The optional parts whose settings are missing, each with what it switches off."""
    parts = []
    if not holdings.sealing.configured:
        parts.append(
            PartOff(
                "master keys",
                ("TRADEFLEET_MASTER_KEYS",),
                "live bots cannot open their exchange keys and brokerage holdings are not "
                "synced (SnapTrade and Alpaca accounts)",
                ("holdings.nightly",),
            )
        )
    if missing := _unset(
        snaptrade_client_id=holdings.snaptrade_client_id,
        snaptrade_consumer_key=holdings.snaptrade_consumer_key,
    ):
        parts.append(
            PartOff(
                "SnapTrade",
                missing,
                "SnapTrade connections are not synced and orders are not routed to them",
            )
        )
    if missing := _unset(
        alpaca_data_key_id=holdings.alpaca_data_key_id,
        alpaca_data_secret=holdings.alpaca_data_secret,
    ):
        parts.append(
            PartOff(
                "Alpaca market data",
                missing,
                "stocks held in brokerages are not priced (bot markets still are, from candles)",
            )
        )
    if missing := _unset(telegram_bot_token=notify.telegram_bot_token):
        parts.append(
            PartOff(
                "Telegram",
                missing,
                "notifications are not sent to Telegram (Discord still gets them)",
            )
        )
    return parts


def register_all(registry: Registry, fleet: FleetSettings) -> None:
    """Register every capability, then the extra modules ``fleet`` names."""
    from worker import ai, billing, bots, notify, ops, signals
    from worker.backtest import jobs as backtest_jobs
    from worker.backtest.settings import BacktestSettings
    from worker.billing.settings import BillingSettings
    from worker.bots import markets_refresh_on
    from worker.bots.settings import BotsSettings
    from worker.credits import jobs as credit_jobs
    from worker.data import jobs as data_jobs
    from worker.exchanges.settings import ExchangesSettings
    from worker.fleet import builtin, retention
    from worker.holdings import jobs as holdings_jobs
    from worker.holdings.settings import HoldingsSettings
    from worker.notify.settings import NotifySettings
    from worker.signals.settings import SignalsSettings

    holdings = load_settings(HoldingsSettings)
    notify_settings = load_settings(NotifySettings)
    off = parts_off(holdings, notify_settings)
    for part in off:
        log.warning(
            part.message,
            extra={"action": "part_off", "part": part.part, "missing": list(part.missing)},
        )

    builtin.register(registry)
    retention.register(registry, load_settings(RetentionSettings))
    credit_jobs.register(registry)
    bots_settings = load_settings(BotsSettings)
    bots.register(registry, bots_settings)
    billing.register(registry, load_settings(BillingSettings))
    signals.register(registry, load_settings(SignalsSettings))
    notify.register(registry, notify_settings)
    holdings_jobs.register(registry, holdings)
    backtest_jobs.register(registry, load_settings(BacktestSettings))
    data_jobs.register(registry, load_settings(ExchangesSettings))
    ai.register(registry, load_settings(ai.AiSettings))
    ops.register(
        registry,
        load_settings(ops.OpsSettings),
        holdings=holdings,
        notify=notify_settings,
        exchanges=markets_refresh_on(bots_settings),
    )
    for part in off:
        for name in part.periodic:
            registry.unschedule(name)
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
