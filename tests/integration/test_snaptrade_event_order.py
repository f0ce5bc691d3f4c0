"""SnapTrade webhooks in any order end as in the order they happened.

Each scenario is a connection's life as SnapTrade reports it (connected, holdings updated,
broken, fixed, deleted), each event stamped with the time it happened. Every order they
can arrive in (with a re-delivery and a re-run of its job in between) is played for a
fresh user, each event processed before the next arrives; the user's connections,
accounts and holdings must equal the natural order's, and no event may be left waiting or
failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import respx
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.support.db import User, create_user, request_as
from tests.support.snaptrade import (
    BASE,
    account,
    holdings_of,
    holdings_registry,
    link,
    no_balances,
    positions,
    run_jobs,
    webhook,
)
from worker import inbox
from worker.fleet.registry import Job, Registry

T0 = datetime(2026, 6, 2, 14, 30, tzinfo=UTC)

# name: the events of the scenario in the order they happened
SCENARIOS: dict[str, list[str]] = {
    "connect-update-break": ["CONNECTION_ADDED", "ACCOUNT_HOLDINGS_UPDATED", "CONNECTION_BROKEN"],
    "connect-update-break-fix": [
        "CONNECTION_ADDED",
        "ACCOUNT_HOLDINGS_UPDATED",
        "CONNECTION_BROKEN",
        "CONNECTION_FIXED",
    ],
    "connect-update-delete": [
        "CONNECTION_ADDED",
        "ACCOUNT_HOLDINGS_UPDATED",
        "CONNECTION_DELETED",
    ],
}


@pytest.fixture
def registry() -> Registry:
    return holdings_registry()


def fake_snaptrade() -> None:
    """SnapTrade lists one account per user (under an authorization of that user) holding
    5 AAPL."""

    def accounts_of(request: httpx.Request) -> httpx.Response:
        uid = request.url.params["userId"]
        return httpx.Response(200, json=[account(f"acc-{uid}", auth=f"auth-{uid}")])

    respx.get(f"{BASE}/accounts").mock(side_effect=accounts_of)
    respx.get(url__regex=rf"{BASE}/accounts/[^/]+/positions/all").mock(
        return_value=httpx.Response(200, json=positions(T0, ("AAPL", "5", "150", "100")))
    )
    no_balances()


def orders(n: int) -> list[list[int]]:
    """Every order of n events, each with its first event delivered (and its job run) again
    after its second."""
    return [[*p[:2], p[0], *p[2:]] for p in itertools.permutations(range(n))]


async def end_state(
    conn: psycopg.AsyncConnection[Any], user: User, webhook_ids: list[str]
) -> dict[str, Any]:
    async with request_as(conn, user) as cur:
        await cur.execute(
            "select status, status_reason from brokerage_connections order by created_at"
        )
        connections = [(r["status"], r["status_reason"]) for r in await cur.fetchall()]
        await cur.execute("select provider_account_id from brokerage_accounts order by 1")
        accounts = [r["provider_account_id"] for r in await cur.fetchall()]
    holdings = {s: h["total_units"] for s, h in (await holdings_of(conn, user)).items()}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select event_type, status from webhook_events "
            "where provider = 'snaptrade' and event_id = any(%s) and status in ('waiting', 'failed')",
            (webhook_ids,),
        )
        stuck = [(r["event_type"], r["status"]) for r in await cur.fetchall()]
    return {
        "connections": connections,
        # Ids carry the user's: keep their shape only.
        "accounts": [a.replace(str(user.id), "<user>") for a in accounts],
        "holdings": holdings,
        "stuck": stuck,
    }


async def play(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    events: list[str],
    order: list[int],
) -> dict[str, Any]:
    user = await create_user(conn, f"snap-{uuid.uuid4().hex[:10]}@test.local")
    await link(conn, user)
    auth, acc = f"auth-{user.id}", f"acc-{user.id}"
    happened = datetime.now(UTC) - timedelta(minutes=10)
    ids = [str(uuid.uuid4()) for _ in events]
    seen: set[int] = set()
    for i in order:
        fields = {"accountId": acc} if events[i] == "ACCOUNT_HOLDINGS_UPDATED" else {}
        await webhook(
            conn,
            user,
            events[i],
            at=happened + timedelta(minutes=i),
            webhook_id=ids[i],
            brokerageAuthorizationId=auth,
            **fields,
        )
        if i in seen:
            # Delivered again, and its job run again (as after a worker crash).
            await conn.execute(
                "insert into jobs (kind, payload, idempotency_key) "
                "select kind, payload, idempotency_key || ':again' from jobs "
                "where idempotency_key = %s",
                (f"snaptrade-webhook:{ids[i]}",),
            )
        seen.add(i)
        await run_jobs(conn, pool, registry)
    return await end_state(conn, user, ids)


@respx.mock
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_every_delivery_order_ends_as_the_natural_order(
    name: str,
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    fake_snaptrade()
    events = SCENARIOS[name]
    expected = await play(conn, pool, registry, events, list(range(len(events))))
    for order in orders(len(events)):
        got = await play(conn, pool, registry, events, order)
        assert got == expected, f"{name}: order {[events[i] for i in order]}"


@respx.mock
async def test_the_natural_orders_end_where_users_expect(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, registry: Registry
) -> None:
    """What the matrix compares against."""
    fake_snaptrade()
    reconnect = "the brokerage disconnected; reconnect it from your brokerage settings"
    aapl = {"AAPL": 5}
    broken = await play(conn, pool, registry, SCENARIOS["connect-update-break"], [0, 1, 2])
    assert broken == {
        "connections": [("broken", reconnect)],
        "accounts": ["acc-<user>"],
        "holdings": aapl,  # the last known holdings stay visible
        "stuck": [],
    }
    fixed = await play(conn, pool, registry, SCENARIOS["connect-update-break-fix"], [0, 1, 2, 3])
    assert fixed["connections"] == [("active", None)] and fixed["holdings"] == aapl
    deleted = await play(conn, pool, registry, SCENARIOS["connect-update-delete"], [0, 1, 2])
    assert deleted == {
        "connections": [("deleted", "deleted at the brokerage link provider")],
        "accounts": [],
        "holdings": {},
        "stuck": [],
    }


@respx.mock
async def test_a_disconnect_for_a_connection_that_never_comes_ends_ignored_after_the_wait(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    users: dict[str, User],
) -> None:
    alice = users["alice"]
    await link(conn, alice)
    await webhook(conn, alice, "CONNECTION_BROKEN", webhook_id="w-broken", connectionId="auth-x")
    await run_jobs(conn, pool, registry)
    cur = await conn.execute(
        "select status, waiting_for, error from webhook_events where event_id = 'w-broken'"
    )
    assert await cur.fetchone() == (
        "waiting",
        ["connection:auth-x"],
        "CONNECTION_BROKEN waits for connection auth-x",
    )
    await conn.execute(
        "update webhook_events set received_at = now() - interval '73 hours' "
        "where event_id = 'w-broken'"
    )
    await conn.execute("insert into jobs (kind) values ('holdings.webhook_sweep')")
    (swept,) = await run_jobs(conn, pool, registry)
    assert swept["result"] == {"events_expired": 1, "events_retried": 0}
    cur = await conn.execute("select status, error from webhook_events where event_id = 'w-broken'")
    assert await cur.fetchone() == (
        "ignored",
        "nothing it waited for arrived within 72 h (CONNECTION_BROKEN waits for connection auth-x)",
    )


@respx.mock
async def test_a_disconnect_deciding_to_wait_while_its_connect_applies_is_still_woken(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    users: dict[str, User],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two workers take CONNECTION_ADDED and an earlier-sent CONNECTION_BROKEN at the same
    moment; the break has found no connection and is about to wait when the connect would
    apply and wake nobody. It must still be woken at once, not by the sweep."""
    fake_snaptrade()
    alice = users["alice"]
    await link(conn, alice)
    auth = f"auth-{alice.id}"
    t1 = datetime.now(UTC) - timedelta(minutes=2)
    await webhook(conn, alice, "CONNECTION_BROKEN", at=t1 + timedelta(minutes=1), connectionId=auth)
    await webhook(conn, alice, "CONNECTION_ADDED", at=t1, connectionId=auth)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "update jobs set status = 'succeeded' where kind like 'holdings.%%' "
            "returning id, queue, kind, payload, attempts, max_attempts"
        )
        jobs = {r["kind"]: r for r in await cur.fetchall()}

    added = asyncio.Event()
    real_wait = inbox.wait

    async def wait_after_the_connect(*args: Any) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(added.wait(), 1.0)
        await real_wait(*args)

    async def run(kind: str) -> None:
        ctx = registry.context(Job(**jobs[kind]), pool, "test")
        await registry.kinds[kind].handler(ctx)
        if kind == "holdings.connection_added":
            added.set()

    monkeypatch.setattr(inbox, "wait", wait_after_the_connect)
    breaking = asyncio.create_task(run("holdings.connection_status"))
    await asyncio.sleep(0.2)  # the break has looked for its connection
    await asyncio.gather(breaking, run("holdings.connection_added"))
    monkeypatch.setattr(inbox, "wait", real_wait)

    await run_jobs(conn, pool, registry)  # the woken break
    async with request_as(conn, alice) as cur:
        await cur.execute("select status from brokerage_connections")
        assert await cur.fetchall() == [{"status": "broken"}]


