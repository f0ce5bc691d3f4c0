"""Partitioned webhook inbox and notifications: the migration that partitions them by week,
run on a populated database, keeps every row, who reads and updates what, the replay
function and Realtime's feed; retention folds old weeks (the rows that are not history stay
in `_kept`, nothing is published), and a webhook event redelivered after its week was
dropped is still refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import db as support
from tests.support.db import create_user, request_as
from tests.support.migrations import database_before, migrate

MIGRATION = next(
    Path(support.ROOT, "supabase/migrations").glob("*_fleet_partitioned_inbox_notifications.sql")
)
VERSION = MIGRATION.stem.split("_", 1)[0]
CHECKSUM = "select count(*), md5(string_agg(md5(t::text), '' order by t.id)) from public.{} t"
EVENTS = """
insert into webhook_events (provider, event_id, event_type, payload, status, received_at,
                            processed_at, waiting_for)
select case when n % 20 = 0 then 'stripe' else 'alpaca' end, 'evt-' || n, 't',
       jsonb_build_object('n', n), s.status, now() - n * interval '1 hour',
       case when s.status in ('processed', 'ignored', 'failed')
            then now() - n * interval '1 hour' + interval '1 minute' end,
       case when s.status = 'waiting' then array['k' || n] end
  from generate_series(1, 1440) n,
       lateral (select (array['processed', 'processed', 'processed', 'ignored', 'failed',
                              'received', 'waiting'])[1 + n % 7] as status) s
"""
NOTES = """
insert into notifications (user_id, kind, title, created_at, read_at)
select %(u)s, 'system', 'note ' || n, now() - n * interval '6 hours',
       case n %% 3 when 0 then null
                  when 1 then now() - n * interval '6 hours' + interval '1 day'
                  else now() - interval '1 day' end
  from generate_series(1, 480) n
