"""A database migrated up to, but not including, one migration: for tests of a migration
run on a populated database."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from tests.support import db as support


def migrate(database: str) -> None:
    """Apply the pending migrations to ``database``."""
    subprocess.run(
        [str(support.SCRIPTS / "db"), "migrate", database], check=True, capture_output=True
    )


@contextmanager
def database_before(version: str) -> Iterator[str]:
    """A new database with every migration before ``version`` applied (the later ones
    wait: they may build on it); yields its URL, drops it afterwards. ``migrate`` applies
    the rest."""
    name = f"tf_test_before_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(support.admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        url = support.admin_url(name)
        with psycopg.connect(url, autocommit=True) as conn:
            for platform in sorted(Path(support.ROOT, "sql/platform").glob("*.sql")):
                conn.execute(platform.read_text())  # type: ignore[call-overload]
            later = sorted(
                p.stem.split("_", 1)
                for p in Path(support.ROOT, "supabase/migrations").glob("*.sql")
                if p.stem.split("_", 1)[0] >= version
            )
            for version_, name_ in later:
                conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, name) values (%s, %s)",
                    (version_, name_),
                )
        migrate(name)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "delete from supabase_migrations.schema_migrations where version >= %s", (version,)
            )
        yield url
    finally:
        with psycopg.connect(support.admin_url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
