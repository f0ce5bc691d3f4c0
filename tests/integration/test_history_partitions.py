"""Partitioned history: the migration that partitions bot_logs, run on a populated database,
keeps every row, key, foreign key, policy, grant, dependent view and function and Realtime's
feed; the fleet creates partitions ahead and retention drops whole old weeks."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import db as support
from tests.support.bots import create_bot
from tests.support.db import create_user, request_as
from tests.support.migrations import database_before, migrate

MIGRATION = next(Path(support.ROOT, "supabase/migrations").glob("*_fleet_partitioned_history.sql"))
VERSION = MIGRATION.stem.split("_", 1)[0]
CHECKSUM = "select count(*), md5(string_agg(md5(l::text), '' order by l.id)) from public.bot_logs l"


@pytest.fixture
def before_url() -> Iterator[str]:
    """A database migrated up to, but not including, the partitioning migration."""
    with database_before(VERSION) as url:
        yield url


async def visible(conn: psycopg.AsyncConnection[Any], who: Any) -> set[str]:
    async with request_as(conn, who) as cur:
        await cur.execute("select message from public.bot_logs")
        return {r["message"] for r in await cur.fetchall()}


async def test_partitioning_a_populated_bot_logs_keeps_every_row_and_rule(before_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(before_url, autocommit=True) as conn:
        owner = await create_user(conn, "owner@partition.test")
        member = await create_user(conn, "member@partition.test")
        stranger = await create_user(conn, "stranger@partition.test")
        admin = await create_user(conn, "admin@partition.test", role="admin")
        mine = await create_bot(conn, owner, name="mine")
        org = uuid.uuid4()
        await conn.execute(
            "insert into organisations (id, name, owner_id) values (%s, 'o', %s)", (org, owner.id)
        )
        await conn.execute(
            "insert into organisation_members (user_id, organisation_id, role) values (%s, %s, 'owner'), (%s, %s, 'read_only')",
            (owner.id, org, member.id, org),
        )
        team = await create_bot(conn, owner, name="team", organisation_id=str(org))
        # 60 days of logs: the last 35 get weekly partitions, the older ones the default one.
        await conn.execute(
            """
            insert into bot_logs (user_id, bot_id, log_level, message, context, created_at)
            select %(u)s, case when n %% 2 = 0 then %(mine)s::uuid else %(team)s::uuid end,
                   (array['debug', 'info', 'warning', 'error'])[1 + n %% 4],
                   case when n %% 2 = 0 then 'mine ' else 'team ' end || n, jsonb_build_object('n', n),
                   now() - n * interval '1 minute' * 43
              from generate_series(1, 2000) n
            """,
            {"u": owner.id, "mine": mine, "team": team},
        )
        # What depends on the table: a view with options and grants, a begin-atomic function.
        await conn.execute(
            "create view public.bot_log_levels with (security_invoker = true) as "
            "select l.bot_id, l.log_level, count(*) as n from public.bot_logs l group by 1, 2"
        )
        await conn.execute("revoke all on public.bot_log_levels from anon, authenticated")
        await conn.execute("grant select on public.bot_log_levels to authenticated")
        await conn.execute(
            "create function public.bot_log_count(p_bot uuid) returns bigint language sql stable "
            "begin atomic select count(*) from public.bot_logs l where l.bot_id = p_bot; end"
        )
        await conn.execute("revoke all on function public.bot_log_count(uuid) from public, anon")
        # A trigger: moving a row is not an event, a new row is.
        await conn.execute("create table private.log_inserts (n integer not null)")
        await conn.execute("insert into private.log_inserts values (0)")
        await conn.execute(
            "create function private.count_log_insert() returns trigger language plpgsql security definer"
            " set search_path = '' as $$ begin update private.log_inserts set n = n + 1; return null; end $$"
        )
        await conn.execute(
            "create trigger bot_logs_counted after insert on public.bot_logs"
            " for each row execute function private.count_log_insert()"
        )
        before = await (await conn.execute(CHECKSUM)).fetchone()
        last_id = (await (await conn.execute("select max(id) from bot_logs")).fetchone() or [0])[0]
        seen_before = {
            who: await visible(conn, u)
            for who, u in [
                ("owner", owner),
                ("member", member),
                ("stranger", stranger),
                ("admin", admin),
            ]
        }

    migrate(before_url.rsplit("/", 1)[1])

    async with await psycopg.AsyncConnection.connect(before_url, autocommit=True) as conn:
        kind = await (
            await conn.execute(
                "select relkind from pg_class where oid = 'public.bot_logs'::regclass"
            )
        ).fetchone()
        assert kind == ("p",)
        assert await (await conn.execute(CHECKSUM)).fetchone() == before
        parts = await (
            await conn.execute(
                "select count(*) filter (where c.relname <> 'bot_logs_default'),"
                " (select count(*) from partitions.bot_logs_default)"
                " from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'public.bot_logs'::regclass"
            )
        ).fetchone()
        assert parts is not None and parts[0] >= 6 and 0 < parts[1] < 2000

        # Each role sees what it saw; partitions are out of reach but through the parent.
        for who, u in [
            ("owner", owner),
            ("member", member),
            ("stranger", stranger),
            ("admin", admin),
        ]:
            assert await visible(conn, u) == seen_before[who], who
        assert seen_before["stranger"] == set() and len(seen_before["member"]) == 1000
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with request_as(conn, owner) as cur:
                await cur.execute("select count(*) from partitions.bot_logs_default")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with request_as(conn, "anon") as cur:
                await cur.execute("select count(*) from public.bot_logs")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with request_as(conn, owner) as cur:
                await cur.execute(
                    "insert into bot_logs (user_id, log_level, message) values (%s, 'info', 'x')",
                    (owner.id,),
                )

        # Dependents came back with their options and grants.
        async with request_as(conn, owner) as cur:
            await cur.execute("select sum(n)::int as n from public.bot_log_levels")
            assert (await cur.fetchone() or {})["n"] == 2000
            await cur.execute("select public.bot_log_count(%s) as n", (mine,))
            assert (await cur.fetchone() or {})["n"] == 1000
        async with request_as(conn, stranger) as cur:
            await cur.execute("select count(*) as n from public.bot_log_levels")
            assert (await cur.fetchone() or {})["n"] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with request_as(conn, "anon") as cur:
                await cur.execute("select public.bot_log_count(%s)", (mine,))

        # Identities go on after the moved rows; foreign keys hold and cascade.
        async with request_as(conn, "service_role") as cur:
            await cur.execute(
                "insert into bot_logs (user_id, bot_id, log_level, message) values (%s, %s, 'info', 'after') returning id",
                (owner.id, mine),
            )
            assert (await cur.fetchone() or {})["id"] > last_id
        counted = await (await conn.execute("select n from private.log_inserts")).fetchone()
        assert counted == (1,)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            await conn.execute(
                "insert into bot_logs (user_id, log_level, message) values (%s, 'info', 'x')",
                (uuid.uuid4(),),
            )
        await conn.execute("delete from bots where id = %s", (team,))
        left = await (
            await conn.execute("select count(*) from bot_logs where bot_id = %s", (team,))
        ).fetchone()
        assert left == (0,)

        # Realtime's publication carries the parent, and a change in a partition is
        # published under the parent's name.
        pub = await (
            await conn.execute(
                "select p.pubviaroot, array_agg(t.tablename::text) from pg_publication p"
                " join pg_publication_tables t using (pubname) where p.pubname = 'supabase_realtime'"
                " and t.tablename like 'bot_logs%%' group by 1"
            )
        ).fetchone()
        assert pub == (True, ["bot_logs"])
        slot = f"tf_partition_{uuid.uuid4().hex[:8]}"
        await conn.execute("select pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        try:
            await conn.execute(
                "insert into bot_logs (user_id, log_level, message) values (%s, 'info', 'live')",
                (owner.id,),
            )
            rows = await (
                await conn.execute(
                    "select data from pg_logical_slot_peek_binary_changes(%s, null, null,"
                    " 'proto_version', '1', 'publication_names', 'supabase_realtime')",
                    (slot,),
                )
            ).fetchall()
            root = await (
                await conn.execute("select 'public.bot_logs'::regclass::oid::int")
            ).fetchone()
            assert root is not None
            inserts = [bytes(r[0]) for r in rows if bytes(r[0])[:1] == b"I"]
            # pgoutput's insert message: 'I', the relation's oid, 'N', the new tuple.
            assert len(inserts) == 1 and inserts[0][1:6] == struct.pack(">I", root[0]) + b"N"
            assert b"live" in inserts[0]
        finally:
            await conn.execute("select pg_drop_replication_slot(%s)", (slot,))


async def test_partitions_are_created_ahead_and_old_weeks_dropped_whole(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    user = await create_user(conn, "days@partition.test")
    async with request_as(conn, "service_role") as cur:
        await cur.execute("select public.create_history_partitions() as n")
        await cur.execute("select public.create_history_partitions() as n")
        assert (await cur.fetchone() or {})["n"] == 0  # every week up to a week ahead is there
    # A fleet that stopped for a while: rows of a future week wait in the default partition
    # and move into their week's partition when it is created.
    await conn.execute(
        "insert into bot_logs (user_id, log_level, message, created_at) values (%s, 'info', 'later', now() + interval '20 days')",
        (user.id,),
    )
    await conn.execute(
        "update private.history_partitions set ahead = interval '21 days' where table_name = 'bot_logs'"
    )
    async with request_as(conn, "service_role") as cur:
        await cur.execute("select public.create_history_partitions() as n")
        assert (await cur.fetchone() or {})["n"] >= 2
    where = await (
        await conn.execute("select tableoid::regclass::text from bot_logs where message = 'later'")
    ).fetchone()
    assert where is not None and where[0].startswith("partitions.bot_logs_p")

    # Old days: two partitions of the past, one beyond the keep and one within it.
    await conn.execute(
        "select private.create_history_partition('bot_logs', now() - interval '40 days'),"
        " private.create_history_partition('bot_logs', now() - interval '10 days')"
    )
    await conn.execute(
        "insert into bot_logs (user_id, log_level, message, created_at) values"
        " (%(u)s, 'info', 'old', now() - interval '40 days'), (%(u)s, 'info', 'kept', now() - interval '10 days'),"
        " (%(u)s, 'info', 'today', now())",
        {"u": user.id},
    )
    async with request_as(conn, "service_role") as cur:
        await cur.execute(
            "select public.drop_history_partitions('bot_logs', interval '30 days') as n"
        )
        assert (await cur.fetchone() or {})["n"] == 1
        await cur.execute(
            "select public.drop_history_partitions('bot_logs', interval '30 days') as n"
        )
        assert (await cur.fetchone() or {})["n"] == 0
    left = await (
        await conn.execute("select array_agg(message order by created_at) from bot_logs")
    ).fetchone()
    assert left == (["kept", "today", "later"],)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, user) as cur:
            await cur.execute("select public.drop_history_partitions('bot_logs', interval '1 day')")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        async with request_as(conn, "service_role") as cur:
            await cur.execute("select public.drop_history_partitions('orders', interval '1 day')")
