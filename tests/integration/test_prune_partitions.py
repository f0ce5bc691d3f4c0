"""Retention of the webhook inbox and notifications: a prune batch deletes from `_kept` and
the default partition by name, and neither plans, locks nor reads a weekly partition;
what is not history, and the history of a week that has not been folded yet, stays."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.support.db import create_user, request_as

WEEK = "private.history_step_start(interval '7 days', now())"
# One row per case; received_at decides the partition: before every week (`_kept`), this
# week (its partition), five weeks ahead (no partition: the default one).
EVENTS = f"""
insert into webhook_events (provider, event_id, event_type, payload, status, received_at, processed_at)
values ('alpaca', 'kept-processed', 't', '{{}}', 'processed', now() - interval '60 days', now() - interval '59 days'),
       ('alpaca', 'kept-ignored', 't', '{{}}', 'ignored', now() - interval '60 days', now() - interval '59 days'),
       ('alpaca', 'kept-failed', 't', '{{}}', 'failed', now() - interval '60 days', now() - interval '59 days'),
       ('alpaca', 'kept-waiting', 't', '{{}}', 'received', now() - interval '60 days', null),
       ('alpaca', 'week-processed', 't', '{{}}', 'processed', {WEEK}, {WEEK}),
       ('alpaca', 'default-processed', 't', '{{}}', 'processed', {WEEK} + interval '35 days', {WEEK}),
       ('alpaca', 'default-received', 't', '{{}}', 'received', {WEEK} + interval '35 days', null)
"""
NOTES = f"""
insert into notifications (user_id, kind, title, created_at, read_at)
values (%(u)s, 'system', 'kept-read', now() - interval '60 days', now() - interval '59 days'),
       (%(u)s, 'system', 'kept-unread', now() - interval '60 days', null),
       (%(u)s, 'system', 'week-read', {WEEK}, {WEEK}),
       (%(u)s, 'system', 'default-read', {WEEK} + interval '35 days', {WEEK}),
       (%(u)s, 'system', 'default-unread', {WEEK} + interval '35 days', null)
"""
WHERE = {
    "webhook_events": "select event_id, tableoid::regclass::text from webhook_events",
    "notifications": "select title, tableoid::regclass::text from notifications",
}
# The partitions of the table the current transaction has locked, and those it read.
LOCKED = """
select coalesce(array_agg(distinct c.relname::text order by c.relname::text), '{}')
  from pg_locks l join pg_class c on c.oid = l.relation
 where l.pid = pg_backend_pid() and c.relkind in ('r', 'p')
   and c.relnamespace = 'partitions'::regnamespace and c.relname like %s
"""
READ = """
select coalesce(array_agg(s.relname::text order by s.relname), '{}')
  from pg_stat_xact_user_tables s
 where s.schemaname = 'partitions' and s.relname like %s
   and coalesce(s.seq_scan, 0) + coalesce(s.idx_scan, 0) > 0
"""


async def placed(conn: psycopg.AsyncConnection[Any], table: str) -> dict[str, str]:
    cur = await conn.execute(WHERE[table])
    return {name: part.removeprefix("partitions.") for name, part in await cur.fetchall()}


async def prune_once(
    conn: psycopg.AsyncConnection[Any], table: str, batch: int
) -> tuple[int, list[str], list[str]]:
    """One batch as the fleet runs it; how many went, what it locked and what it read."""
    # The backend's table counters since their last flush are the transaction's own only
    # once the earlier statements' are flushed (at the next idle moment, forced here).
    await conn.execute("select pg_stat_force_next_flush()")
    async with request_as(conn, "service_role") as cur:
        await cur.execute(
            "select public.prune_history(%s, interval '1 second', %s) as n", (table, batch)
        )
        n = (await cur.fetchone() or {})["n"]
        await cur.execute(LOCKED, (f"{table}%",))
        locked = (await cur.fetchone() or {})["coalesce"]
        await cur.execute(READ, (f"{table}%",))
        read = (await cur.fetchone() or {})["coalesce"]
    return n, locked, read


async def fill(conn: psycopg.AsyncConnection[Any]) -> None:
    """This week and the next two with their partitions, and the rows above."""
    user = await create_user(conn, "notes@prune.test")
    for table in WHERE:
        for at in ("now()", "now() + interval '7 days'", "now() + interval '14 days'"):
            await conn.execute(f"select private.create_history_partition('{table}', {at})")
    await conn.execute(EVENTS)
    await conn.execute(NOTES, {"u": user.id})


async def test_a_prune_batch_reaches_only_kept_and_default_and_keeps_the_rest(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    await fill(conn)
    events, notes = await placed(conn, "webhook_events"), await placed(conn, "notifications")
    assert {p for k, p in events.items() if k.startswith("kept-")} == {"webhook_events_kept"}
    assert {p for k, p in events.items() if k.startswith("default-")} == {"webhook_events_default"}
    assert events["week-processed"].startswith("webhook_events_p")
    assert notes["week-read"].startswith("notifications_p")
    weeks = await conn.execute(
        "select count(*) from pg_inherits where inhparent = 'public.webhook_events'::regclass"
    )
    assert ((await weeks.fetchone()) or [0])[0] >= 5  # three weeks or more, _kept, default

    # Events: one batch takes the history of `_kept` and the default partition.
    n, locked, read = await prune_once(conn, "webhook_events", 1000)
    assert n == 3
    assert locked == ["webhook_events_default", "webhook_events_kept"]
    assert read == ["webhook_events_default", "webhook_events_kept"]
    assert set(await placed(conn, "webhook_events")) == {
        "kept-failed",
        "kept-waiting",
        "week-processed",  # history, but its week goes whole when it is folded
        "default-received",
    }

    # Notifications, one row a batch: `_kept` first, then the default partition, then done.
    batches = [await prune_once(conn, "notifications", 1) for _ in range(3)]
    assert [b[0] for b in batches] == [1, 1, 0]
    for _, locked, read in batches:
        assert set(locked) <= {"notifications_default", "notifications_kept"}
        assert set(read) <= {"notifications_default", "notifications_kept"}
    assert set(await placed(conn, "notifications")) == {
        "kept-unread",
        "week-read",
        "default-unread",
    }


async def test_events_going_wake_the_console_and_nothing_going_does_not(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    await fill(conn)
    await conn.execute("listen tradefleet_console")
    assert (await prune_once(conn, "webhook_events", 1000))[0] == 3
    assert (await prune_once(conn, "webhook_events", 1000))[0] == 0
    topics = [note.payload async for note in conn.notifies(timeout=0.5)]
    assert topics == ["webhooks"]