@respx.mock
async def test_a_manual_refresh_that_finds_the_connection_wakes_the_event_waiting_for_it(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    users: dict[str, User],
) -> None:
    """A CONNECTION_BROKEN came before SnapTrade's CONNECTION_ADDED and waits; the user's
    refresh lists the connection's account first. The break applies at once, not at the
    next sweep."""
    fake_snaptrade()
    alice = users["alice"]
    await link(conn, alice)
    auth = f"auth-{alice.id}"
    await webhook(conn, alice, "CONNECTION_BROKEN", webhook_id="w-broken", connectionId=auth)
    await run_jobs(conn, pool, registry)
    cur = await conn.execute("select status from webhook_events where event_id = 'w-broken'")
    assert await cur.fetchone() == ("waiting",)

    async with request_as(conn, alice) as rq:
        await rq.execute("insert into sync_runs default values")
    done = await run_jobs(conn, pool, registry)
    assert [d["kind"] for d in done][:1] == ["holdings.full_sync"]
    assert "holdings.connection_status" in [d["kind"] for d in done]
    cur = await conn.execute("select status from webhook_events where event_id = 'w-broken'")
    assert await cur.fetchone() == ("processed",)
    async with request_as(conn, alice) as rq:
        await rq.execute("select status from brokerage_connections")
        assert await rq.fetchall() == [{"status": "broken"}]


