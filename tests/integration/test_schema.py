"""Rules every migration must keep: RLS, indexed foreign keys, invoker views, pinned
search paths, wrapped auth calls, no drift between migrations and the database, and the
committed schema snapshot the migrations build.

``python -m tests.integration.test_schema`` rewrites the snapshot from the migrations."""

from __future__ import annotations

import difflib
import re
import subprocess
from typing import Any

import psycopg
import pytest

from tests.support import db as support
from tests.support.programs import pg_program

EXPOSED = ("public",)
SNAPSHOT = support.ROOT / "tests" / "integration" / "schema_snapshot.sql"
PG_DUMP = pg_program("pg_dump")


async def rows(conn: psycopg.AsyncConnection[Any], query: str) -> list[tuple[Any, ...]]:
    cur = await conn.execute(query)
    return await cur.fetchall()


async def test_every_public_table_has_rls(conn: psycopg.AsyncConnection[Any]) -> None:
    missing = await rows(
        conn,
        """
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity""",
    )
    assert missing == []


async def test_every_foreign_key_has_an_index(conn: psycopg.AsyncConnection[Any]) -> None:
    unindexed = await rows(
        conn,
        """
        select con.conrelid::regclass::text, con.conname
          from pg_constraint con
          join pg_namespace n on n.oid = con.connamespace
         where con.contype = 'f' and n.nspname in ('public', 'private')
           and not exists (
             select 1 from pg_index i
              where i.indrelid = con.conrelid
                and (i.indkey::int2[])[0:cardinality(con.conkey) - 1] = con.conkey)""",
    )
    assert unindexed == []


async def test_every_view_is_security_invoker(conn: psycopg.AsyncConnection[Any]) -> None:
    definer_views = await rows(
        conn,
        """
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('v', 'm')
           and not coalesce('security_invoker=true' = any(c.reloptions), false)""",
    )
    assert definer_views == []


async def test_every_security_definer_function_pins_its_search_path(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    unpinned = await rows(
        conn,
        """
        select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema', 'extensions', 'auth')
           and not exists (select 1 from unnest(p.proconfig) c where c = 'search_path=""' or c = 'search_path=')""",
    )
    assert unpinned == []


async def test_no_public_function_is_executable_by_anon_unless_meant(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    definer = await rows(
        conn,
        """
        select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where p.prosecdef and n.nspname = 'public' and has_function_privilege('anon', p.oid, 'execute')""",
    )
    assert definer == []


async def test_policies_wrap_auth_calls_in_a_select(conn: psycopg.AsyncConnection[Any]) -> None:
    bare = []
    for table, policy, qual, check in await rows(
        conn,
        """
            select tablename, policyname, coalesce(qual, ''), coalesce(with_check, '') from pg_policies
             where schemaname = 'public'""",
    ):
        for text in (qual, check):
            for fn in ("auth.uid()", "auth.jwt()", "auth.role()"):
                total = text.count(fn)
                wrapped = len(re.findall(r"SELECT " + re.escape(fn), text))
                if total != wrapped:
                    bare.append((table, policy, fn))
    assert bare == []


async def test_policies_are_named_as_sentences(conn: psycopg.AsyncConnection[Any]) -> None:
    unnamed = [
        r
        for r in await rows(
            conn, "select tablename, policyname from pg_policies where schemaname = 'public'"
        )
        if " " not in r[1]
    ]
    assert unnamed == []


def _schema_dump(url: str) -> str:
    out = subprocess.run(
        [
            "pg_dump",
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--schema=public",
            "--schema=private",
            "--schema=auth",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [
        ln
        for ln in out.splitlines()
        if ln.strip() and not ln.startswith("--") and not ln.startswith("\\")
    ]
    return "\n".join(lines)


@pytest.mark.usefixtures("template_db")
def test_migrations_in_order_give_the_running_schema(db_url: str) -> None:
    """The running database (scripts/db) has exactly the schema the migrations produce."""
    running = support.admin_url("postgres")
    with psycopg.connect(running) as conn:
        applied = {
            r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")
        }
    files = {
        p.name.split("_", 1)[0] for p in (support.ROOT / "supabase" / "migrations").glob("*.sql")
    }
    assert applied == files, (
        "the running database has not applied exactly the migrations in supabase/migrations"
    )
    fresh, live = _schema_dump(db_url), _schema_dump(running)
    assert fresh == live, "schema drift: run `scripts/db reset` or add a migration for the change"


def schema_snapshot(url: str) -> str:
    """The whole schema of a database as ``pg_dump --schema-only`` prints it (owners,
    grants, policies, comments, publication, default privileges), without comment lines,
    blank lines and psql meta-commands, which vary between runs, and without the daily
    partitions of the partitioned history (schema ``partitions``), named after the day the
    migrations ran."""
    out = subprocess.run(
        [PG_DUMP, "--schema-only", "--exclude-schema=partitions", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kept = [
        ln
        for ln in out.splitlines()
        if ln.strip() and not ln.startswith("--") and not ln.startswith("\\")
    ]
    return "\n".join(kept) + "\n"


def test_migrations_build_the_schema_snapshot(db_url: str) -> None:
    """The migrations build exactly the committed schema: a migration that changes the
    schema by accident fails here; one that changes it on purpose updates the snapshot."""
    built = schema_snapshot(db_url)
    expected = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    if built != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                built.splitlines(keepends=True),
                str(SNAPSHOT.relative_to(support.ROOT)),
                "built from supabase/migrations",
            )
        )
        pytest.fail(
            f"the migrations build a schema other than {SNAPSHOT.relative_to(support.ROOT)}:\n"
            f"{diff}\n"
            "If a new migration changes the schema on purpose, regenerate the snapshot with\n"
            "  .venv/bin/python -m tests.integration.test_schema\n"
            "and commit it with the migration.",
            pytrace=False,
        )


def write_snapshot() -> None:
    """Build the migrations into a fresh database and store its schema as the snapshot."""
    support.ensure_platform()
    with support.cloned_database(support.ensure_template()) as url:
        SNAPSHOT.write_text(schema_snapshot(url))
    print(f"wrote {SNAPSHOT.relative_to(support.ROOT)}")


if __name__ == "__main__":
    write_snapshot()
