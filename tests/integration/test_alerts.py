"""Operator alerts: each rule opens an incident when its condition holds, the operators'
channels (Telegram, Discord, an HTTP webhook; respx fakes) hear of it exactly once even
when two workers evaluate at the same moment, and once more when it clears."""

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

from tests.support.db import create_user, request_as
from worker.notify import DiscordChannel, TelegramChannel
from worker.ops import RULES, ChannelSender, OpsSettings, WebhookChannel, evaluate
from worker.ops.alerts import rules_due

HOOK = "https://alerts.test/hook"
DISCORD = "https://discord.com/api/webhooks/42/ops-channel"
TELEGRAM = "https://telegram.test"


def ops_settings(**over: Any) -> OpsSettings:
    base: dict[str, Any] = {"alert_bot_errors": 3, "alert_queue_wait_s": 300}
    return OpsSettings(_env_file=None, **{**base, **over})  # type: ignore[call-arg]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def sender(http: httpx.AsyncClient) -> ChannelSender:
    """The three channels; each evaluator builds its own, as each worker does."""
    return ChannelSender(
        telegram=(TelegramChannel(http, "bot-token", base_url=TELEGRAM, backoff_s=0), "-100"),
        discord=(DiscordChannel(http, backoff_s=0), DISCORD),
        webhook=WebhookChannel(http, HOOK),
    )