@respx.mock
async def test_a_holdings_update_that_sets_the_connection_up_wakes_the_event_waiting_for_it(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    registry: Registry,
    users: dict[str, User],
) -> None:
    """A CONNECTION_BROKEN waits for its connection; an ACCOUNT_HOLDINGS_UPDATED of an account
    not known yet sets the connection up from SnapTrade's listing, and the break applies at
    once. Holdings updates of known accounts come and go without waking anything."""
    fake_snaptrade()
    alice = users["alice"]
    await link(conn, alice)
    auth, acc = f"auth-{alice.id}", f"acc-{alice.id}"
    await webhook(conn, alice, "CONNECTION_BROKEN", webhook_id="w-broken", connectionId=auth)
    await run_jobs(conn, pool, registry)
    await webhook(conn, alice, "ACCOUNT_HOLDINGS_UPDATED", accountId=acc)
    done = await run_jobs(conn, pool, registry)
    assert "holdings.connection_status" in [d["kind"] for d in done]
    cur = await conn.execute("select status from webhook_events where event_id = 'w-broken'")
    assert await cur.fetchone() == ("processed",)
    async with request_as(conn, alice) as rq:
        await rq.execute("select status from brokerage_connections")
        assert await rq.fetchall() == [{"status": "broken"}]

    await webhook(conn, alice, "ACCOUNT_HOLDINGS_UPDATED", accountId=acc)
    done = await run_jobs(conn, pool, registry)
    assert [d["kind"] for d in done if d["kind"] != "holdings.aggregate"] == [
        "holdings.sync_account"
    ]
