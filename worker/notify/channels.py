"""Outbound channels (Telegram, Discord) over one httpx ``AsyncClient``, with retries.

Each send ends in one of three outcomes: ``sent``; ``failed`` (permanent: a 4xx other than
429, a bad address, a channel not configured) or ``retry`` (still failing after the
attempts: network errors, 5xx, rate limits), which the job turns into a later retry.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx

from worker.errors import Retryable
from worker.retry import retry

Status = Literal["sent", "failed", "retry"]
Sleep = Callable[[float], Awaitable[None]]

DISCORD_URL = re.compile(
    r"^https://(ptb\.|canary\.)?(discord|discordapp)\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]+$"
)
MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class Delivery:
    status: Status
    attempts: int
    error: str | None = None


class _Again(Retryable):
    """The send may succeed if tried again (network error, 5xx, rate limit)."""


class Channel(Protocol):
    name: str

    async def send(self, address: str, text: str) -> Delivery: ...


class _HttpChannel:
    name = "http"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        attempts: int = 3,
        backoff_s: float = 0.5,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.http = http
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.sleep = sleep

    def _retry_after(self, response: httpx.Response) -> float | None:
        try:
            body = response.json()
        except ValueError:
            body = {}
        value = None
        if isinstance(body, dict):
            value = body.get("retry_after") or (body.get("parameters") or {}).get("retry_after")
        value = value or response.headers.get("retry-after")
        try:
            return min(float(value), MAX_RETRY_AFTER_S) if value is not None else None
        except (TypeError, ValueError):
            return None

    async def _post(self, url: str, payload: dict[str, object]) -> Delivery:
        tries = 0

        async def once() -> Delivery:
            nonlocal tries
            tries += 1
            try:
                response = await self.http.post(url, json=payload, timeout=10.0)
            except httpx.HTTPError as e:
                raise _Again(f"{type(e).__name__}: {e}") from e
            if response.is_success:
                return Delivery("sent", tries)
            error = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code == 429:
                raise _Again(error, retry_after=self._retry_after(response))
            if response.status_code < 500:
                return Delivery("failed", tries, error)
            raise _Again(error)

        try:
            return await retry(
                once,
                attempts=self.attempts,
                base=self.backoff_s,
                maximum=MAX_RETRY_AFTER_S,
                jitter=0.0,
                sleep=self.sleep,
                describe=f"{self.name} delivery",
                retry_on=_Again,
            )
        except _Again as e:
            return Delivery("retry", self.attempts, str(e))


class TelegramChannel(_HttpChannel):
    """Bot API ``sendMessage`` to the user's chat id."""

    name = "telegram"

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str | None,
        *,
        base_url: str = "https://api.telegram.org",
        **kw: object,
    ) -> None:
        super().__init__(http, **kw)  # type: ignore[arg-type]
        self.token = token
        self.base_url = base_url

    async def send(self, address: str, text: str) -> Delivery:
        if not self.token:
            return Delivery("failed", 0, "telegram is not configured (TELEGRAM_BOT_TOKEN)")
        return await self._post(
            f"{self.base_url}/bot{self.token}/sendMessage",
            {"chat_id": address, "text": text[:4096], "disable_web_page_preview": True},
        )


class DiscordChannel(_HttpChannel):
    """An incoming webhook of the user's Discord channel."""

    name = "discord"

    async def send(self, address: str, text: str) -> Delivery:
        if not DISCORD_URL.match(address):
            return Delivery("failed", 0, "not a Discord webhook URL")
        return await self._post(
            address, {"content": text[:2000], "allowed_mentions": {"parse": []}}
        )
