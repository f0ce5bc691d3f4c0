"""The operators' side of the fleet: service health every 30 seconds (``ops.health``,
:mod:`worker.ops.health`) and operator alerts (``ops.alerts``, :mod:`worker.ops.alerts`),
both periodic jobs run once across the fleet. Settings: :class:`OpsSettings`; the
SnapTrade, Alpaca and Telegram credentials are those of their capabilities."""

from __future__ import annotations

import httpx

from worker.fleet.registry import Registry
from worker.holdings import HoldingsSettings
from worker.notify import NotifySettings

from . import alerts, health
from .alerts import ChannelSender, Firing, Sender, WebhookChannel, channel_sender, evaluate
from .health import Check, Outcome, Services, check_all, run_check
from .settings import RULES, OpsSettings

__all__ = [
    "RULES",
    "ChannelSender",
    "Check",
    "Firing",
    "OpsSettings",
    "Outcome",
    "Sender",
    "Services",
    "WebhookChannel",
    "channel_sender",
    "check_all",
    "evaluate",
    "register",
    "run_check",
]


def register(
    registry: Registry,
    settings: OpsSettings,
    *,
    holdings: HoldingsSettings | None = None,
    notify: NotifySettings | None = None,
    exchanges: bool | None = None,
    sender: Sender | None = None,
) -> None:
    """``ops.health`` and ``ops.alerts``. ``exchanges``: whether exchanges are checked when
    ``HEALTH_EXCHANGES`` is unset (the composition root: unless candles are replayed)."""
    notify = notify if notify is not None else NotifySettings()
    check_exchanges = settings.health_exchanges
    if check_exchanges is None:
        check_exchanges = True if exchanges is None else exchanges
    health.register(
        registry,
        Services(
            settings,
            holdings if holdings is not None else HoldingsSettings(),
            notify,
            check_exchanges,
        ),
    )
    if sender is None:
        token = notify.telegram_bot_token
        sender = channel_sender(
            settings,
            httpx.AsyncClient(headers={"user-agent": "tradefleet-alerts"}, timeout=10.0),
            token.get_secret_value() if token else None,
            notify.telegram_api_url,
        )
    alerts.register(registry, settings, sender)
