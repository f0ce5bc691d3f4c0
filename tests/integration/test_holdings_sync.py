"""Holdings sync end to end on the real database: webhooks -> jobs -> positions -> holdings."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import respx
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.support.db import User, request_as
from tests.support.snaptrade import (
    AUTH,
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
from worker.errors import Retryable
from worker.fleet.registry import Job, Registry


@pytest.fixture
def registry() -> Registry:
    return holdings_registry()


T0 = datetime(2026, 6, 2, 14, 30, tzinfo=UTC)


@respx.mock
async def test_linking_a_brokerage_shows_holdings_aggregated_across_accounts(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    await link(conn, alice)
    no_balances()
    respx.get(f"{BASE}/accounts").mock(
        return_value=httpx.Response(200, json=[account("a1"), account("a2")])
    )
    respx.get(f"{BASE}/accounts/a1/positions/all").mock(
        return_value=httpx.Response(
            200, json=positions(T0, ("AAPL", "10", "150", "100"), ("MSFT", "2", "300", None))
        )
    )
    respx.get(f"{BASE}/accounts/a2/positions/all").mock(
        return_value=httpx.Response(200, json=positions(T0, ("AAPL", "30", "150", "140")))
    )

    await webhook(conn, alice, "CONNECTION_ADDED", brokerageAuthorizationId=AUTH)
    done = await run_jobs(conn, pool, registry)
    assert [d["kind"] for d in done] == ["holdings.connection_added"] and done[0][
        "status"
    ] == "succeeded"

    held = await holdings_of(conn, alice)
    assert held["AAPL"]["total_units"] == Decimal(40)
    assert held["AAPL"]["average_cost"] == Decimal(130)  # (10*100 + 30*140) / 40
    assert held["AAPL"]["market_value"] == Decimal(6000)
    assert held["AAPL"]["account_count"] == 2
    assert held["MSFT"]["average_cost"] is None
    async with request_as(conn, alice) as cur:
        await cur.execute("select status, brokerage_name from brokerage_connections")
        assert await cur.fetchall() == [{"status": "active", "brokerage_name": "Robinhood"}]
        await cur.execute(
            "select trigger, status, accounts_synced, positions_upserted from sync_runs"
        )
        assert await cur.fetchall() == [
            {
                "trigger": "connection_added",
                "status": "completed",
                "accounts_synced": 2,
                "positions_upserted": 3,
            }
        ]
    assert await holdings_of(conn, users["bob"]) == {}
    async with conn.cursor() as cur:
        await cur.execute("select status from webhook_events")
        assert await cur.fetchall() == [("processed",)]
        await cur.execute("select sealed_user_secret from brokerage_connections")
        (sealed,) = (await cur.fetchone()) or ("",)
        assert f"secret-{alice.id}" not in sealed


@respx.mock
async def test_holdings_updates_remove_sold_positions_and_never_go_back_in_time(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    await link(conn, alice)
    respx.get(f"{BASE}/accounts").mock(return_value=httpx.Response(200, json=[account("a1")]))
    route = respx.get(f"{BASE}/accounts/a1/positions/all")
    # ACCOUNT_HOLDINGS_UPDATED before CONNECTION_ADDED: the account is discovered on the way.
    route.mock(
        return_value=httpx.Response(
            200, json=positions(T0, ("AAPL", "10", "150", "100"), ("TSLA", "1", "200", "180"))
        )
    )
    await webhook(
        conn, alice, "ACCOUNT_HOLDINGS_UPDATED", accountId="a1", brokerageAuthorizationId=AUTH
    )
    await run_jobs(conn, pool, registry)
    assert set(await holdings_of(conn, alice)) == {"AAPL", "TSLA"}

    # TSLA sold: no longer reported, so it is gone.
    route.mock(
        return_value=httpx.Response(
            200, json=positions(T0 + timedelta(minutes=5), ("AAPL", "12", "151", "101"))
        )
    )
    await webhook(conn, alice, "ACCOUNT_HOLDINGS_UPDATED", accountId="a1")
    await run_jobs(conn, pool, registry)
    held = await holdings_of(conn, alice)
    assert set(held) == {"AAPL"} and held["AAPL"]["total_units"] == Decimal(12)

    # A delayed, older snapshot changes nothing.
    route.mock(
        return_value=httpx.Response(
            200, json=positions(T0, ("AAPL", "10", "150", "100"), ("TSLA", "1", "200", "180"))
        )
    )
    await webhook(conn, alice, "ACCOUNT_HOLDINGS_UPDATED", accountId="a1")
    await run_jobs(conn, pool, registry)
    held = await holdings_of(conn, alice)
    assert set(held) == {"AAPL"} and held["AAPL"]["total_units"] == Decimal(12)


@respx.mock
async def test_manual_refresh_is_rate_limited_and_one_failing_account_does_not_stop_the_others(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    await link(conn, alice)
    no_balances()
    respx.get(f"{BASE}/accounts").mock(
        return_value=httpx.Response(200, json=[account("a1"), account("a2")])
    )
    respx.get(f"{BASE}/accounts/a1/positions/all").mock(
        return_value=httpx.Response(200, json=positions(T0, ("AAPL", "5", "150", "100")))
    )
    respx.get(f"{BASE}/accounts/a2/positions/all").mock(
        return_value=httpx.Response(
            403, json={"detail": "Brokerage authorization is disabled", "code": "1012"}
        )
    )

    async with request_as(conn, alice) as cur:
        await cur.execute("insert into sync_runs default values returning id")
    with pytest.raises(psycopg.errors.CheckViolation):
        async with request_as(conn, alice) as cur:
            await cur.execute("insert into sync_runs default values")
    done = await run_jobs(conn, pool, registry)
    assert [d["kind"] for d in done] == ["holdings.full_sync"]

    async with request_as(conn, alice) as cur:
        await cur.execute(
            "select trigger, status, accounts_synced, positions_upserted, errors, duration_ms "
            "from sync_runs"
        )
        (run,) = await cur.fetchall()
        await cur.execute("select name, sync_error from brokerage_accounts order by name")
        accounts = await cur.fetchall()
    assert (run["trigger"], run["status"], run["accounts_synced"], run["positions_upserted"]) == (
        "manual",
        "partial",
        1,
        1,
    )
    assert "disabled" in run["errors"][0]["error"] and run["duration_ms"] is not None
    assert accounts == [
        {"name": "Account a1", "sync_error": None},
        {
            "name": "Account a2",
            "sync_error": "SnapTrade answered 403: Brokerage authorization is disabled",
        },
    ]
    assert set(await holdings_of(conn, alice)) == {"AAPL"}

    # Nightly: every linked user gets a full sync run.
    ctx_job = await conn.execute("insert into jobs (kind) values ('holdings.nightly') returning id")
    assert await ctx_job.fetchone()
    await run_jobs(conn, pool, registry)
    async with request_as(conn, alice) as cur:
        await cur.execute("select trigger, status from sync_runs order by created_at")
        assert [r["trigger"] for r in await cur.fetchall()] == ["manual", "nightly"]


@respx.mock
async def test_broken_and_deleted_connections(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    await link(conn, alice)
    no_balances()
    respx.get(f"{BASE}/accounts").mock(return_value=httpx.Response(200, json=[account("a1")]))
    respx.get(f"{BASE}/accounts/a1/positions/all").mock(
        return_value=httpx.Response(200, json=positions(T0, ("AAPL", "5", "150", "100")))
    )
    await webhook(conn, alice, "CONNECTION_ADDED", brokerageAuthorizationId=AUTH)
    await run_jobs(conn, pool, registry)

    await webhook(conn, alice, "CONNECTION_BROKEN", brokerageAuthorizationId=AUTH)
    await run_jobs(conn, pool, registry)
    async with request_as(conn, alice) as cur:
        await cur.execute("select status, status_reason from brokerage_connections")
        (c,) = await cur.fetchall()
    assert c["status"] == "broken" and "reconnect" in c["status_reason"]
    assert set(await holdings_of(conn, alice)) == {"AAPL"}  # last known holdings stay visible

    await webhook(conn, alice, "CONNECTION_DELETED", brokerageAuthorizationId=AUTH)
    # A late CONNECTION_ADDED replay does not bring it back.
    await webhook(conn, alice, "CONNECTION_ADDED", brokerageAuthorizationId=AUTH)
    await run_jobs(conn, pool, registry)
    assert await holdings_of(conn, alice) == {}
    async with request_as(conn, alice) as cur:
        await cur.execute("select status from brokerage_connections")
        assert await cur.fetchall() == [{"status": "deleted"}]


@respx.mock
async def test_prices_value_the_portfolio_and_orders_route_to_the_holding_account(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    await link(conn, alice)
    # Balances as documented (a list per currency; cash as a JSON number).
    respx.get(f"{BASE}/accounts/a1/balances").mock(
        return_value=httpx.Response(
            200,
            json=[
                {
                    "currency": {"id": "57f81c53", "code": "USD", "name": "US Dollar"},
                    "cash": 100.25,
                    "buying_power": 150,
                }
            ],
        )
    )
    respx.get(f"{BASE}/accounts/a2/balances").mock(
        return_value=httpx.Response(
            200,
            json=[
                {
                    "currency": {"id": "57f81c53", "code": "USD", "name": "US Dollar"},
                    "cash": 50,
                    "buying_power": None,
                },
                {
                    "currency": {"id": "87b24961", "code": "CAD", "name": "Canadian Dollar"},
                    "cash": 7,
                },
            ],
        )
    )
    respx.get(f"{BASE}/accounts").mock(
        return_value=httpx.Response(200, json=[account("a1"), account("a2", auth="auth-2")])
    )
    respx.get(f"{BASE}/accounts/a1/positions/all").mock(
        return_value=httpx.Response(200, json=positions(T0, ("MSFT", "1", "390", "300")))
    )
    respx.get(f"{BASE}/accounts/a2/positions/all").mock(
        return_value=httpx.Response(200, json=positions(T0, ("AAPL", "10", "150", "100")))
    )
    async with request_as(conn, alice) as cur:
        await cur.execute("insert into sync_runs default values")
    await run_jobs(conn, pool, registry)

    await conn.execute("insert into jobs (kind) values ('holdings.update_prices')")
    await run_jobs(conn, pool, registry)
    async with request_as(conn, alice) as cur:
        await cur.execute(
            "select market_value, unrealized_pnl, day_change, day_change_percent, holdings_count "
            "from portfolio_value"
        )
        value = await cur.fetchone()
    # AAPL 10 x 200 (prev 190) + MSFT 1 x 400 (prev 400)
    assert value == {
        "market_value": Decimal(2400),
        "unrealized_pnl": Decimal(1100),
        "day_change": Decimal(100),
        "day_change_percent": Decimal("4.3478"),
        "holdings_count": 2,
    }
    async with request_as(conn, alice) as cur:
        await cur.execute("select cash, total_value from portfolio_value")
        # The USD cash of both accounts (the CAD line is not in the accounts' currency).
        assert await cur.fetchone() == {
            "cash": Decimal("150.25"),
            "total_value": Decimal("2550.25"),
        }
    async with request_as(conn, users["bob"]) as cur:
        await cur.execute("select count(*) as n from portfolio_value")
        assert await cur.fetchone() == {"n": 0}

    place = respx.post(f"{BASE}/trade/place").mock(
        return_value=httpx.Response(
            200, json={"brokerage_order_id": "b-1", "status": "PENDING", "action": "SELL"}
        )
    )
    await conn.execute(
        "insert into jobs (kind, payload) values ('holdings.place_order', %s)",
        (json.dumps({"user_id": str(alice.id), "symbol": "AAPL", "action": "SELL", "units": "4"}),),
    )
    (done,) = await run_jobs(conn, pool, registry)
    assert done["status"] == "succeeded" and done["result"]["brokerage_order_id"] == "b-1"
    body = json.loads(place.calls.last.request.content)
    assert (body["account_id"], body["symbol"], body["action"], body["units"]) == (
        "a2",
        "AAPL",
        "SELL",
        4,
    )

    # Nobody holds NVDA: the order is refused with a reason, nothing is sent.
    await conn.execute(
        "insert into jobs (kind, payload) values ('holdings.place_order', %s)",
        (json.dumps({"user_id": str(alice.id), "symbol": "NVDA", "action": "BUY", "units": "1"}),),
    )
    (refused,) = await run_jobs(conn, pool, registry)
    assert refused["status"] == "dead" and "holds NVDA" in refused["result"]["error"]
    assert place.call_count == 1


@respx.mock
async def test_a_burst_of_account_updates_is_aggregated_once_and_a_dead_aggregation_is_replaced(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    await link(conn, alice)
    respx.get(f"{BASE}/accounts").mock(
        return_value=httpx.Response(200, json=[account("a1"), account("a2"), account("a3")])
    )
    for n, acc in enumerate(("a1", "a2", "a3"), start=1):
        respx.get(f"{BASE}/accounts/{acc}/positions/all").mock(
            return_value=httpx.Response(
                200, json=positions(T0, ("AAPL", str(n), "150", "100"), (f"X{n}", "1", "10", "5"))
            )
        )
    for acc in ("a1", "a2", "a3"):
        await webhook(
            conn, alice, "ACCOUNT_HOLDINGS_UPDATED", accountId=acc, brokerageAuthorizationId=AUTH
        )

    done = await run_jobs(conn, pool, registry)
    kinds = [d["kind"] for d in done]
    assert kinds.count("holdings.sync_account") == 3 and kinds.count("holdings.aggregate") == 1, (
        kinds
    )
    assert all(d["status"] == "succeeded" for d in done)
    held = await holdings_of(conn, alice)
    assert set(held) == {"AAPL", "X1", "X2", "X3"}
    assert (held["AAPL"]["total_units"], held["AAPL"]["account_count"]) == (Decimal(6), 3)
    async with conn.cursor() as cur:
        await cur.execute("select status, count(*) from webhook_events group by status")
        assert await cur.fetchall() == [("processed", 3)]
        await cur.execute(
            "select count(*) from sync_runs where trigger = 'webhook' and status = 'completed'"
        )
        assert await cur.fetchone() == (3,)
        await cur.execute("select count(*) from private.holdings_pending_aggregates")
        assert await cur.fetchone() == (0,)

    # An aggregation job that died (out of attempts) does not leave the user waiting forever:
    # the next sync asks for a new one.
    async with conn.cursor() as cur:
        await cur.execute("select private.holdings_request_aggregate(%s)", (alice.id,))
        (job_id,) = await cur.fetchone() or (None,)
    await conn.execute("update jobs set status = 'dead' where id = %s", (job_id,))
    respx.get(f"{BASE}/accounts/a1/positions/all").mock(
        return_value=httpx.Response(
            200, json=positions(T0 + timedelta(minutes=1), ("AAPL", "10", "150", "100"))
        )
    )
    await webhook(conn, alice, "ACCOUNT_HOLDINGS_UPDATED", accountId="a1")
    done = await run_jobs(conn, pool, registry)
    assert [(d["kind"], d["status"]) for d in done] == [
        ("holdings.sync_account", "succeeded"),
        ("holdings.aggregate", "succeeded"),
    ]
    held = await holdings_of(conn, alice)
    assert set(held) == {"AAPL", "X2", "X3"} and held["AAPL"]["total_units"] == Decimal(15)


async def test_an_aggregation_waits_for_a_sync_that_has_written_but_not_committed(
    conn: psycopg.AsyncConnection[Any],
    db_url: str,
    users: dict[str, User],
) -> None:
    alice = users["alice"]
    cur = await conn.execute(
        "with c as (insert into brokerage_connections (user_id, provider, provider_user_id, provider_connection_id, "
        "sealed_user_secret, status) values (%s, 'snaptrade', 'u', 'auth', 'x', 'active') returning id, user_id) "
        "insert into brokerage_accounts (connection_id, user_id, provider_account_id) "
        "select id, user_id, 'a1' from c returning id",
        (alice.id,),
    )
    (account_id,) = await cur.fetchone() or (None,)
    snapshot = json.dumps([{"symbol": "AAPL", "units": "7", "price": "150", "average_cost": "100"}])
    async with (
        await psycopg.AsyncConnection.connect(db_url) as sync,
        await psycopg.AsyncConnection.connect(db_url, autocommit=True) as job,
    ):
        # Two bursts ago an aggregation was requested; its job is about to run.
        await job.execute("select private.holdings_request_aggregate(%s)", (alice.id,))
        # A sync writes its positions and asks again, but has not committed yet.
        await sync.execute(
            "select * from private.holdings_finish_account_sync(%s, now(), %s::jsonb)",
            (account_id, snapshot),
        )
        await job.execute("set lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            await job.execute(
                "select private.holdings_aggregate_pending(%s::uuid[])", ([alice.id],)
            )
        await sync.commit()
        await job.execute("select private.holdings_aggregate_pending(%s::uuid[])", ([alice.id],))
    held = await holdings_of(conn, alice)
    assert held["AAPL"]["total_units"] == Decimal(7)


async def test_batches_of_one_users_accounts_do_not_wait_for_each_other_but_the_aggregation_does(
    conn: psycopg.AsyncConnection[Any],
    db_url: str,
    users: dict[str, User],
) -> None:
    """Two workers write batches naming accounts of the same user at the same time: the
    second does not wait for the first to commit, while the user's aggregation job waits for
    both and then sees both accounts' positions."""
    alice = users["alice"]
    cur = await conn.execute(
        "with c as (insert into brokerage_connections (user_id, provider, provider_user_id, provider_connection_id, "
        "sealed_user_secret, status) values (%s, 'snaptrade', 'u', 'auth', 'x', 'active') returning id, user_id) "
        "insert into brokerage_accounts (connection_id, user_id, provider_account_id) "
        "select id, user_id, a from c, unnest(array['a1', 'a2', 'a3']) a returning id",
        (alice.id,),
    )
    a1, a2, a3 = [r[0] for r in await cur.fetchall()]

    def batch(account_id: Any, units: str) -> str:
        return json.dumps(
            [
                {
                    "account_id": str(account_id),
                    "as_of": datetime.now(UTC).isoformat(),
                    "positions": [{"symbol": "AAPL", "units": units, "price": "150"}],
                }
            ]
        )

    finish = "select * from private.holdings_finish_account_syncs(%s::jsonb)"
    async with (
        await psycopg.AsyncConnection.connect(db_url) as first,
        await psycopg.AsyncConnection.connect(db_url) as second,
        await psycopg.AsyncConnection.connect(db_url, autocommit=True) as job,
    ):
        # The burst's first batch has committed: the user's aggregation job is queued.
        await first.execute(finish, (batch(a1, "1"),))
        await first.commit()
        # Two more batches are written at once and neither has committed.
        await first.execute(finish, (batch(a2, "2"),))
        await second.execute("set lock_timeout = '200ms'")
        await second.execute(finish, (batch(a3, "4"),))
        await job.execute("set lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            await job.execute(
                "select private.holdings_aggregate_pending(%s::uuid[])", ([alice.id],)
            )
        await first.commit()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            await job.execute(
                "select private.holdings_aggregate_pending(%s::uuid[])", ([alice.id],)
            )
        await second.commit()
        await job.execute("select private.holdings_aggregate_pending(%s::uuid[])", ([alice.id],))
    held = await holdings_of(conn, alice)
    assert held["AAPL"]["total_units"] == Decimal(7)
    cur = await conn.execute(
        "select count(*) from jobs where kind = 'holdings.aggregate' and payload ->> 'user_id' = %s",
        (str(alice.id),),
    )
    assert await cur.fetchone() == (1,)


