"""Reading and acting as the signed-in admin, the way PostgREST runs an app's request.

Each request is one transaction that switches to the role of the admin's token
(``tradefleet_admin``) and sets ``request.jwt.claims``, so row-level security and the
admin checks of the SQL functions decide, never the console.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from worker.console.auth import ADMIN_DB_ROLE, Session
from worker.db import open_pool

Cursor = psycopg.AsyncCursor[dict[str, Any]]

# Money in JSON (the overview's MRR, revenue, credits) stays exact.
_json_loads = partial(json.loads, parse_float=Decimal)


class Refused(Exception):
    """The database refused an admin request; ``status`` is the HTTP answer it deserves."""

    def __init__(self, message: str, status: int, *, session: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.session = session  # the session itself is refused, not just this request


# SQLSTATE -> HTTP status of a refused request (anything else is the server's fault).
_STATUSES = {
    "42501": 403,  # insufficient_privilege: not (or no longer) an admin
    "P0002": 404,  # no_data_found
    "23514": 400,  # check_violation: the action does not apply, or no reason
    "23502": 400,  # not_null_violation
    "22023": 400,  # invalid_parameter_value
    "22P02": 400,  # invalid_text_representation
}


class Database:
    """The console's pool; connections start as the URL's user and switch per request."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str, *, max_size: int = 10) -> Database:
        pool = await open_pool(
            url, role=None, min_size=1, max_size=max_size, name="tradefleet-console"
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def as_admin(self, session: Session) -> AsyncIterator[Cursor]:
        """A cursor in a transaction acting as ``session``'s admin (rolled back on error)."""
        if session.db_role != ADMIN_DB_ROLE:  # the verifier guarantees it; never widen it
            raise Refused("this account is not an admin", 403, session=True)
        async with self.pool.connection() as conn:
            set_json_loads(_json_loads, conn)
            try:
                async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(
                        "select set_config('role', %s, true), "
                        "set_config('request.jwt.claims', %s, true), "
                        "set_config('request.method', 'POST', true)",
                        (session.db_role, json.dumps(session.claims)),
                    )
                    # The token alone is not enough: its user must be an active admin now.
                    await cur.execute("select private.is_admin() as admin")
                    row = await cur.fetchone()
                    if not (row and row["admin"]):
                        raise Refused("this account is no longer an admin", 403, session=True)
                    yield cur
            except psycopg.Error as e:
                status = _STATUSES.get(e.sqlstate or "")
                if status is None:
                    raise
                detail = e.diag.message_primary or str(e)
                raise Refused(detail, status) from None
