"""Webhook jobs whose payload is not what their kind takes end dead with the reason."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.support.fleet import fleet_settings, job_status, worker_running
from tests.support.snaptrade import holdings_registry
from worker.billing import BillingSettings
from worker.billing import register as register_billing
from worker.fleet.runtime import Worker


async def test_webhook_jobs_with_an_invalid_payload_end_dead_with_the_validation_message(
    db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    registry = holdings_registry()
    register_billing(registry, BillingSettings())
    # What a buggy trigger or someone with SQL access could write.
    cur = await conn.execute(
        "insert into webhook_events (provider, event_id, event_type, payload) "
        "values ('snaptrade', 'w-no-connection', 'CONNECTION_BROKEN', '{}') returning id"
    )
    row = await cur.fetchone()
    assert row is not None
    cur = await conn.execute(
        "insert into jobs (kind, payload, max_attempts) values "
        "('billing.webhook', '{\"webhook_event_id\": \"evt_1\"}', 10), "
        "('holdings.sync_account', '{\"webhook_event_id\": 42, \"surprise\": true}', 5) "
        "returning id"
    )
    billing, holdings = [r[0] for r in await cur.fetchall()]
    cur = await conn.execute(
        "select id from jobs where kind = 'holdings.connection_status' "
        "and payload ->> 'webhook_event_id' = %s",
        (str(row[0]),),
    )
    missing = await cur.fetchone()
    assert missing is not None
    async with worker_running(Worker(fleet_settings(db_url), registry)):
        for job_id in (billing, holdings, missing[0]):
            await job_status(conn, job_id, "dead")
    cur = await conn.execute(
        "select id, attempts, last_error from jobs where id = any(%s) order by id",
        ([billing, holdings, missing[0]],),
    )
    errors = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
    assert errors[billing][0] == 1
    assert errors[billing][1].startswith("invalid payload: 1 validation error for WebhookEvent")
    assert "webhook_event_id" in errors[billing][1]
    assert errors[holdings][0] == 1
    assert errors[holdings][1].startswith("invalid payload: 2 validation errors for SnapTradeEvent")
    assert "surprise" in errors[holdings][1]
    # A webhook naming no connection: its job and its event say what is missing.
    assert errors[missing[0]] == (1, "Fatal: job payload is missing 'provider_connection_id'")
    cur = await conn.execute(
        "select status, error from webhook_events where event_id = 'w-no-connection'"
    )
    assert await cur.fetchone() == ("failed", "job payload is missing 'provider_connection_id'")