def posted(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


# Each rule: what makes it fire, its key, and what makes it clear.
CASES: dict[str, tuple[str, str, str]] = {
    "worker_dead": (
        """insert into workers (id, name, host, pid, version, status, heartbeat_at, stopped_at)
           values ('00000000-0000-0000-0000-0000000000aa', 'w-7', 'box-3', 1, 't', 'dead',
                   now() - interval '2 minutes', now())""",
        "00000000-0000-0000-0000-0000000000aa",
        "update workers set status = 'running', stopped_at = null, heartbeat_at = now()",
    ),
    "queue_waiting": (
        """insert into jobs (kind, queue, run_at, created_at)
           values ('test.waiting', 'slowq', now() - interval '10 minutes', now() - interval '10 minutes')""",
        "slowq",
        "update jobs set status = 'succeeded', finished_at = now() where queue = 'slowq'",
    ),
    "dead_jobs": (
        """insert into jobs (kind, status, attempts, last_error, finished_at)
           values ('test.dying', 'dead', 5, 'boom', now())""",
        "test.dying",
        "update jobs set finished_at = now() - interval '1 hour' where kind = 'test.dying'",
    ),
    "webhook_failures": (
        """insert into webhook_events (provider, event_id, event_type, payload, status, error)
           values ('stripe', 'evt_1', 'invoice.paid', '{}', 'failed', 'no such invoice')""",
        "stripe",
        "update webhook_events set status = 'processed', processed_at = now()",
    ),
    "ledger_audit": (
        # Both columns off by the same amount: the balance and the ledger's sum stay right.
        """update credit_accounts set credits_posted = credits_posted + 5,
                  debits_posted = debits_posted + 5 where code = 'system:grants'""",
        "balance_equals_transfers",
        """update credit_accounts set credits_posted = credits_posted - 5,
                  debits_posted = debits_posted - 5 where code = 'system:grants'""",
    ),
    "service_down": (
        """insert into service_status (service, target, status, error, failures, checked_at, changed_at)
           values ('exchange', 'kraken', 'down', 'HTTP 503', 3, now(), now())""",
        "exchange:kraken",
        "update service_status set status = 'healthy', error = null, failures = 0",
    ),
    "bot_errors": (
        """insert into bot_logs (user_id, log_level, message)
           select %(user)s, 'error', 'exchange refused' from generate_series(1, 3)""",
        "",
        "update bot_logs set created_at = now() - interval '1 hour'",
    ),
}


@pytest.mark.parametrize("rule", list(CASES))
async def test_each_rule_alerts_once_per_incident_across_two_evaluators_and_recovers_once(
    rule: str,
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    http: httpx.AsyncClient,
) -> None:
    start, key, clear = CASES[rule]
    user = await create_user(conn, "someone@test.local")
    settings = ops_settings()

    async def two_evaluators() -> None:
        await asyncio.gather(
            evaluate(pool, settings, sender(http)), evaluate(pool, settings, sender(http))
        )

    with respx.mock() as mock:
        hook = mock.post(HOOK).respond(204)
        discord = mock.post(DISCORD).respond(204)
        telegram = mock.post(f"{TELEGRAM}/botbot-token/sendMessage").respond(json={"ok": True})

        await two_evaluators()
        assert posted(hook) == [], "nothing is wrong yet"

        await conn.execute("set session_replication_role = replica")  # the ledger's guards
        await conn.execute(start, {"user": user.id})
        await conn.execute("set session_replication_role = origin")
        await two_evaluators()
        await two_evaluators()  # still firing: no second message
        [alert] = posted(hook)
        assert (alert["state"], alert["rule"], alert["key"]) == ("firing", rule, key)
        assert alert["text"].startswith(f"ALERT [{rule}] ")
        assert [c["content"] for c in posted(discord)] == [alert["text"]]
        assert [c["text"] for c in posted(telegram)] == [alert["text"]]
        assert posted(telegram)[0]["chat_id"] == "-100"

        await conn.execute("set session_replication_role = replica")
        await conn.execute(clear)
        await conn.execute("set session_replication_role = origin")
        await two_evaluators()
        await two_evaluators()
        states = [(p["state"], p["rule"], p["key"]) for p in posted(hook)]
        assert states == [("firing", rule, key), ("resolved", rule, key)]
        assert posted(hook)[1]["text"].startswith(f"RESOLVED [{rule}] after ")
        assert len(posted(discord)) == len(posted(telegram)) == 2

    cur = await conn.execute(
        "select rule, key, notified_at is not null, resolved_at is not null,"
        " recovery_notified_at is not null from alert_incidents"
    )
    assert await cur.fetchall() == [(rule, key, True, True, True)]


async def test_an_alert_no_channel_took_is_sent_at_the_next_run_and_only_then(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, http: httpx.AsyncClient
) -> None:
    settings = ops_settings(alert_rules="dead_jobs")
    only_hook = ChannelSender(webhook=WebhookChannel(http, HOOK))
    await conn.execute(CASES["dead_jobs"][0])
    with respx.mock() as mock:
        hook = mock.post(HOOK)
        hook.side_effect = [httpx.Response(503), httpx.Response(204), httpx.Response(204)]
        first = await evaluate(pool, settings, only_hook)
        assert first["opened"] == ["dead_jobs:test.dying"] and first["announced"] == []
        second = await evaluate(pool, settings, only_hook)
        assert second["opened"] == [] and second["announced"] == ["dead_jobs:test.dying"]
        third = await evaluate(pool, settings, only_hook)
        assert third["announced"] == [] and hook.call_count == 2


async def test_a_recovery_no_channel_took_keeps_the_incident_open_until_it_is_sent(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, http: httpx.AsyncClient
) -> None:
    settings = ops_settings(alert_rules="service_down")
    only_hook = ChannelSender(webhook=WebhookChannel(http, HOOK))
    start, _, clear = CASES["service_down"]
    await conn.execute(start)
    with respx.mock() as mock:
        hook = mock.post(HOOK)
        hook.side_effect = [httpx.Response(204), httpx.ConnectError("down"), httpx.Response(204)]
        await evaluate(pool, settings, only_hook)
        await conn.execute(clear)
        assert (await evaluate(pool, settings, only_hook))["resolved"] == []
        assert (await evaluate(pool, settings, only_hook))["resolved"] == [
            "service_down:exchange:kraken"
        ]
        assert [p["state"] for p in posted(hook)] == ["firing", "resolved", "resolved"]


async def test_without_channels_incidents_are_still_kept_for_the_console(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool
) -> None:
    settings = ops_settings(alert_rules="webhook_failures")
    start, _, clear = CASES["webhook_failures"]
    await conn.execute(start)
    assert (await evaluate(pool, settings, ChannelSender()))["opened"] == [
        "webhook_failures:stripe"
    ]
    await conn.execute(clear)
    assert (await evaluate(pool, settings, ChannelSender()))["resolved"] == [
        "webhook_failures:stripe"
    ]
    admin = await create_user(conn, "oncall@test.local", role="admin")
    user = await create_user(conn, "nosy@test.local")
    async with request_as(conn, admin) as cur:
        await cur.execute("select rule, key, notified_at from alert_incidents")
        assert await cur.fetchall() == [
            {"rule": "webhook_failures", "key": "stripe", "notified_at": None}
        ]
    async with request_as(conn, user) as cur:
        await cur.execute("select count(*) as n from alert_incidents")
        assert await cur.fetchone() == {"n": 0}


async def test_rules_and_thresholds_come_from_the_settings(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool
) -> None:
    user = await create_user(conn, "bots@test.local")
    await conn.execute(CASES["bot_errors"][0], {"user": user.id})
    quiet = ChannelSender()
    assert (await evaluate(pool, ops_settings(alert_bot_errors=4), quiet))["opened"] == []
    assert (await evaluate(pool, ops_settings(alert_rules="dead_jobs"), quiet))["opened"] == []
    assert (await evaluate(pool, ops_settings(alert_bot_errors=3), quiet))["opened"] == [
        "bot_errors"
    ]
    with pytest.raises(ValueError, match="alert_rules"):
        ops_settings(alert_rules="worker_dead,cpu_hot")


def test_the_ledger_audit_runs_once_per_its_period_and_the_other_rules_every_time() -> None:
    settings = ops_settings(alerts_interval_s=30, alert_ledger_audit_every_s=300)
    runs = [rules_due(settings, 1_800_000_000 + 30 * n) for n in range(20)]
    assert [n for n, rules in enumerate(runs) if "ledger_audit" in rules] == [0, 10]
    assert all(set(rules) >= set(RULES) - {"ledger_audit"} for rules in runs)


async def test_once_a_message_reaches_no_channel_the_others_wait_for_the_next_run(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, http: httpx.AsyncClient
) -> None:
    settings = ops_settings(alert_rules="dead_jobs,webhook_failures")
    only_hook = ChannelSender(webhook=WebhookChannel(http, HOOK))
    await conn.execute(CASES["dead_jobs"][0])
    await conn.execute(CASES["webhook_failures"][0])
    with respx.mock() as mock:
        hook = mock.post(HOOK)
        hook.side_effect = [
            httpx.ConnectError("unreachable"),
            httpx.Response(204),
            httpx.Response(204),
        ]
        first = await evaluate(pool, settings, only_hook)
        assert len(first["opened"]) == 2 and first["announced"] == []
        assert hook.call_count == 1, "the second alert did not wait out a dead channel"
        second = await evaluate(pool, settings, only_hook)
        assert sorted(second["announced"]) == ["dead_jobs:test.dying", "webhook_failures:stripe"]
        assert hook.call_count == 3
