"""Organisations through PostgREST: members invited by email act on the organisation's bots
with their own JWTs, by role; the worker runs an organisation bot and charges the paying
owner's credits, never the member who asked."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.integration.test_position_requests import QUIET, one, rpc
from tests.support.bots import create_bot, grant_credits, harness, register_worker, subscribe
from tests.support.db import User, request_as


async def balance(conn: psycopg.AsyncConnection[Any], user: User) -> tuple[Any, Any]:
    return tuple(
        await one(
            conn,
            "select credits_posted - debits_posted, debits_pending from public.credit_accounts"
            " where user_id = %s and kind = 'user'",
            user.id,
        )
    )


async def test_an_invited_member_runs_the_organisations_bot_on_the_owners_credits(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    owner, member = users["alice"], users["bob"]
    await subscribe(conn, owner, credits_per_trade="0.5")
    await grant_credits(conn, owner, "10")
    await grant_credits(conn, member, "10")
    org = (await rpc(conn, owner, "create_organisation('Trading desk')"))["id"]
    invitation = await rpc(
        conn, owner, "invite_to_organisation(%s, %s, 'member')", org, member.email.upper()
    )
    async with request_as(conn, member) as cur:
        await cur.execute("select id from public.organisation_invitations where status = 'pending'")
        assert [r["id"] for r in await cur.fetchall()] == [invitation["id"]]
    joined = await rpc(conn, member, "accept_organisation_invitation(%s)", invitation["id"])
    assert joined["role"] == "member"

    # The owner creates a bot for the organisation; the member sees it but may not edit it.
    bot = await create_bot(conn, owner, organisation_id=org, status="stopped", **QUIET)
    async with request_as(conn, member) as cur:
        await cur.execute("select id, user_id from public.bots")
        assert [(str(r["id"]), r["user_id"]) for r in await cur.fetchall()] == [(bot, owner.id)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="starts, pauses and stops"):
        async with request_as(conn, member) as cur:
            await cur.execute("update public.bots set stake_amount = 0.5 where id = %s", (bot,))

    # The member starts it and buys through manual_trade; the worker holds and charges the
    # owner's credits.
    async with request_as(conn, member) as cur:
        await cur.execute("update public.bots set status = 'running' where id = %s", (bot,))
        assert cur.rowcount == 1
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(3)
        buy = await rpc(conn, member, "manual_trade(%s, true, 'buy', null, 0.1)", bot)
        assert (buy["user_id"], buy["status"]) == (member.id, "pending")
        await h.runner.requests.run()
    (status,) = await one(conn, "select status from public.trades where bot_id = %s", bot)
    assert status == "open"
    assert await balance(conn, owner) == (9.5, 0)
    assert await balance(conn, member) == (10, 0)

    # Read-only: the member still reads the bot and its trade, and can no longer stop it.
    await rpc(conn, owner, "set_organisation_member_role(%s, %s, 'read_only')", org, member.id)
    async with request_as(conn, member) as cur:
        await cur.execute("select count(*) as n from public.trades where bot_id = %s", (bot,))
        assert (await cur.fetchone()) == {"n": 1}
        await cur.execute("update public.bots set status = 'paused' where id = %s", (bot,))
        assert cur.rowcount == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only reads its bots"):
        await rpc(conn, member, "stop_bot(%s, 'keep')", bot)

    # Leaving takes effect on the next request.
    await rpc(conn, member, "leave_organisation(%s)", org)
    async with request_as(conn, member) as cur:
        await cur.execute("select count(*) as n from public.bots")
        assert (await cur.fetchone()) == {"n": 0}


async def test_an_outsider_and_anon_see_nothing_of_an_organisation(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    owner, outsider = users["alice"], users["bob"]
    org = (await rpc(conn, owner, "create_organisation('Private desk')"))["id"]
    await create_bot(conn, owner, organisation_id=org, status="stopped")
    for table in ("organisations", "organisation_members", "bots"):
        async with request_as(conn, outsider) as cur:
            await cur.execute(f"select count(*) as n from public.{table}")
            assert (await cur.fetchone()) == {"n": 0}, table
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, "anon") as cur:
            await cur.execute("select count(*) from public.organisations")
    with pytest.raises(psycopg.errors.NoDataFound, match="no organisation of yours"):
        await rpc(conn, outsider, "invite_to_organisation(%s, 'x@example.test', 'admin')", org)
