"""A payment event whose worker dies after the ledger write and before the event is marked
processed (its connection killed at that point, as kill -9 of the worker or a restart of
PostgreSQL leaves it), then delivered again: the invoice is paid and the credits granted
once, exactly as a fault-free run of the same event grants them."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_billing import balance, invoice, one, store, stripe_event
from tests.support.db import User
from worker.billing import jobs as billing_jobs
from worker.billing import process_webhook_event
from worker.errors import Retryable

LEDGER = (
    "select t.kind, t.amount, t.phase from credit_transfers t "
    "join credit_accounts a on a.id = t.credit_account_id "
    "where a.user_id = %s order by t.kind, t.amount"
)


@pytest.fixture
async def pro(conn: psycopg.AsyncConnection[Any]) -> uuid.UUID:
    plan_id = uuid.uuid4()
    await conn.execute(
        "insert into plans (id, name, price_monthly, max_bots, max_strategies, features) "
        "values (%s, 'TestPro', 29, 10, 10, '{\"monthly_credits\": 2000}')",
        (plan_id,),
    )
    return plan_id


def paid(event_id: str, session: str, inv: uuid.UUID) -> dict[str, Any]:
    return stripe_event(
        event_id,
        "checkout.session.completed",
        {
            "id": session,
            "object": "checkout.session",
            "payment_status": "paid",
            "amount_total": 2900,
            "currency": "usd",
            "payment_intent": f"pi_{session}",
            "metadata": {"invoice_id": str(inv)},
        },
    )


async def pay(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    user: User,
    plan: uuid.UUID,
    tag: str,
) -> tuple[uuid.UUID, uuid.UUID]:
    """A credit-bearing invoice and its payment event, stored: (invoice, event row)."""
    inv = await invoice(conn, user, "stripe", f"cs_{tag}", "29.00", plan, credits="500")
    event = paid(f"evt_{tag}", f"cs_{tag}", inv)
    await store(conn, "stripe", f"evt_{tag}", event["type"], event)
    row = await one(conn, "select id from webhook_events where event_id = %s", f"evt_{tag}")
    return inv, uuid.UUID(str(row))


async def effects(conn: psycopg.AsyncConnection[Any], user: User, inv: uuid.UUID) -> dict[str, Any]:
    return {
        "invoice": await one(conn, "select status from invoices where id = %s", inv),
        "balance": await balance(conn, user),
        "ledger": await (await conn.execute(LEDGER, (user.id,))).fetchall(),
        "subscriptions": await one(
            conn,
            "select count(*) from subscriptions where user_id = %s and status = 'active'",
            user.id,
        ),
        "notifications": await one(
            conn,
            "select count(*) from notifications where user_id = %s and kind = 'payment'",
            user.id,
        ),
    }


async def test_a_payment_killed_before_it_is_marked_processed_grants_credits_once(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    pro: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice, bob = users["alice"], users["bob"]
    inv, event = await pay(conn, pool, alice, pro, "killed")

    # The event's effects are written (invoice paid, plan, credits granted); the worker's
    # connection dies as it marks the event processed.
    finish = billing_jobs.inbox.finish
    kills = []

    async def killed_finish(db: Any, *args: Any, **kwargs: Any) -> None:
        assert isinstance(db, psycopg.AsyncConnection)
        assert (
            await one(
                conn,
                "select count(*) from credit_transfers t join credit_accounts a"
                " on a.id = t.credit_account_id where a.user_id = %s",
                alice.id,
            )
            == 0
        )
        await conn.execute("select pg_terminate_backend(%s)", (db.info.backend_pid,))
        kills.append(db.info.backend_pid)
        await finish(db, *args, **kwargs)

    monkeypatch.setattr(billing_jobs.inbox, "finish", killed_finish)
    with pytest.raises(Retryable, match="database unavailable"):
        await process_webhook_event(pool, event)
    monkeypatch.setattr(billing_jobs.inbox, "finish", finish)
    assert len(kills) == 1
    assert await balance(conn, alice) == 0
    assert await one(conn, "select status from webhook_events where id = %s", event) == "received"

    # The provider delivers the event again (the same row), and the job runs again.
    again = paid("evt_killed", "cs_killed", inv)
    await conn.execute(
        "insert into webhook_events (provider, event_id, event_type, payload) values ('stripe', %s, %s, %s)"
        " on conflict do nothing",
        ("evt_killed", again["type"], psycopg.types.json.Jsonb(again)),
    )
    assert (await process_webhook_event(pool, event))["outcome"] == "applied"
    assert (await process_webhook_event(pool, event))["outcome"] == "already_processed"

    # Bob's identical payment, fault-free.
    clean_inv, clean_event = await pay(conn, pool, bob, pro, "clean")
    assert (await process_webhook_event(pool, clean_event))["outcome"] == "applied"

    faulted, clean = await effects(conn, alice, inv), await effects(conn, bob, clean_inv)
    assert faulted == clean
    assert faulted["balance"] == Decimal("2500")  # 500 bought + 2000 of the plan, once
    assert await one(conn, "select status from webhook_events where id = %s", event) == "processed"
    assert await (await conn.execute("select * from credit_audit()")).fetchall() == []
