"""Partitioned API usage: the migration that partitions the per-minute rollups by day, run
on a populated database, keeps every row, who sees it (directly and through the view), the
roll-up and Realtime's feed; the days within the keep get partitions, older rows wait in
the default partition for fleet.prune."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import db as support
from tests.support.db import create_user, request_as
from tests.support.migrations import database_before, migrate

MIGRATION = next(
    Path(support.ROOT, "supabase/migrations").glob("*_api_usage_minutes_partitioned.sql")
)
VERSION = MIGRATION.stem.split("_", 1)[0]
CHECKSUM = (
    "select count(*), md5(string_agg(md5(m::text), '' order by m.key_id, m.minute, m.endpoint,"
    " m.status)) from public.api_usage_minutes m"
)
KEY = """
insert into api_keys (user_id, name, environment, prefix, key_hash, scopes)
values (%s, 'k', 'live', %s, decode(md5(%s), 'hex'), '{bots:read}') returning id
"""


@pytest.fixture
def before_url() -> Iterator[str]:
    with database_before(VERSION) as url:
        yield url


async def seen(conn: psycopg.AsyncConnection[Any], who: Any, relation: str) -> int:
    async with request_as(conn, who) as cur:
        await cur.execute(f"select count(*) as n from public.{relation}")
        return int((await cur.fetchone() or {})["n"])


async def test_partitioning_populated_api_usage_minutes_keeps_rows_and_readers(
    before_url: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(before_url, autocommit=True) as conn:
        owner = await create_user(conn, "owner@usage.test")
        other = await create_user(conn, "other@usage.test")
        stranger = await create_user(conn, "stranger@usage.test")
        keys = []
        for user, prefix in [(owner, "tf_live_owner001"), (other, "tf_live_other001")]:
            row = await (await conn.execute(KEY, (user.id, prefix, prefix))).fetchone()
            assert row is not None
            keys.append((row[0], user.id))
        # 40 days of per-minute usage, every 15 minutes, two endpoints, for both keys.
        for key, user_id in keys:
            await conn.execute(
                """
                insert into api_usage_minutes (key_id, user_id, minute, endpoint, status, calls,
                                               latency_ms_sum, latency_ms_max)
                select %s, %s, date_trunc('minute', now()) - n * interval '15 minutes', e,
                       case when n %% 10 = 0 then 429 else 200 end, 1 + n %% 5, 10 * (1 + n %% 5), 30
                  from generate_series(1, 3840) n, unnest(array['/v1/bots', '/v1/trades']) e
                """,
                (key, user_id),
            )
        before = await (await conn.execute(CHECKSUM)).fetchone()
        assert before is not None and before[0] == 2 * 2 * 3840
        readers = [("owner", owner), ("other", other), ("stranger", stranger)]
        saw = {
            (who, rel): await seen(conn, u, rel)
            for who, u in readers
            for rel in ("api_usage_minutes", "api_usage_per_minute")
        }

    migrate(before_url.rsplit("/", 1)[1])

    async with await psycopg.AsyncConnection.connect(before_url, autocommit=True) as conn:
        kind = await (
            await conn.execute(
                "select relkind from pg_class where oid = 'public.api_usage_minutes'::regclass"
            )
        ).fetchone()
        assert kind == ("p",)
        assert await (await conn.execute(CHECKSUM)).fetchone() == before
        parts = await (
            await conn.execute(
                "select count(*) filter (where c.relname <> 'api_usage_minutes_default'),"
                " (select count(*) from partitions.api_usage_minutes_default)"
                " from pg_inherits i join pg_class c on c.oid = i.inhrelid"
                " where i.inhparent = 'public.api_usage_minutes'::regclass"
            )
        ).fetchone()
        # A day each from 33 days ago to three ahead; what is older waits in the default.
        assert parts is not None and 36 <= parts[0] <= 38 and 0 < parts[1] < before[0] // 4

        # Each reader sees what they saw, directly and through the view.
        for who, u in readers:
            for rel in ("api_usage_minutes", "api_usage_per_minute"):
                assert await seen(conn, u, rel) == saw[(who, rel)], (who, rel)
        assert saw[("owner", "api_usage_minutes")] == 2 * 3840
        assert saw[("stranger", "api_usage_per_minute")] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with request_as(conn, owner) as cur:
                await cur.execute("select count(*) from partitions.api_usage_minutes_default")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with request_as(conn, "anon") as cur:
                await cur.execute("select count(*) from public.api_usage_minutes")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with request_as(conn, owner) as cur:
                await cur.execute("delete from public.api_usage_minutes")
        # The re-created view keeps its grants, no more.
        grants = await (
            await conn.execute(
                "select r, array_agg(p order by p) from unnest(array['anon', 'authenticated']) r,"
                " unnest(array['select', 'insert', 'update', 'delete', 'truncate']) p"
                " where has_table_privilege(r, 'public.api_usage_per_minute', p) group by r"
            )
        ).fetchall()
        assert grants == [("authenticated", ["select"])]

        # The roll-up still folds calls into this minute's partition.
        key = keys[0][0]
        await conn.execute(
            "insert into private.api_calls (key_id, user_id, endpoint, status, latency_ms, called_at)"
            " values (%s, %s, '/v1/new', 200, 7, now())",
            (key, owner.id),
        )
        async with request_as(conn, "service_role") as cur:
            await cur.execute("select public.api_usage_rollup()")
        where = await (
            await conn.execute(
                "select tableoid::regclass::text, calls from api_usage_minutes where endpoint = '/v1/new'"
            )
        ).fetchone()
        assert where is not None and where[0].startswith("partitions.api_usage_minutes_p")
        assert where[1] == 1

        # Realtime publishes the parent (a partition's changes under its parent's name).
        pub = await (
            await conn.execute(
                "select p.pubviaroot, array_agg(t.tablename::text order by t.tablename)"
                " from pg_publication p join pg_publication_tables t using (pubname)"
                " where p.pubname = 'supabase_realtime' and t.tablename like 'api_usage%%'"
                " group by 1"
            )
        ).fetchone()
        assert pub == (True, ["api_usage_days", "api_usage_minutes"])

        # fleet.prune's calls: old days whole, the default partition's old rows in batches.
        async with request_as(conn, "service_role") as cur:
            await cur.execute(
                "select public.drop_history_partitions('api_usage_minutes', interval '30 days') as n"
            )
            assert (await cur.fetchone() or {})["n"] >= 2
            await cur.execute(
                "select public.prune_history('api_usage_minutes', interval '30 days', 10000) as n"
            )
            assert (await cur.fetchone() or {})["n"] > 0
        oldest = await (
            await conn.execute(
                "select min(minute) > now() - interval '31 days',"
                " (select count(*) from partitions.api_usage_minutes_default)"
                " from api_usage_minutes"
            )
        ).fetchone()
        assert oldest == (True, 0)