@respx.mock
async def test_account_syncs_finishing_together_share_one_write_and_a_refused_one_fails_alone(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    await link(conn, alice)
    accounts = ("b1", "b2", "b3", "b4")
    respx.get(f"{BASE}/accounts").mock(
        return_value=httpx.Response(200, json=[account(a) for a in accounts])
    )
    for acc in accounts:
        respx.get(f"{BASE}/accounts/{acc}/positions/all").mock(
            return_value=httpx.Response(200, json=positions(T0, ("AAPL", "1", "150", "100")))
        )
        await webhook(
            conn, alice, "ACCOUNT_HOLDINGS_UPDATED", accountId=acc, brokerageAuthorizationId=AUTH
        )
    assert {d["status"] for d in await run_jobs(conn, pool, registry)} == {"succeeded"}

    # The next updates run at once, as in a busy worker: their writes go out in batches. b2's
    # units do not fit the positions' numeric column, so Postgres refuses its write.
    later = T0 + timedelta(minutes=1)
    events = {}
    for acc in accounts:
        units = "1e20" if acc == "b2" else "2"
        respx.get(f"{BASE}/accounts/{acc}/positions/all").mock(
            return_value=httpx.Response(200, json=positions(later, ("AAPL", units, "150", "100")))
        )
        events[acc] = await webhook(conn, alice, "ACCOUNT_HOLDINGS_UPDATED", accountId=acc)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select id, queue, kind, payload, attempts, max_attempts from jobs "
            "where status = 'queued' and kind = 'holdings.sync_account' order by id"
        )
        jobs = [Job(**r) for r in await cur.fetchall()]
    assert len(jobs) == 4
    outcomes = await asyncio.gather(
        *(registry.kinds[j.kind].handler(registry.context(j, pool, "test")) for j in jobs),
        return_exceptions=True,
    )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], Retryable), outcomes
    assert "numeric field overflow" in str(failed[0])
    async with conn.cursor() as cur:
        await cur.execute(
            "select a.provider_account_id, p.units from brokerage_positions p "
            "join brokerage_accounts a on a.id = p.account_id order by 1"
        )
        assert await cur.fetchall() == [
            ("b1", Decimal(2)),
            ("b2", Decimal(1)),  # as it was
            ("b3", Decimal(2)),
            ("b4", Decimal(2)),
        ]
        await cur.execute(
            "select payload ->> 'accountId', status from webhook_events where event_id = any(%s)",
            (list(events.values()),),
        )
        assert dict(await cur.fetchall()) == {
            "b1": "processed",
            "b2": "failed",
            "b3": "processed",
            "b4": "processed",
        }
