"""The one interface every holdings provider implements, and the errors it raises."""

from __future__ import annotations

import asyncio
import email.utils
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

import httpx

from worker.errors import Fatal, Retryable
from worker.holdings.models import BrokerageAccount, PositionsSnapshot
from worker.retry import backoff_delay, retry

# httpx logs every request URL at INFO; SnapTrade puts the user secret in the query string.
logging.getLogger("httpx").setLevel(logging.WARNING)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, repr=False)
class ProviderCredentials:
    """Who we are at the provider for one connection: the provider's user id (SnapTrade) or
    key id (Alpaca), and the secret that goes with it. Never prints the secret."""

    user_id: str
    secret: str

    def __repr__(self) -> str:
        return f"ProviderCredentials(user_id={self.user_id!r}, secret='***')"

    __str__ = __repr__


class ProviderRejected(Fatal):
    """The provider refused a request for this connection (4xx other than 429): bad or
    revoked credentials, unknown account, invalid order. Retrying will not help."""

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def connection_broken(self) -> bool:
        return self.status in (401, 403)


class HoldingsProvider(Protocol):
    name: str

    async def accounts(self, creds: ProviderCredentials) -> list[BrokerageAccount]: ...

    async def positions(
        self, creds: ProviderCredentials, provider_account_id: str
    ) -> PositionsSnapshot: ...


@runtime_checkable
class CashProvider(Protocol):
    """A provider that reports an account's cash apart from its listing (SnapTrade's balances)."""

    async def account_cash(
        self, creds: ProviderCredentials, provider_account_id: str, currency: str
    ) -> Decimal | None: ...


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is None:
            return None
        return max(0.0, (parsed - datetime.now(UTC)).total_seconds())


def _error_message(provider: str, response: httpx.Response) -> tuple[str, str | None]:
    detail: str | None = None
    code: str | None = None
    try:
        body = response.json()
        if isinstance(body, dict):
            raw = body.get("detail") or body.get("message") or body.get("error")
            detail = None if raw is None else str(raw)
            code = None if body.get("code") is None else str(body.get("code"))
    except ValueError:
        detail = response.text[:200] or None
    return f"{provider} answered {response.status_code}: {detail or response.reason_phrase}", code


class _TryAgain(Retryable):
    """Worth another try now: the provider is unreachable, rate-limits or is syncing."""

    def __init__(self, message: str, *, retry_after: float | None = None, busy: bool) -> None:
        super().__init__(message, retry_after=retry_after)
        self.busy = busy


async def send_with_retries(
    provider: str,
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    attempts: int = 4,
    base_delay: float = 0.5,
    max_delay: float = 20.0,
    sleep: Sleep = asyncio.sleep,
) -> httpx.Response:
    """Send; retry 429 and 503 ("sync in progress") with backoff, honouring Retry-After.

    After the last try a ``Retryable`` goes to the job queue (it reschedules the job).
    Other 4xx become ``ProviderRejected``; other 5xx and network errors are ``Retryable``.
    """

    async def once() -> httpx.Response:
        try:
            response = await send()
        except httpx.TransportError as e:
            raise _TryAgain(f"{provider} unreachable: {type(e).__name__}", busy=False) from e
        status = response.status_code
        if status < 400:
            return response
        message, code = _error_message(provider, response)
        if status in (429, 503):
            raise _TryAgain(message, retry_after=_retry_after(response), busy=True)
        if status >= 500:
            raise Retryable(message)
        raise ProviderRejected(message, status=status, code=code)

    try:
        return await retry(
            once,
            attempts=attempts,
            base=base_delay,
            maximum=max_delay,
            sleep=sleep,
            describe=f"{provider} request",
            retry_on=_TryAgain,
        )
    except _TryAgain as e:
        wait = None
        if e.busy:  # tell the job queue to wait at least as long as the provider asked
            wait = max(
                backoff_delay(attempts, base=base_delay, maximum=max_delay), e.retry_after or 0.0
            )
        raise Retryable(str(e), retry_after=wait) from (e.__cause__ or e)
