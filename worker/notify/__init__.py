"""Notifications out of the database: Telegram and Discord for users who opted in.

Rows in ``public.notifications`` are the source (apps read them live through Realtime);
inserting one for an opted-in user queues a ``notify.deliver`` job (trigger in SQL).
``TELEGRAM_BOT_TOKEN`` (:class:`NotifySettings`) enables Telegram.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from worker.fleet.registry import Registry

from .channels import Channel, Delivery, DiscordChannel, TelegramChannel
from .deliver import Outbound, deliver
from .jobs import Deliver, deliver_notifications, make_handler
from .settings import NotifySettings

__all__ = [
    "Channel",
    "Delivery",
    "DiscordChannel",
    "NotifySettings",
    "Outbound",
    "TelegramChannel",
    "default_channels",
    "deliver",
    "deliver_notifications",
    "register",
]


def default_channels(settings: NotifySettings) -> Mapping[str, Channel]:
    """Channels configured by ``settings``, sharing one HTTP client."""
    http = httpx.AsyncClient(headers={"user-agent": "tradefleet-notify"}, timeout=10.0)
    token = settings.telegram_bot_token
    return {
        "telegram": TelegramChannel(
            http,
            token.get_secret_value() if token else None,
            base_url=settings.telegram_api_url.rstrip("/"),
        ),
        "discord": DiscordChannel(http),
    }


def register(
    registry: Registry,
    settings: NotifySettings | Mapping[str, Channel] | None = None,
) -> None:
    """``notify.deliver``: deliver notifications through the channels of ``settings`` (built
    on the first job), or through the ``channels`` given (tests)."""
    if settings is not None and not isinstance(settings, NotifySettings):
        registry.job("notify.deliver", payload=Deliver, max_attempts=8, timeout_s=120)(
            make_handler(settings)
        )
        return
    config = settings if settings is not None else NotifySettings()
    built: list[Mapping[str, Channel]] = []

    def channels() -> Mapping[str, Channel]:
        if not built:
            built.append(default_channels(config))
        return built[0]

    registry.job("notify.deliver", payload=Deliver, max_attempts=8, timeout_s=120)(
        make_handler(channels)
    )
