"""Service health: ops.health checks every configured service (fakes only: respx for the
HTTP APIs, the local fake Binance for ccxt), records healthy / degraded / down by the
documented rules with their history, tells listeners when a status changes, and shows
admins (only admins) the result through admin_service_health()."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
import respx
from psycopg_pool import AsyncConnectionPool

from tests.fakes.fake_binance import FakeBinance
from tests.support.bots import create_bot
from tests.support.db import create_user, request_as
from worker.exchanges.live import LiveExchange
from worker.holdings import HoldingsSettings
from worker.notify import NotifySettings
from worker.ops import OpsSettings, Services, check_all

STRIPE = "https://api.stripe.test"
TOKEN = "123456:telegram-secret"


def ops_settings(**over: Any) -> OpsSettings:
    base: dict[str, Any] = {"health_timeout_s": 5, "health_slow_ms": 10_000, "health_down_after": 2}
    return OpsSettings(_env_file=None, **{**base, **over})  # type: ignore[call-arg]


def services(
    settings: OpsSettings,
    holdings: HoldingsSettings | None = None,
    notify: NotifySettings | None = None,
    **kw: Any,
) -> Services:
    return Services(
        settings,
        holdings or HoldingsSettings(_env_file=None),  # type: ignore[call-arg]
        notify or NotifySettings(_env_file=None),  # type: ignore[call-arg]
        **kw,
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def listener(db_url: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Every notification on tradefleet_service_health while the test runs."""
    got: list[dict[str, Any]] = []
    conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    await conn.execute("listen tradefleet_service_health")

    async def collect() -> None:
        async for n in conn.notifies():
            got.append(json.loads(n.payload))

    task = asyncio.create_task(collect())
    try:
        yield got
    finally:
        task.cancel()
        await conn.close()


async def wait_notified(got: list[dict[str, Any]], n: int) -> None:
    for _ in range(200):
        if len(got) >= n:
            return
        await asyncio.sleep(0.05)


async def health_as(conn: psycopg.AsyncConnection[Any], who: Any) -> list[dict[str, Any]]:
    async with request_as(conn, who) as cur:
        await cur.execute("select * from admin_service_health()")
        return list(await cur.fetchall())


async def test_a_service_goes_degraded_then_down_and_back_with_history_and_notifications(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    http: httpx.AsyncClient,
    listener: list[dict[str, Any]],
) -> None:
    fast = services(ops_settings(stripe_secret_key="sk_test", stripe_api_url=STRIPE))
    slow = services(
        ops_settings(stripe_secret_key="sk_test", stripe_api_url=STRIPE, health_slow_ms=100)
    )

    async def slow_answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.4)
        return httpx.Response(200, json={"object": "balance"})

    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(f"{STRIPE}/v1/balance")
        steps = [
            (fast, httpx.Response(200, json={"object": "balance"}), "healthy"),
            (slow, slow_answer, "degraded"),  # slower than HEALTH_SLOW_MS
            (fast, httpx.Response(500, text="stripe is broken"), "degraded"),  # one failure
            (fast, httpx.Response(500, text="stripe is broken"), "down"),  # HEALTH_DOWN_AFTER=2
            (fast, httpx.Response(200, json={"object": "balance"}), "healthy"),
        ]
        for svc, answer, expected in steps:
            route.side_effect = answer if callable(answer) else None
            if not callable(answer):
                route.return_value = answer
            status = await check_all(pool, svc, http)
            assert status == {"database": "healthy", "stripe": expected}
        assert route.calls[0].request.headers["authorization"] == "Bearer sk_test"

    admin = await create_user(conn, "ops-admin@test.local", role="admin")
    rows = {r["service"]: r for r in await health_as(conn, admin)}
    assert set(rows) == {"database", "stripe"}
    stripe = rows["stripe"]
    assert stripe["status"] == "healthy" and stripe["error"] is None
    assert [h["status"] for h in stripe["history"]] == [
        "healthy",
        "down",
        "degraded",
        "degraded",
        "healthy",
    ], "newest first"
    assert stripe["changed_at"] == stripe["checked_at"]
    assert len(rows["database"]["history"]) == 5

    await wait_notified(listener, 5)
    changes = [(n["service"], n["previous"], n["status"]) for n in listener]
    assert changes == [
        ("database", None, "healthy"),
        ("stripe", None, "healthy"),
        ("stripe", "healthy", "degraded"),
        ("stripe", "degraded", "down"),
        ("stripe", "down", "healthy"),
    ], "one notification per change of status, none while it stays degraded"


async def test_the_error_of_a_down_service_is_kept_and_a_timeout_is_a_failure(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, http: httpx.AsyncClient
) -> None:
    svc = services(
        ops_settings(health_timeout_s=0.2, health_down_after=1),
        notify=NotifySettings(  # type: ignore[call-arg]
            _env_file=None, telegram_bot_token=TOKEN, telegram_api_url="https://tg.test"
        ),
    )

    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    with respx.mock(assert_all_called=False) as mock:  # cancelled calls are not recorded
        mock.get(f"https://tg.test/bot{TOKEN}/getMe").mock(side_effect=never)
        assert await check_all(pool, svc, http) == {"database": "healthy", "telegram": "down"}
    cur = await conn.execute("select error from service_status where service = 'telegram'")
    assert await cur.fetchone() == ("no answer within 0.2 s",)

    with respx.mock() as mock:
        mock.get(f"https://tg.test/bot{TOKEN}/getMe").mock(
            side_effect=httpx.ConnectError(f"cannot reach https://tg.test/bot{TOKEN}/getMe")
        )
        await check_all(pool, svc, http)
    cur = await conn.execute(
        "select error from service_checks where service = 'telegram' order by id"
    )
    errors = [r[0] for r in await cur.fetchall()]
    assert errors[-1] == "ConnectError: cannot reach https://tg.test/bot***/getMe"
    assert all(TOKEN not in e for e in errors), "the bot token never reaches the table"


