"""The operator console against a real database: who gets in, what each page shows, and
that admin actions go through the audited SQL functions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.integration.test_leases import running_bots
from tests.support import console
from tests.support.db import User
from worker.console.app import Console
from worker.console.events import Hub

Conn = psycopg.AsyncConnection[Any]


@pytest.fixture
async def app(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The console in this process (its lifespan opens the pool and the LISTEN)."""
    c = Console(console.settings(db_url))
    async with c.app.router.lifespan_context(c.app):
        transport = httpx.ASGITransport(app=c.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            yield client


def as_(user: User, **kw: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {console.token(user, **kw)}"}


async def dead_job(conn: Conn, kind: str = "demo.sync", error: str = "exchange said no") -> int:
    cur = await conn.execute(
        "insert into public.jobs (kind, status, attempts, max_attempts, last_error, finished_at) "
        "values (%s, 'dead', 5, 5, %s, now()) returning id",
        (kind, error),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_without_a_session_every_page_sends_to_the_login_page(
    app: httpx.AsyncClient,
) -> None:
    for path in ("/", "/queue", "/part/queue", "/events", "/audit"):
        r = await app.get(path)
        assert (r.status_code, r.headers["location"]) == (303, "/login"), path
    r = await app.get("/login")
    assert r.status_code == 200 and 'name="token"' in r.text


async def test_a_user_or_a_provider_is_refused_with_403(
    app: httpx.AsyncClient, users: dict[str, User]
) -> None:
    for who in ("alice", "provider"):
        r = await app.get("/", headers=as_(users[who]))
        assert r.status_code == 403 and "not an admin" in r.text
        r = await app.post("/login", content=f"token={console.token(users[who])}")
        assert r.status_code == 403 and "set-cookie" not in r.headers


async def test_an_expired_session_goes_back_to_the_login_page(
    app: httpx.AsyncClient, users: dict[str, User]
) -> None:
    r = await app.get("/queue", headers=as_(users["admin"], expires_in=-120))
    assert (r.status_code, r.headers["location"]) == (303, "/login?expired=1")
    r = await app.get("/login?expired=1")
    assert "Your session has expired" in r.text
    r = await app.post("/login", content=f"token={console.token(users['admin'], expires_in=-120)}")
    assert r.status_code == 401 and "expired" in r.text


async def test_a_token_signed_with_another_secret_is_refused(
    app: httpx.AsyncClient, users: dict[str, User]
) -> None:
    forged = console.token(users["admin"], secret="not-the-project-secret-at-all-0123456789")
    r = await app.post("/login", content=f"token={forged}")
    assert r.status_code == 401 and "refused" in r.text
    r = await app.post("/login", content="token=not-a-token")
    assert r.status_code == 401


async def test_an_admin_signs_in_and_the_cookie_carries_the_session(
    app: httpx.AsyncClient, users: dict[str, User]
) -> None:
    r = await app.post("/login", content=f"token={console.token(users['admin'])}")
    assert (r.status_code, r.headers["location"]) == (303, "/")
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    r = await app.get("/")
    assert r.status_code == 200 and "admin@test.local" in r.text
    assert 'id="users-total">4<' in r.text


async def test_an_admin_demoted_since_the_token_was_issued_is_refused(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    headers = as_(users["admin"])
    assert (await app.get("/fleet", headers=headers)).status_code == 200
    await conn.execute(
        "select public.admin_set_user_role(%s, 'user', 'rotation over')", (users["admin"].id,)
    )
    r = await app.get("/fleet", headers=headers)
    assert r.status_code == 403 and "no longer an admin" in r.text


async def test_every_page_renders_for_an_admin(
    app: httpx.AsyncClient, users: dict[str, User]
) -> None:
    headers = as_(users["admin"])
    for path in ("/", "/fleet", "/queue", "/bots", "/webhooks", "/ledger", "/services",
                 "/marketplace", "/audit", "/users"):  # fmt: skip
        r = await app.get(path, headers=headers)
        assert r.status_code == 200, (path, r.text[-500:])
    assert (await app.get("/nowhere", headers=headers)).status_code == 404


async def test_the_queue_shows_dead_jobs_and_a_retry_is_audited(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    headers = as_(users["admin"])
    job = await dead_job(conn)
    r = await app.get("/queue", headers=headers)
    assert f'data-job="{job}"' in r.text and "exchange said no" in r.text
    assert 'id="queue-dead">1<' in r.text
    r = await app.post(f"/queue/jobs/{job}/retry", headers=headers)
    assert r.status_code == 303 and r.headers["location"].startswith("/queue?done=")
    cur = await conn.execute("select status from public.jobs where id = %s", (job,))
    assert await cur.fetchone() == ("queued",)
    r = await app.get("/audit", headers=headers)
    assert "retry_job" in r.text and f"job {job}" in r.text and "admin@test.local" in r.text


async def test_a_discard_needs_a_reason_and_leaves_the_job_dead_without_one(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    headers = as_(users["admin"])
    job = await dead_job(conn)
    r = await app.post(f"/queue/jobs/{job}/discard", headers=headers, content="reason=")
    assert r.status_code == 303 and "failed=" in r.headers["location"]
    cur = await conn.execute("select status from public.jobs where id = %s", (job,))
    assert await cur.fetchone() == ("dead",)
    r = await app.post(f"/queue/jobs/{job}/discard", headers=headers, content="reason=noise")
    assert "done=" in r.headers["location"]
    cur = await conn.execute(
        "select action, reason from public.admin_audit_log where target_id = %s", (str(job),)
    )
    assert await cur.fetchall() == [("discard_job", "noise")]
    r = await app.post("/queue/jobs/999999/retry", headers=headers)
    assert "failed=" in r.headers["location"] and "no%20such%20job" in r.headers["location"]


async def test_a_failed_webhook_event_is_replayed_into_a_new_job_and_audited(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    headers = as_(users["admin"])
    cur = await conn.execute(
        "insert into public.webhook_events (provider, event_id, event_type, payload) "
        "values ('stripe', 'evt_replay', 'invoice.paid', '{}') returning id"
    )
    row = await cur.fetchone()
    assert row is not None
    event = str(row[0])
    await conn.execute(
        "update public.webhook_events set status = 'failed', attempts = 3, "
        "error = 'stripe said no' where id = %s",
        (event,),
    )
    # Its job is still waiting for another attempt: that job's retry is the way, not a replay.
    r = await app.post(f"/webhooks/events/{event}/replay", headers=headers, content="reason=x")
    assert "failed=" in r.headers["location"] and "retry%20that%20job" in r.headers["location"]
    await conn.execute(
        "update public.jobs set status = 'dead', attempts = max_attempts, finished_at = now() "
        "where payload ->> 'webhook_event_id' = %s",
        (event,),
    )
    jobs = "select count(*) from public.jobs where kind = 'billing.webhook' and status = 'queued'"
    before = await (await conn.execute(jobs)).fetchone()
    r = await app.get("/webhooks", headers=headers)
    assert f'data-event="{event}"' in r.text and "stripe said no" in r.text
    assert f"/webhooks/events/{event}/replay" in r.text
    r = await app.post(f"/webhooks/events/{event}/replay", headers=headers, content="reason=")
    assert r.status_code == 303 and "failed=" in r.headers["location"]
    r = await app.post(
        f"/webhooks/events/{event}/replay", headers=headers, content="reason=stripe+is+back"
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/webhooks?done=")
    cur = await conn.execute("select status from public.webhook_events where id = %s", (event,))
    assert await cur.fetchone() == ("received",)
    after = await (await conn.execute(jobs)).fetchone()
    assert before is not None and after == (before[0] + 1,)
    cur = await conn.execute(
        "select action, reason, before ->> 'status', after ->> 'status' "
        "from public.admin_audit_log where target_id = %s",
        (event,),
    )
    assert await cur.fetchall() == [
        ("replay_webhook_event", "stripe is back", "failed", "received")
    ]
    r = await app.get("/webhooks", headers=headers)
    assert f'data-event="{event}"' not in r.text
    # Only a failed event is replayed: a second replay is refused, and so is a made-up id.
    r = await app.post(f"/webhooks/events/{event}/replay", headers=headers, content="reason=x")
    assert "failed=" in r.headers["location"] and "only%20failed" in r.headers["location"]
    r = await app.post("/webhooks/events/not-a-uuid/replay", headers=headers, content="reason=x")
    assert r.status_code == 303 and "failed=" in r.headers["location"]
    # No job processes TradingView events: a replay would leave one received forever.
    cur = await conn.execute(
        "insert into public.webhook_events (provider, event_id, event_type, payload, status) "
        "values ('tradingview', 'tv_1', 'alert', '{}', 'failed') returning id::text"
    )
    row = await cur.fetchone()
    assert row is not None
    r = await app.post(f"/webhooks/events/{row[0]}/replay", headers=headers, content="reason=x")
    assert "failed=" in r.headers["location"] and "no%20job%20processes" in r.headers["location"]


async def test_the_queue_depth_chart_counts_jobs_waiting_each_minute(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    # Three jobs enqueued 20 minutes ago; a worker claimed one 10 minutes ago.
    await conn.execute(
        "insert into public.jobs (kind, created_at, run_at) "
        "select 'demo.sync', now() - interval '20 minutes', now() - interval '20 minutes' "
        "from generate_series(1, 3)"
    )
    await conn.execute(
        "update public.jobs set status = 'running', started_at = now() - interval '10 minutes' "
        "where id = (select max(id) from public.jobs where kind = 'demo.sync')"
    )
    r = await app.get("/queue", headers=as_(users["admin"]))
    chart = r.text.split('id="queue-depth-chart"', 1)[1].split("></div>", 1)[0]
    x = json.loads(chart.split("data-x='", 1)[1].split("'", 1)[0])
    y = json.loads(chart.split("data-y='", 1)[1].split("'", 1)[0])
    assert len(x) == len(y) == 60
    now = x[-1] + 60

    def at(minutes_ago: int) -> int:
        return int(y[x.index(now - 60 * minutes_ago)])

    assert at(15) - at(40) == 3
    assert at(5) - at(40) == 2


def chart_of(html: str, chart_id: str) -> dict[int, float]:
    """The series a page's chart draws: x (epoch seconds) to y."""
    chart = html.split(f'id="{chart_id}"', 1)[1].split("></div>", 1)[0]
    x = json.loads(chart.split("data-x='", 1)[1].split("'", 1)[0])
    y = json.loads(chart.split("data-y='", 1)[1].split("'", 1)[0])
    return dict(zip(x, y, strict=True))


async def test_trades_per_hour_and_webhook_lag_are_charted(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    headers = as_(users["admin"])
    bob = users["bob"]
    await conn.execute(
        "insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, "
        "initial_balance, current_balance, stake_amount) values "
        "(%s, 'charted', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 1, 0.1)",
        (bob.id,),
    )
    # Two trades three hours ago, one this hour, one two days ago (outside the window).
    await conn.execute(
        "insert into public.trades (bot_id, user_id, exchange, trading_pair, side, amount, price, "
        "entry_time) select b.id, b.user_id, 'binance', 'ETH/BTC', 'buy', 1, 0.1, "
        "date_trunc('hour', now()) - o from public.bots b, (values (interval '3 hours'), "
        "(interval '3 hours'), (interval '0 hours'), (interval '2 days')) v(o) "
        "where b.name = 'charted'"
    )
    hour = await (
        await conn.execute("select extract(epoch from date_trunc('hour', now()))::bigint")
    ).fetchone()
    assert hour is not None
    this_hour = int(hour[0])
    trades = chart_of((await app.get("/bots", headers=headers)).text, "trades-per-hour-chart")
    assert len(trades) == 24
    assert trades[this_hour] == 1 and trades[this_hour - 3 * 3600] == 2
    assert sum(trades.values()) == 3

    # Webhook events processed 2 s and 10 s after they arrived, two hours ago.
    await conn.execute(
        "insert into public.webhook_events (provider, event_id, event_type, payload, status, "
        "received_at, processed_at) select 'stripe', 'evt_lag_' || s, 'invoice.paid', '{}', "
        "'processed', date_trunc('hour', now()) - interval '2 hours', "
        "date_trunc('hour', now()) - interval '2 hours' + make_interval(secs => s) "
        "from (values (2), (10)) v(s)"
    )
    lag = chart_of((await app.get("/webhooks", headers=headers)).text, "webhook-lag-chart")
    assert lag == {this_hour - 2 * 3600: pytest.approx(9.6)}


async def test_the_fleet_page_shows_a_lease_taken_over_by_another_worker(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    headers = as_(users["admin"])
    (bot,) = await running_bots(conn, 1)
    ids = []
    for name in ("worker-a", "worker-b"):
        cur = await conn.execute(
            "insert into public.workers (name, host, pid, version, metadata) "
            "values (%s, 'test', 1, 'test', '{\"leases\": true}') returning id::text",
            (name,),
        )
        row = await cur.fetchone()
        assert row is not None
        ids.append(row[0])
    await conn.execute("select * from public.acquire_bot_leases(%s, 3600)", (ids[0],))
    # Renewals by the holder, and the holder taking its own bot back, are no takeover.
    await conn.execute("select * from public.acquire_bot_leases(%s, 3600)", (ids[0],))
    await conn.execute("select public.release_bot_leases(%s)", (ids[0],))
    await conn.execute("select * from public.acquire_bot_leases(%s, 3600)", (ids[0],))
    r = await app.get("/fleet", headers=headers)
    assert f'data-bot="{bot}"' not in r.text and "no takeover in the last hour" in r.text
    # worker-a is stopped; worker-b takes the bot with the next epoch.
    await conn.execute("update public.workers set status = 'stopped' where id = %s", (ids[0],))
    await conn.execute("select * from public.acquire_bot_leases(%s, 0)", (ids[0],))
    cur = await conn.execute("select * from public.acquire_bot_leases(%s, 3600)", (ids[1],))
    assert [(str(b), e) for b, e in await cur.fetchall()] == [(bot, 3)]
    r = await app.get("/fleet", headers=headers)
    row = r.text.split(f'data-bot="{bot}"', 1)[1].split("</tr>", 1)[0]
    assert "<td>worker-a</td><td>worker-b</td><td>3</td>" in row


async def test_a_user_cannot_act_even_by_posting_directly(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    job = await dead_job(conn)
    r = await app.post(f"/queue/jobs/{job}/retry", headers=as_(users["alice"]))
    assert r.status_code == 403
    cur = await conn.execute("select status from public.jobs where id = %s", (job,))
    assert await cur.fetchone() == ("dead",)


async def test_a_cross_site_post_is_refused(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    job = await dead_job(conn)
    headers = {**as_(users["admin"]), "origin": "https://evil.example"}
    r = await app.post(f"/queue/jobs/{job}/retry", headers=headers)
    assert r.status_code == 403
    cur = await conn.execute("select status from public.jobs where id = %s", (job,))
    assert await cur.fetchone() == ("dead",)


async def test_verifying_a_strategy_is_audited_with_its_reason(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    headers = as_(users["admin"])
    cur = await conn.execute(
        "insert into public.strategies (user_id, name, strategy_type, engine, is_public, "
        "parameters) values (%s, 'Trend rider', 'marketplace', 'rules', true, '{}') returning id",
        (users["provider"].id,),
    )
    row = await cur.fetchone()
    assert row is not None
    strategy = row[0]
    r = await app.get("/marketplace", headers=headers)
    assert f'data-strategy="{strategy}"' in r.text and "Trend rider" in r.text
    r = await app.post(
        f"/marketplace/strategies/{strategy}/verify",
        headers=headers,
        content="verified=true&reason=reviewed+the+rules",
    )
    assert "done=" in r.headers["location"]
    r = await app.get("/audit", headers=headers)
    assert "verify_strategy" in r.text and "reviewed the rules" in r.text
    r = await app.post(
        "/marketplace/strategies/not-a-uuid/verify",
        headers=headers,
        content="verified=true&reason=x",
    )
    assert r.status_code == 303 and "failed=" in r.headers["location"]


async def test_ledger_and_services_pages(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    headers = as_(users["admin"])
    r = await app.get("/ledger", headers=headers)
    assert "credit_audit() finds nothing" in r.text and "system:grants" in r.text
    r = await app.get("/services", headers=headers)
    assert 'id="no-checks"' in r.text
    await conn.execute(
        "select public.record_service_check('stripe', 'api.stripe.com', false, 12, 'HTTP 503')"
    )
    r = await app.get("/services", headers=headers)
    assert 'id="no-checks"' not in r.text
    assert "stripe" in r.text and "HTTP 503" in r.text


async def test_one_listen_connection_feeds_every_subscriber(db_url: str, conn: Conn) -> None:
    hub = Hub(interval_s=0)
    listener = asyncio.create_task(hub.listen(db_url))
    try:
        await asyncio.wait_for(hub.connected.wait(), 10)
        with hub.subscribe() as first, hub.subscribe() as second:
            await conn.execute("select public.enqueue_job('demo.sync')")
            for q in (first, second):
                while (await asyncio.wait_for(q.get(), 10)) != "queue":
                    pass
            await dead_job(conn)
            await conn.execute(
                "select public.admin_retry_job((select max(id) from public.jobs where status = 'dead'))"
            )
            seen: set[str] = set()
            while not {"queue", "audit"} <= seen:
                seen.add(await asyncio.wait_for(first.get(), 10))
            # A service whose health changes redraws the Services page.
            await conn.execute(
                "select public.record_service_check('telegram', 'api.telegram.org', true, 5, null)"
            )
            while (await asyncio.wait_for(second.get(), 10)) != "services":
                pass
        cur = await conn.execute(
            "select count(*) from pg_stat_activity "
            "where application_name = 'tradefleet-console-listen' and datname = current_database()"
        )
        assert await cur.fetchone() == (1,)
    finally:
        listener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listener


async def test_users_are_found_by_email_and_made_providers_without_secrets(
    app: httpx.AsyncClient, users: dict[str, User], conn: Conn
) -> None:
    headers = as_(users["admin"])
    await conn.execute(
        "update public.profiles set telegram_chat_id = '4242424242', "
        "discord_webhook_url = 'https://discord.com/api/webhooks/42/hook-secret' where id = %s",
        (users["bob"].id,),
    )
    r = await app.get("/users?q=bob", headers=headers)
    assert f'data-user="{users["bob"].id}"' in r.text
    assert f'data-user="{users["alice"].id}"' not in r.text
    assert "4242424242" not in r.text and "hook-secret" not in r.text
    assert 'data-src="/part/users?q=bob"' in r.text
    r = await app.get("/users?q=%25", headers=headers)  # a % is searched for, not a wildcard
    assert "data-user=" not in r.text
    r = await app.post(
        f"/users/{users['bob'].id}/role?q=bob", headers=headers, content="role=provider&reason=ok"
    )
    assert r.headers["location"].startswith("/users?q=bob&done=")
    cur = await conn.execute("select role from public.profiles where id = %s", (users["bob"].id,))
    assert await cur.fetchone() == ("provider",)
    r = await app.post(
        f"/users/{users['bob'].id}/role", headers=headers, content="role=admin&reason=promote"
    )
    assert "failed=" in r.headers["location"]  # only the service role grants admin
    cur = await conn.execute("select role from public.profiles where id = %s", (users["bob"].id,))
    assert await cur.fetchone() == ("provider",)
