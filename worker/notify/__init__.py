"""Notifications out of the database: Telegram and Discord for users who opted in.

Rows in ``public.notifications`` are the source (apps read them live through Realtime);
inserting one for an opted-in user queues a ``notify.deliver`` job (trigger in SQL).
``TELEGRAM_BOT_TOKEN`` enables Telegram.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

import httpx

from worker.fleet.registry import Registry

from .channels import Channel, DiscordChannel, TelegramChannel
from .deliver import Outbound, deliver
from .jobs import Deliver, deliver_notifications, make_handler

__all__ = ["Outbound", "default_channels", "deliver", "deliver_notifications", "register"]


@cache
def default_channels() -> Mapping[str, Channel]:
    """Channels from the environment, sharing one HTTP client (built on first use)."""
    http = httpx.AsyncClient(headers={"user-agent": "tradefleet-notify"}, timeout=10.0)
    return {
        "telegram": TelegramChannel(http, os.environ.get("TELEGRAM_BOT_TOKEN")),
        "discord": DiscordChannel(http),
    }


def register(registry: Registry, channels: Mapping[str, Channel] | None = None) -> None:
    registry.job("notify.deliver", payload=Deliver, max_attempts=8, timeout_s=120)(
        make_handler(channels if channels is not None else default_channels)
    )