async def test_only_configured_services_are_checked(
    pool: AsyncConnectionPool, http: httpx.AsyncClient
) -> None:
    with respx.mock() as mock:  # any request to an unmocked URL fails the test
        assert await check_all(pool, services(ops_settings()), http) == {"database": "healthy"}
        assert not mock.calls

    configured = services(
        ops_settings(
            stripe_secret_key="sk",
            stripe_api_url="https://stripe.test",
            paystack_secret_key="ps",
            paystack_api_url="https://paystack.test",
            tripay_api_key="tp",
            tripay_api_url="https://tripay.test/api",
            health_discord=True,
            discord_api_url="https://discord.test/api",
        ),
        HoldingsSettings(  # type: ignore[call-arg]
            _env_file=None,
            snaptrade_client_id="partner",
            snaptrade_consumer_key="ck",
            snaptrade_api_url="https://snaptrade.test/api/v1",
            alpaca_data_key_id="kid",
            alpaca_data_secret="ksecret",
            alpaca_data_url="https://alpaca.test",
        ),
        NotifySettings(  # type: ignore[call-arg]
            _env_file=None, telegram_bot_token=TOKEN, telegram_api_url="https://tg.test"
        ),
    )
    with respx.mock() as mock:
        mock.get("https://snaptrade.test/api/v1/").respond(json={"online": True, "version": 1})
        alpaca = mock.get("https://alpaca.test/v2/stocks/snapshots").respond(json={})
        mock.get("https://stripe.test/v1/balance").respond(json={})
        paystack = mock.get("https://paystack.test/balance").respond(json={"status": True})
        mock.get("https://tripay.test/api/merchant/payment-channel").respond(401, json={})
        mock.get(f"https://tg.test/bot{TOKEN}/getMe").respond(json={"ok": True})
        mock.get("https://discord.test/api/gateway").respond(json={"url": "wss://x"})
        assert await check_all(pool, configured, http) == {
            "database": "healthy",
            "snaptrade": "healthy",
            "alpaca": "healthy",
            "stripe": "healthy",
            "paystack": "healthy",
            "tripay": "degraded",  # refused its key once: not down yet
            "telegram": "healthy",
            "discord": "healthy",
        }
        assert alpaca.calls[0].request.headers["apca-api-key-id"] == "kid"
        assert paystack.calls[0].request.headers["authorization"] == "Bearer ps"

    # A service switched off leaves the current state (its history stays for retention).
    with respx.mock():
        assert await check_all(pool, services(ops_settings()), http) == {"database": "healthy"}


async def test_each_exchange_running_bots_use_is_checked_through_ccxt(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, http: httpx.AsyncClient
) -> None:
    user = await create_user(conn, "trader@test.local")
    await create_bot(conn, user, exchange="binance")
    await create_bot(conn, user, exchange="kraken", status="stopped")
    async with FakeBinance() as fake:

        def connect(exchange_id: str, timeout_s: float) -> LiveExchange:
            return LiveExchange(
                exchange_id, timeout_ms=int(timeout_s * 1000), api_base_url=fake.url
            )

        svc = services(ops_settings(), connect_exchange=connect)
        assert await check_all(pool, svc, http) == {
            "database": "healthy",
            "exchange:binance": "healthy",
        }, "the stopped bot's exchange is not checked"
        assert [r.path for r in fake.requests] == ["/sapi/v1/system/status"]

        fake.maintenance = True
        await check_all(pool, svc, http)
        fake.maintenance = False
        fake.fail_next("unavailable")
        assert (await check_all(pool, svc, http))["exchange:binance"] == "down"
        assert (await check_all(pool, svc, http))["exchange:binance"] == "healthy"

        off = services(ops_settings(), exchanges=False, connect_exchange=connect)
        assert await check_all(pool, off, http) == {"database": "healthy"}
    cur = await conn.execute(
        "select status, error from service_checks where service = 'exchange' order by id"
    )
    rows = await cur.fetchall()
    assert rows[1] == ("degraded", "the exchange reports maintenance")
    assert rows[2][0] == "down" and "503" in rows[2][1]


async def test_only_admins_see_service_health(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, http: httpx.AsyncClient
) -> None:
    await check_all(pool, services(ops_settings()), http)
    user = await create_user(conn, "curious@test.local")
    admin = await create_user(conn, "ops@test.local", role="admin")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await health_as(conn, user)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await health_as(conn, "anon")
    async with request_as(conn, user) as cur:
        await cur.execute("select count(*) as n from service_checks")
        assert await cur.fetchone() == {"n": 0}
    async with request_as(conn, admin) as cur:
        await cur.execute("select count(*) as n from service_checks")
        assert await cur.fetchone() == {"n": 1}
    [row] = await health_as(conn, admin)
    assert row["service"] == "database" and row["status"] == "healthy"
    assert row["latency_ms"] >= 0 and row["history"][0]["status"] == "healthy"
