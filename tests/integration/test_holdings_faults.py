"""A brokerage sync whose worker dies between its accounts (the connection killed as the
second account's positions are written, as kill -9 of the worker or a restart of
PostgreSQL leaves it), then run again: the webhook event ends processed once, and the
aggregated holdings equal a fault-free run of the same brokerage data."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
import respx
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_holdings_sync import T0
from tests.support.db import User
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
from worker.fleet.registry import Registry

BOB = f"{AUTH}-bob"
"""Bob's brokerage authorisation (alice's is AUTH)."""


@pytest.fixture
def registry() -> Registry:
    return holdings_registry()


async def events(conn: psycopg.AsyncConnection[Any], user: User) -> list[tuple[Any, ...]]:
    cur = await conn.execute(
        "select w.status, w.event_type from webhook_events w where w.payload ->> 'userId' = %s",
        (str(user.id),),
    )
    return list(await cur.fetchall())


@respx.mock
async def test_a_sync_killed_between_accounts_ends_like_a_clean_run(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice, bob = users["alice"], users["bob"]
    no_balances()

    # The same brokerage data for both users, under accounts of each one's own.
    def listing(request: httpx.Request) -> httpx.Response:
        tag, auth = ("a", AUTH) if request.url.params.get("userId") == str(alice.id) else ("b", BOB)
        return httpx.Response(200, json=[account(f"{tag}1", auth), account(f"{tag}2", auth)])

    respx.get(f"{BASE}/accounts").mock(side_effect=listing)
    for tag in ("a", "b"):
        respx.get(f"{BASE}/accounts/{tag}1/positions/all").mock(
            return_value=httpx.Response(
                200, json=positions(T0, ("AAPL", "10", "150", "100"), ("MSFT", "2", "300", None))
            )
        )
        respx.get(f"{BASE}/accounts/{tag}2/positions/all").mock(
            return_value=httpx.Response(200, json=positions(T0, ("AAPL", "30", "150", "140")))
        )

    # The worker's connection dies as the positions of alice's second account are written.
    await link(conn, alice)
    await conn.execute(
        """create function public.kill_sync() returns trigger language plpgsql
            security definer set search_path = '' as $$
            begin
              if exists (select 1 from new_rows p join public.brokerage_accounts a on a.id = p.account_id
                          where a.provider_account_id = 'a2') then
                perform pg_terminate_backend(pg_backend_pid());
                perform pg_sleep(5);
              end if;
              return null;
            end $$;
            create trigger kill_sync after insert on public.brokerage_positions
              referencing new table as new_rows
              for each statement execute function public.kill_sync()"""
    )
    await webhook(conn, alice, "CONNECTION_ADDED", brokerageAuthorizationId=AUTH)
    first = await run_jobs(conn, pool, registry)
    assert [d["status"] for d in first] == ["dead"]
    assert [status for status, _ in await events(conn, alice)] != ["processed"]
    await conn.execute("drop trigger kill_sync on public.brokerage_positions")

    # The fleet runs the job again.
    await conn.execute("update jobs set status = 'queued' where status = 'dead'")
    again = await run_jobs(conn, pool, registry)
    assert [d["status"] for d in again] == ["succeeded"]

    # Bob's brokerage reports the same, fault-free.
    await link(conn, bob)
    await webhook(conn, bob, "CONNECTION_ADDED", brokerageAuthorizationId=BOB)
    assert [d["status"] for d in await run_jobs(conn, pool, registry)] == ["succeeded"]

    faulted, clean = await holdings_of(conn, alice), await holdings_of(conn, bob)
    assert faulted == clean
    assert set(faulted) == {"AAPL", "MSFT"} and faulted["AAPL"]["account_count"] == 2
    assert (
        await events(conn, alice) == await events(conn, bob) == [("processed", "CONNECTION_ADDED")]
    )
