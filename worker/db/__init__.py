"""Database access for the worker: a psycopg 3 async pool acting as ``service_role``."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool


def configure_role(role: str | None) -> Any:
    """Return a pool ``configure`` callback that switches each new connection to ``role``.

    On Supabase the worker connects as ``postgres`` (a member of ``service_role``); acting
    as ``service_role`` gives it exactly the service's grants, never superuser powers.
    """

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.set_autocommit(True)
        if role:
            await conn.execute(psycopg.sql.SQL("set role {}").format(psycopg.sql.Identifier(role)))

    return configure


async def open_pool(
    url: str, *, role: str | None = "service_role", min_size: int = 1, max_size: int = 10, name: str = "tradefleet"
) -> AsyncConnectionPool:
    """Open a pool whose connections act as ``role`` and autocommit unless told otherwise."""
    pool = AsyncConnectionPool(
        url, min_size=min_size, max_size=max_size, open=False, configure=configure_role(role), name=name,
        kwargs={"application_name": name},
    )
    await pool.open(wait=True, timeout=30)
    return pool
