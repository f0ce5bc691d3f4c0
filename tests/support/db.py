"""Test support for the real local platform: template database, clones, PostgREST-style roles.

The template database is built once from ``sql/platform`` and ``supabase/migrations`` and
named after a hash of those files, so repeated runs (and parallel sessions) reuse it; each
test gets its own clone (``create database … template …``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


@functools.cache
def _cluster_url() -> str:
    """The superuser's URL of this checkout's cluster (started if needed), asked once."""
    out = subprocess.run(
        [str(SCRIPTS / "db"), "url", "postgres"], check=True, capture_output=True, text=True
    ).stdout
    return out.strip().splitlines()[-1]


def admin_url(database: str = "postgres") -> str:
    """Connection URL for the cluster's superuser on ``database``."""
    return _cluster_url().rsplit("/", 1)[0] + "/" + database


def schema_hash() -> str:
    h = hashlib.sha256()
    for path in sorted([*ROOT.glob("sql/platform/*.sql"), *ROOT.glob("supabase/migrations/*.sql")]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def ensure_platform() -> None:
    subprocess.run([str(SCRIPTS / "db"), "up"], check=True, capture_output=True, text=True)


def ensure_template() -> str:
    """Create (once per schema version) the migrated template database; return its name."""
    name = f"tf_template_{schema_hash()}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(hashtext('tradefleet-template'))")
        try:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (name,)
            ).fetchone()
            if not exists:
                building = f"{name}_building"
                conn.execute(
                    sql.SQL("drop database if exists {} with (force)").format(
                        sql.Identifier(building)
                    )
                )
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(building)))
                subprocess.run(
                    [str(SCRIPTS / "db"), "migrate", building],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                conn.execute(
                    sql.SQL("alter database {} rename to {}").format(
                        sql.Identifier(building), sql.Identifier(name)
                    )
                )
                conn.execute(
                    sql.SQL("alter database {} is_template true").format(sql.Identifier(name))
                )
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('tradefleet-template'))")
    return name


def clone_database(name: str, template: str) -> str:
    """``name`` as a fresh copy of ``template`` (any older ``name`` dropped); its URL."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        for attempt in range(50):
            try:
                conn.execute(
                    sql.SQL("create database {} template {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
                return admin_url(name)
            except psycopg.errors.ObjectInUse:
                # Another session is cloning the same template at this instant.
                time.sleep(0.05 * (attempt + 1))
    raise RuntimeError(f"could not clone {template}")


def drop_database(name: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def cloned_database(template: str) -> Iterator[str]:
    """A fresh database cloned from the template; dropped afterwards. Yields its URL."""
    name = f"tf_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = clone_database(name, template)
    try:
        yield url
    finally:
        drop_database(name)


# --- PostgREST-style requests ------------------------------------------------------------


@dataclass(frozen=True)
class User:
    """A signed-up user and the JWT claims Supabase Auth would issue for them."""

    id: uuid.UUID
    email: str
    role: str = "user"
    aal: str = "aal1"
    extra: dict[str, Any] = field(default_factory=dict)

    def claims(self, *, aal: str | None = None) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": "http://127.0.0.1:54321/auth/v1",
            "sub": str(self.id),
            "aud": "authenticated",
            "exp": now + 3600,
            "iat": now,
            "email": self.email,
            "phone": "",
            "app_metadata": {"provider": "email", "providers": ["email"], "role": self.role},
            "user_metadata": {},
            # What the custom access token hook (see the migrations) puts there.
            "role": self.db_role,
            "aal": aal or self.aal,
            "amr": [{"method": "password", "timestamp": now}],
            "session_id": str(uuid.uuid4()),
            "is_anonymous": False,
        }

    @property
    def db_role(self) -> str:
        """The database role PostgREST switches to for this user's JWT."""
        return "tradefleet_admin" if self.role == "admin" else "authenticated"

    def with_aal2(self) -> User:
        return User(self.id, self.email, self.role, "aal2", self.extra)


ANON_CLAIMS: dict[str, Any] = {"role": "anon", "iss": "supabase"}
SERVICE_CLAIMS: dict[str, Any] = {"role": "service_role", "iss": "supabase"}


async def create_user(
    conn: psycopg.AsyncConnection[Any], email: str, role: str = "user", full_name: str | None = None
) -> User:
    """Sign a user up the way Supabase Auth does: a row in auth.users."""
    user_id = uuid.uuid4()
    await conn.execute(
        """
        insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data,
                                raw_user_meta_data, created_at, updated_at)
        values (%s, 'authenticated', 'authenticated', %s, now(), %s, %s, now(), now())
        """,
        (
            user_id,
            email,
            json.dumps({"provider": "email", "providers": ["email"], "role": role}),
            json.dumps({"full_name": full_name or email.split("@")[0].title()}),
        ),
    )
    return User(user_id, email, role)


@contextlib.asynccontextmanager
async def request_as(
    conn: psycopg.AsyncConnection[Any],
    who: User | str,
    *,
    aal: str | None = None,
    path: str | None = None,
) -> AsyncIterator[psycopg.AsyncCursor[dict[str, Any]]]:
    """Run statements exactly as PostgREST would for ``who`` ("anon", "service_role" or a User).

    Opens a transaction, switches role and sets ``request.jwt.claims`` locally; an error
    rolls the whole request back, as PostgREST does. With ``path`` (a POST to it, such as
    ``/backtest_runs``) it also sets ``request.path`` and runs the pre-request hook
    (``public.db_pre_request``, configured as ``pgrst.db_pre_request``) first, as PostgREST does.
    """
    if isinstance(who, User):
        role, claims = who.db_role, who.claims(aal=aal)
    elif who == "anon":
        role, claims = "anon", ANON_CLAIMS
    elif who == "service_role":
        role, claims = "service_role", SERVICE_CLAIMS
    else:
        raise ValueError(f"unknown requester {who!r}")
    async with conn.transaction():
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true), "
                "set_config('request.method', 'POST', true)",
                (role, json.dumps(claims)),
            )
            if path is not None:
                await cur.execute(
                    "select set_config('request.path', %s, true), public.db_pre_request()", (path,)
                )
            yield cur


def main(argv: list[str]) -> int:
    """``python -m tests.support.db clone NAME`` prints a URL; ``drop NAME`` removes it."""
    if len(argv) == 2 and argv[0] == "clone":
        ensure_platform()
        print(clone_database(argv[1], ensure_template()))
        return 0
    if len(argv) == 2 and argv[0] == "drop":
        drop_database(argv[1])
        return 0
    print("usage: python -m tests.support.db clone|drop NAME")
    return 2


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