"""
HISTORY_EVENT = "status in ('processed', 'ignored') and processed_at < now() - interval '30 days'"
HISTORY_NOTE = "read_at is not null and read_at < now() - interval '90 days'"


@pytest.fixture
def before_url() -> Iterator[str]:
    with database_before(VERSION) as url:
        yield url


async def rows(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> list[Any]:
    return await (await conn.execute(query, args)).fetchall()


async def one(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    row = await (await conn.execute(query, args)).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


async def seen(conn: psycopg.AsyncConnection[Any], who: Any, query: str) -> int:
    async with request_as(conn, who) as cur:
        await cur.execute(query)
        return cur.rowcount


async def test_partitioning_populated_inbox_and_notifications_keeps_rows_and_rules(
    before_url: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(before_url, autocommit=True) as conn:
        alice = await create_user(conn, "alice@inbox.test")
        bob = await create_user(conn, "bob@inbox.test")
        admin = await create_user(conn, "admin@inbox.test", role="admin")
        # 60 days of events, an hour apart, in every state; 120 days of notifications.
        await conn.execute(EVENTS)
        for user in (alice, bob):
            await conn.execute(NOTES, {"u": user.id})
        before = {
            t: await one(conn, CHECKSUM.format(t)) for t in ("webhook_events", "notifications")
        }
        assert before["webhook_events"][0] == 1440 and before["notifications"][0] == 960
        jobs_before = await one(conn, "select count(*) from jobs where kind = 'billing.webhook'")
        events = {
            r[0]: r[1:]
            for r in await rows(
                conn,
                f"select id, {HISTORY_EVENT}, provider, event_id from webhook_events",
            )
        }
        notes = {
            r[0]: r[1] for r in await rows(conn, f"select id, {HISTORY_NOTE} from notifications")
        }

    migrate(before_url.rsplit("/", 1)[1])

    async with await psycopg.AsyncConnection.connect(before_url, autocommit=True) as conn:
        for table in ("webhook_events", "notifications"):
            assert (
                await one(
                    conn, "select relkind from pg_class where oid = %s::regclass", f"public.{table}"
                )
                == "p"
            )
            assert await one(conn, CHECKSUM.format(table)) == before[table]
            # A week each from the oldest row's to a week ahead, an empty `_kept` below
            # them and an empty default partition.
            weeks, kept, default = await one(
                conn,
                "select count(*) filter (where c.relname ~ '_p[0-9]{8}$'),"
                " count(*) filter (where c.relname = %s), count(*) filter (where c.relname = %s)"
                " from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = %s::regclass",
                f"{table}_kept",
                f"{table}_default",
                f"public.{table}",
            )
            assert (kept, default) == (1, 1) and weeks >= (10 if table == "webhook_events" else 18)
            assert await one(conn, f"select count(*) from partitions.{table}_default") == 0
            assert await one(conn, f"select count(*) from partitions.{table}_kept") == 0
        assert await one(conn, "select count(*) from private.webhook_event_keys") == 1440
        # Jobs: moving a row is not an event.
        assert (
            await one(conn, "select count(*) from jobs where kind = 'billing.webhook'")
            == jobs_before
        )

        # Readers and writers through the parents' policies and grants.
        assert await seen(conn, alice, "select * from notifications") == 480
        assert await seen(conn, admin, "select * from webhook_events") == 1440
        assert await seen(conn, alice, "select * from webhook_events") == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await seen(conn, alice, "select * from partitions.notifications_kept")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await seen(conn, "anon", "select * from notifications")
        bobs = await one(
            conn, "select id from notifications where user_id = %s and read_at is null", bob.id
        )
        update = f"update notifications set read_at = now() where id = '{bobs}'"
        assert await seen(conn, alice, update) == 0
        assert await seen(conn, bob, update) == 1
        privileges = await one(
            conn,
            "select array_agg(r order by r) from unnest(array['anon', 'authenticated', 'service_role']) r"
            " where has_function_privilege(r, 'public.admin_replay_webhook_event(uuid, text)', 'execute')",
        )
        assert privileges == ["authenticated", "service_role"]
        pub = await rows(
            conn,
            "select t.tablename::text from pg_publication_tables t where t.pubname = 'supabase_realtime'"
            " and t.tablename in ('notifications', 'webhook_events')",
        )
        assert pub == [("notifications",)]

        # Retention: the weeks older than the keeps are folded; Realtime gets nothing.
        slot = f"tf_fold_{uuid.uuid4().hex[:8]}"
        await conn.execute("select pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        try:
            async with request_as(conn, "service_role") as cur:
                await cur.execute(
                    "select public.drop_history_partitions('webhook_events', interval '30 days') as e,"
                    " public.drop_history_partitions('notifications', interval '90 days') as n"
                )
                folded = await cur.fetchone() or {}
            assert folded["e"] >= 3 and folded["n"] >= 3
            changes = await rows(
                conn,
                "select data from pg_logical_slot_peek_binary_changes(%s, null, null,"
                " 'proto_version', '1', 'publication_names', 'supabase_realtime')",
                slot,
            )
            assert [bytes(c[0])[:1] for c in changes if bytes(c[0])[:1] in (b"I", b"U", b"D")] == []
        finally:
            await conn.execute("select pg_drop_replication_slot(%s)", (slot,))
        async with request_as(conn, "service_role") as cur:
            for table, keep in (("webhook_events", "30 days"), ("notifications", "90 days")):
                await cur.execute(
                    "select public.prune_history(%s, %s::interval, 10000) as n", (table, keep)
                )

        # Exactly history went: what is not history stays whatever its age.
        left_events = {r[0] for r in await rows(conn, "select id from webhook_events")}
        gone = set(events) - left_events
        assert gone and all(events[i][0] for i in gone)
        assert (
            await one(
                conn, f"select count(*) from partitions.webhook_events_kept where {HISTORY_EVENT}"
            )
            == 0
        )
        assert await one(conn, "select count(*) from partitions.webhook_events_kept") > 0
        left_notes = {r[0] for r in await rows(conn, "select id from notifications")}
        gone_notes = set(notes) - left_notes
        assert gone_notes and all(notes[i] for i in gone_notes)
        # Read before the keep but of a week that has not ended before it: goes with its week.
        assert (
            await one(
                conn, f"select count(*) from partitions.notifications_kept where {HISTORY_NOTE}"
            )
            == 0
        )
        # An old unread notification, now in `_kept`, is still marked read by its owner.
        old = await one(
            conn,
            "select id from partitions.notifications_kept where user_id = %s and read_at is null",
            alice.id,
        )
        assert (
            await seen(conn, alice, f"update notifications set read_at = now() where id = '{old}'")
            == 1
        )

        # A redelivery of an event whose week was dropped is refused: no row, no job.
        dropped = next(events[i][1:] for i in gone if events[i][1] == "stripe")
        jobs = await one(conn, "select count(*) from jobs where kind = 'billing.webhook'")
        inserted = await rows(
            conn,
            "insert into webhook_events (provider, event_id, event_type, payload)"
            " values (%s, %s, 't', '{}') returning id",
            *dropped,
        )
        assert inserted == []
        assert await one(conn, "select count(*) from jobs where kind = 'billing.webhook'") == jobs
        fresh = await rows(
            conn,
            "insert into webhook_events (provider, event_id, event_type, payload)"
            " values ('stripe', 'evt-new', 't', '{}') returning tableoid::regclass::text",
        )
        assert fresh[0][0].startswith("partitions.webhook_events_p")
        assert (
            await one(conn, "select count(*) from jobs where kind = 'billing.webhook'") == jobs + 1
        )
        with pytest.raises(psycopg.errors.CheckViolation, match="webhook_events_key_fixed"):
            await conn.execute(
                "update webhook_events set event_id = 'evt-1' where event_id = 'evt-new'"
            )
