"""Database access for the worker: psycopg 3 async pools acting as ``service_role``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool


def configure_role(
    role: str | None, async_commit: bool = False
) -> Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]:
    """Return a pool ``configure`` callback: autocommit, then act as ``role``.

    On Supabase the worker connects as ``postgres`` (a member of ``service_role``); acting
    as ``service_role`` gives it exactly the service's grants, never superuser powers.
    """

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        # Autocommit first: a `set role` outside autocommit would leave the connection in a
        # transaction the pool refuses to hand out.
        await conn.set_autocommit(True)
        if role:
            await conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        if async_commit:
            await conn.execute("set synchronous_commit = off")

    return configure


async def open_pool(
    url: str,
    *,
    role: str | None = "service_role",
    min_size: int = 1,
    max_size: int = 10,
    name: str = "tradefleet",
    timeout_s: float = 30.0,
    async_commit: bool = False,
) -> AsyncConnectionPool:
    """Open a pool of autocommit connections acting as ``role``.

    Connections are checked before use, so a PostgreSQL restart costs one failed check, not
    a failed job. ``async_commit`` (``synchronous_commit = off``) is only for writes whose
    loss in a PostgreSQL crash is harmless, such as the fleet's claims and job outcomes (a
    lost one means the job runs again).
    """
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        configure=configure_role(role, async_commit),
        name=name,
        check=AsyncConnectionPool.check_connection,
        reconnect_timeout=3600.0,
        kwargs={"application_name": name},
    )
    await pool.open(wait=True, timeout=timeout_s)
    return pool
