"""Signals: providers' signals reach their subscribers.

Publishing a signal (PostgREST insert, or a TradingView alert) queues ``signals.fanout``;
``public.signal_fan_out`` then copies it onto every auto-executing subscriber's paper bot
in one set-based pass and notifies everyone subscribed; ``signals.renew`` charges strategy
subscriptions month by month (revenue share through the credit ledger).
"""

from __future__ import annotations

from datetime import timedelta

from worker.fleet.registry import Registry

from .jobs import Fanout, Renew, fan_out, handle_fanout, handle_renew
from .settings import SignalsSettings

__all__ = ["SignalsSettings", "fan_out", "register"]


def register(registry: Registry, settings: SignalsSettings) -> None:
    registry.job("signals.fanout", payload=Fanout, max_attempts=10, timeout_s=300)(handle_fanout)
    registry.job("signals.renew", payload=Renew, max_attempts=3, timeout_s=300)(handle_renew)
    registry.every(
        "signals.renew", timedelta(seconds=settings.signals_renew_interval_s), "signals.renew"
    )
