"""Database access for the worker: psycopg 3 async pools acting as ``service_role``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker.errors import Fatal


def jsonb(obj: Any) -> Jsonb:
    """``obj`` as a ``jsonb`` parameter, serialised by orjson: a close's batches (thousands
    of rows of strings, numbers, booleans and nulls; money as strings) in about a tenth of
    the CPU ``json.dumps`` takes. Unlike ``json.dumps`` it refuses keys that are not
    strings."""
    return Jsonb(obj, dumps=orjson.dumps)


def configure_role(
    role: str | None, async_commit: bool = False, idle_in_transaction_s: float | None = None
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
        if idle_in_transaction_s is not None:
            await conn.execute(
                sql.SQL("set idle_in_transaction_session_timeout = {}").format(
                    sql.Literal(max(1, round(idle_in_transaction_s * 1000)))
                )
            )

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
    idle_in_transaction_s: float | None = None,
) -> AsyncConnectionPool:
    """Open a pool of autocommit connections acting as ``role``.

    Connections are checked before use, so a PostgreSQL restart costs one failed check, not
    a failed job. ``async_commit`` (``synchronous_commit = off``) is only for writes whose
    loss in a PostgreSQL crash is harmless, such as the fleet's claims and job outcomes (a
    lost one means the job runs again).

    ``idle_in_transaction_s`` ends, on the server, a connection's transaction left idle that
    long: a process stopped (SIGSTOP, a frozen host) in the middle of a transaction loses it
    and its locks, instead of holding rows others wait on (an account every charge credits)
    for as long as it stays stopped.
    """
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        configure=configure_role(role, async_commit, idle_in_transaction_s),
        name=name,
        check=AsyncConnectionPool.check_connection,
        reconnect_timeout=3600.0,
        kwargs={"application_name": name},
    )
    await pool.open(wait=True, timeout=timeout_s)
    return pool


class DatabaseUnreachable(Fatal):
    """The database did not accept a connection within the allowed number of tries."""


async def wait_for_database(
    url: str, *, tries: int = 3, delay_s: float = 1.0, connect_timeout_s: int = 5
) -> None:
    """Connect once to check the database is there, trying ``tries`` times ``delay_s`` apart.

    Commands call this before their work so an unreachable database is one clear error,
    not a pool timeout or a traceback after the work has started.
    """
    where = _where(url)
    for attempt in range(1, tries + 1):
        try:
            conn = await psycopg.AsyncConnection.connect(url, connect_timeout=connect_timeout_s)
        except psycopg.Error as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if attempt == tries:
                raise DatabaseUnreachable(
                    f"cannot reach the database at {where} after {tries} tries: {reason}"
                ) from e
            await asyncio.sleep(delay_s)
        else:
            await conn.close()
            return


def _where(url: str) -> str:
    """``host:port/dbname`` of a connection string, never its password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "the given DATABASE_URL (it does not parse)"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


# SQLSTATE classes of errors that follow from the data a statement was given (a value a
# column cannot hold, a constraint, a trigger or function raising), so the same rows fail
# the same way every time: 09 triggered action, 21 cardinality, 22 data, 23 integrity,
# 27 triggered data change, 2F SQL routine, 42 syntax or access rule, 44 check option,
# 54 program limit, P0 PL/pgSQL raise. Everything else (40 rollback, 08 connection,
# 53 resources, 55 object state, 57 operator intervention, XX internal, errors without a
# SQLSTATE) may pass on its own.
DATA_ERROR_CLASSES = frozenset({"09", "21", "22", "23", "27", "2F", "42", "44", "54", "P0"})


def database_error(error: BaseException) -> psycopg.Error | None:
    """The psycopg error behind ``error`` (itself or a ``raise … from`` cause), if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, psycopg.Error):
            return seen
        seen = seen.__cause__
    return None


def refused_by_data(error: BaseException) -> bool:
    """Whether ``error`` is the database refusing the data it was given (by SQLSTATE
    class), which trying the same rows again cannot change; False for anything that may
    be transient (a restart, a deadlock, a serialization failure, a lost connection)."""
    db_error = database_error(error)
    if db_error is None or not db_error.sqlstate:
        return False
    return db_error.sqlstate[:2].upper() in DATA_ERROR_CLASSES
