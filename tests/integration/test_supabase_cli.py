"""The Supabase CLI (pinned in package.json) deploys ``supabase/`` as it is.

``supabase db push`` applies every migration to a database that has only what Supabase
provisions (``sql/platform``), ``migration list`` agrees, the result is the same schema
the local runner builds, and ``supabase inspect db`` works (it reads pg_stat_statements,
which Supabase preloads).
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.support import db as support
from tests.support.programs import pg_program

CLI = support.ROOT / "node_modules" / ".bin" / "supabase"
PG_DUMP = pg_program("pg_dump")
MIGRATIONS = sorted((support.ROOT / "supabase" / "migrations").glob("*.sql"))


def supabase(*args: str) -> subprocess.CompletedProcess[str]:
    if not CLI.exists():
        pytest.fail("the Supabase CLI is missing: run `npm install` (scripts/test does)")
    return subprocess.run(
        [str(CLI), *args, "--workdir", str(support.ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def cli_url(url: str) -> str:
    """``url`` as the CLI must be given it here: the local platform serves no TLS, and the CLI
    only skips TLS on its own for Supabase's local port (54322)."""
    return f"{url}{'&' if '?' in url else '?'}sslmode=disable"


def schema_dump(url: str) -> str:
    # Without the partitions themselves: which ones the migrations make depends on the day
    # they run (partitions are made ahead of now), and two databases migrated either side
    # of midnight UTC differ by a day's partition. Their parents, keys and rules are dumped.
    out = subprocess.run(
        [PG_DUMP, "--schema-only", "--no-owner", "--exclude-schema=partitions", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # pg_dump guards each dump with a random \restrict key.
    return re.sub(r"^\\(un)?restrict \S+$", "", out, flags=re.M)


@pytest.fixture
def platform_only_db(template_db: str) -> Iterator[str]:
    """A database with Supabase's platform layer and no migration, as a new project has."""
    name = f"tf_test_cli_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(support.admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = support.admin_url(name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for path in sorted((support.ROOT / "sql" / "platform").glob("*.sql")):
                conn.execute(path.read_text())
        yield url
    finally:
        with psycopg.connect(support.admin_url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def test_db_push_applies_every_migration_as_the_local_runner_does(
    platform_only_db: str, db_url: str
) -> None:
    pushed = supabase("db", "push", "--db-url", cli_url(platform_only_db), "--yes")
    assert pushed.returncode == 0, pushed.stderr
    with psycopg.connect(platform_only_db) as conn:
        versions = [
            r[0]
            for r in conn.execute(
                "select version from supabase_migrations.schema_migrations order by version"
            )
        ]
    assert versions == [p.name.split("_", 1)[0] for p in MIGRATIONS]

    listed = supabase("migration", "list", "--db-url", cli_url(platform_only_db))
    assert listed.returncode == 0, listed.stderr
    rows = [
        [cell.strip().strip("`") for cell in line.split("|")[:2]]
        for line in listed.stdout.splitlines()
        if re.match(r"^\s*`?\d{14}", line)
    ]
    assert rows == [[v, v] for v in versions], listed.stdout

    # db_url is the template the local runner (scripts/db migrate) built.
    assert schema_dump(platform_only_db) == schema_dump(db_url)

    again = supabase("db", "push", "--db-url", cli_url(platform_only_db), "--yes")
    assert again.returncode == 0, again.stderr
    assert "database is up to date" in again.stdout


@pytest.mark.parametrize("report", ["db-stats", "outliers", "calls"])
def test_inspect_db_reports_work_on_the_local_platform(db_url: str, report: str) -> None:
    result = supabase("inspect", "db", report, "--db-url", cli_url(db_url))
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr


# --- supabase db lint (plpgsql_check) ---------------------------------------------------------

EXPLAINED = re.compile(r"^- `(?P<function>[\w.]+)`: (?P<message>[^—]+?) — ", re.M)


def lint(url: str, *args: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, str]]]:
    """Run ``supabase db lint`` on ``url``; the result and its issues, one dict per issue."""
    with psycopg.connect(url) as conn:
        available = conn.execute(
            "select 1 from pg_available_extensions where name = 'plpgsql_check'"
        ).fetchone()
    if not available:
        pytest.skip(
            "plpgsql_check is not installed (apt-get install postgresql-15-plpgsql-check; "
            "scripts/test installs it): supabase db lint needs it"
        )
    result = supabase("db", "lint", "--db-url", cli_url(url), *args)
    functions = json.loads(result.stdout) if result.stdout.strip() else []
    issues = [
        {"function": f["function"], **{k: str(v) for k, v in issue.items()}}
        for f in functions
        for issue in f["issues"]
    ]
    return result, issues


def explained_warnings() -> set[tuple[str, str]]:
    """The warnings the README's Linting section explains: ``(function, message)``."""
    readme = (support.ROOT / "README.md").read_text()
    section = readme.split("\n## Linting\n", 1)[1].split("\n## ", 1)[0]
    return {(m["function"], m["message"].strip()) for m in EXPLAINED.finditer(section)}


def test_db_lint_finds_no_error(db_url: str) -> None:
    result, issues = lint(db_url, "--level", "error", "--fail-on", "error")
    errors = [i for i in issues if i["level"] == "error"]
    assert errors == [], json.dumps(errors, indent=2)
    assert result.returncode == 0, result.stderr


def test_db_lint_warnings_are_exactly_the_explained_ones(db_url: str) -> None:
    result, issues = lint(db_url, "--level", "warning")
    assert result.returncode == 0, result.stderr
    found = {(i["function"], i["message"]) for i in issues}
    assert found == explained_warnings(), (
        "fix each new warning, or explain it in the README's Linting section: "
        + json.dumps(issues, indent=2)
    )
