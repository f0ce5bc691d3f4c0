"""Service health: the periodic job ``ops.health``.

Every ``HEALTH_INTERVAL_S`` (30 s) one worker of the fleet checks each configured service
at once, each within ``HEALTH_TIMEOUT_S``, and records every outcome through
``public.record_service_check``, which keeps the history (``service_checks``) and the
current state (``service_status``), decides the status and notifies
``tradefleet_service_health`` when it changes:

- healthy: the check succeeded within ``HEALTH_SLOW_MS``;
- degraded: it succeeded more slowly, or failed fewer than ``HEALTH_DOWN_AFTER`` times in
  a row;
- down: it failed ``HEALTH_DOWN_AFTER`` times in a row (or more).

Services no longer configured (an exchange no running bot uses any more) leave
``service_status``; their history stays until retention prunes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import httpx
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from worker.fleet.registry import JobContext, NoPayload, Registry
from worker.holdings import HoldingsSettings
from worker.notify import NotifySettings

from .settings import OpsSettings

KIND = "ops.health"
RECORD = """
select status from public.record_service_check(
  %(service)s::text, %(target)s::text, %(ok)s::boolean, %(latency_ms)s::numeric,
  %(error)s::text, %(slow_ms)s::numeric, %(down_after)s::integer)
"""
EXCHANGES_IN_USE = "select distinct exchange from public.bots where status = 'running' order by 1"
FORGET = "delete from public.service_status where (service || ':' || target) <> all(%(kept)s)"


class CheckFailed(Exception):
    """A service answered, but not as a healthy one does (the message says how)."""


@dataclass(frozen=True)
class Check:
    """One thing to check: ``probe`` returns when the service is fine, raises otherwise."""

    service: str
    probe: Callable[[], Awaitable[None]]
    target: str = ""
    secrets: tuple[str, ...] = ()  # values never to show in an error


@dataclass(frozen=True)
class Outcome:
    service: str
    target: str
    ok: bool
    latency_ms: float
    error: str | None = None


class ExchangeClient(Protocol):
    """What a check needs of an exchange (``worker.exchanges.live.LiveExchange``)."""

    @property
    def client(self) -> Any: ...

    async def close(self) -> None: ...


ConnectExchange = Callable[[str, float], ExchangeClient]


def public_exchange(exchange_id: str, timeout_s: float) -> ExchangeClient:
    """A keyless ccxt client of ``exchange_id`` (ccxt is imported only when needed)."""
    from worker.exchanges.live import LiveExchange

    return LiveExchange(exchange_id, timeout_ms=int(timeout_s * 1000))


async def probe_exchange(exchange: ExchangeClient) -> None:
    """ccxt ``fetch_status`` where the exchange has it (maintenance fails), else
    ``fetch_time``."""
    try:
        client = exchange.client
        if client.has.get("fetchStatus"):
            status = await client.fetch_status()
            state = (status or {}).get("status")
            if state not in (None, "ok"):
                raise CheckFailed(f"the exchange reports {state}")
        else:
            await client.fetch_time()
    finally:
        await exchange.close()


def _secret(value: SecretStr | str | None) -> str:
    if value is None:
        return ""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@dataclass
class Services:
    """Which services are configured, and how to reach them."""

    settings: OpsSettings
    holdings: HoldingsSettings = field(default_factory=HoldingsSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    exchanges: bool = True  # check the exchanges running bots use
    connect_exchange: ConnectExchange = public_exchange

    def http_checks(self, http: httpx.AsyncClient) -> list[Check]:
        """The configured external services other than exchanges."""
        s, h, n = self.settings, self.holdings, self.notify
        checks: list[Check] = []

        def get(
            url: str,
            headers: Mapping[str, str] | None = None,
            params: Mapping[str, str] | None = None,
            expect: Callable[[Any], str | None] | None = None,
        ) -> Callable[[], Awaitable[None]]:
            async def probe() -> None:
                response = await http.get(url, headers=headers, params=params)
                if not response.is_success:
                    raise CheckFailed(f"HTTP {response.status_code}: {response.text[:200]}")
                if expect is not None:
                    try:
                        body = response.json()
                    except ValueError:
                        raise CheckFailed("the answer is not JSON") from None
                    problem = expect(body)
                    if problem:
                        raise CheckFailed(problem)

            return probe

        if _secret(h.snaptrade_client_id).strip() and _secret(h.snaptrade_consumer_key).strip():
            checks.append(
                Check(
                    "snaptrade",
                    get(
                        f"{h.snaptrade_api_url.rstrip('/')}/",
                        expect=lambda b: (
                            None
                            if isinstance(b, dict) and b.get("online", True)
                            else "SnapTrade reports it is offline"
                        ),
                    ),
                )
            )
        key_id, secret = _secret(h.alpaca_data_key_id), _secret(h.alpaca_data_secret)
        if key_id.strip() and secret.strip():
            checks.append(
                Check(
                    "alpaca",
                    get(
                        f"{h.alpaca_data_url.rstrip('/')}/v2/stocks/snapshots",
                        {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret},
                        {"symbols": "SPY"},
                    ),
                    secrets=(key_id, secret),
                )
            )
        for service, key, url in (
            ("stripe", s.stripe_secret_key, f"{s.stripe_api_url.rstrip('/')}/v1/balance"),
            ("paystack", s.paystack_secret_key, f"{s.paystack_api_url.rstrip('/')}/balance"),
            (
                "tripay",
                s.tripay_api_key,
                f"{s.tripay_api_url.rstrip('/')}/merchant/payment-channel",
            ),
        ):
            token = _secret(key).strip()
            if token:
                checks.append(
                    Check(
                        service,
                        get(url, {"Authorization": f"Bearer {token}"}),
                        secrets=(token,),
                    )
                )
        token = _secret(n.telegram_bot_token).strip()
        if token:
            checks.append(
                Check(
                    "telegram",
                    get(
                        f"{n.telegram_api_url.rstrip('/')}/bot{token}/getMe",
                        expect=lambda b: (
                            None
                            if isinstance(b, dict) and b.get("ok")
                            else "Telegram refused the bot token"
                        ),
                    ),
                    secrets=(token,),
                )
            )
        if s.health_discord or s.alert_discord_webhook_url is not None:
            checks.append(Check("discord", get(f"{s.discord_api_url.rstrip('/')}/gateway")))
        return checks

    def exchange_checks(self, exchange_ids: Sequence[str]) -> list[Check]:
        timeout_s = self.settings.health_timeout_s

        def probe(exchange_id: str) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                await probe_exchange(self.connect_exchange(exchange_id, timeout_s))

            return run

        return [Check("exchange", probe(e), target=e) for e in exchange_ids]


async def run_check(check: Check, timeout_s: float) -> Outcome:
    """Run ``check`` within ``timeout_s``; any error is a failure, described without
    secrets."""
    started = time.perf_counter()
    error: str | None = None
    try:
        await asyncio.wait_for(check.probe(), timeout_s)
    except TimeoutError:
        error = f"no answer within {timeout_s:g} s"
    except CheckFailed as e:
        error = str(e)
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    if error is not None:
        for value in check.secrets:
            if value:
                error = error.replace(value, "***")
        error = error[:1000]
    return Outcome(check.service, check.target, error is None, latency_ms, error)


async def check_database(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        await conn.execute("select 1")


async def record(
    pool: AsyncConnectionPool, outcomes: Sequence[Outcome], settings: OpsSettings
) -> dict[str, str]:
    """Store ``outcomes``; forget the services not among them. Returns each status."""
    statuses: dict[str, str] = {}
    async with pool.connection() as conn:
        for o in outcomes:
            cur = await conn.execute(
                RECORD,
                {
                    "service": o.service,
                    "target": o.target,
                    "ok": o.ok,
                    "latency_ms": o.latency_ms,
                    "error": o.error,
                    "slow_ms": settings.health_slow_ms,
                    "down_after": settings.health_down_after,
                },
            )
            row = await cur.fetchone()
            statuses[f"{o.service}:{o.target}" if o.target else o.service] = (
                str(row[0]) if row else "unknown"
            )
        await conn.execute(FORGET, {"kept": [f"{o.service}:{o.target}" for o in outcomes]})
    return statuses


async def check_all(
    pool: AsyncConnectionPool, services: Services, http: httpx.AsyncClient
) -> dict[str, str]:
    """Check every configured service once and record the outcomes."""
    timeout_s = services.settings.health_timeout_s
    checks = [Check("database", lambda: check_database(pool))]
    if services.exchanges:
        async with pool.connection() as conn:
            cur = await conn.execute(EXCHANGES_IN_USE)
            exchange_ids = [str(r[0]) for r in await cur.fetchall()]
        checks += services.exchange_checks(exchange_ids)
    checks += services.http_checks(http)
    outcomes = await asyncio.gather(*(run_check(c, timeout_s) for c in checks))
    return await record(pool, outcomes, services.settings)


def register(registry: Registry, services: Services) -> None:
    """``ops.health`` every ``HEALTH_INTERVAL_S``, once across the fleet."""
    settings = services.settings
    clients: list[httpx.AsyncClient] = []

    def http() -> httpx.AsyncClient:
        if not clients:
            clients.append(
                httpx.AsyncClient(
                    headers={"user-agent": "tradefleet-health"},
                    timeout=settings.health_timeout_s,
                )
            )
        return clients[0]

    @registry.job(KIND, payload=NoPayload, max_attempts=3, timeout_s=settings.health_timeout_s + 60)
    async def health(ctx: JobContext[NoPayload]) -> dict[str, object]:
        return {"status": await check_all(ctx.pool, services, http())}

    registry.every(KIND, timedelta(seconds=settings.health_interval_s), KIND)
