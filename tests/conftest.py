"""Fixtures shared by every suite: the local platform, a migrated template, per-test clones."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from tests.support import db as support


@pytest.fixture(scope="session")
def template_db() -> str:
    support.ensure_platform()
    return support.ensure_template()


@pytest.fixture
def db_url(template_db: str) -> Iterator[str]:
    """URL of a fresh, migrated database of this test's own (superuser)."""
    with support.cloned_database(template_db) as url:
        yield url


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit superuser connection to this test's database."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
        yield c


@pytest.fixture
async def users(conn: psycopg.AsyncConnection[Any]) -> dict[str, support.User]:
    """The cast of the RLS tests: two users, a provider and an admin, freshly signed up."""
    return {
        "alice": await support.create_user(conn, "alice@test.local"),
        "bob": await support.create_user(conn, "bob@test.local"),
        "provider": await support.create_user(conn, "provider@test.local", role="provider"),
        "admin": await support.create_user(conn, "admin@test.local", role="admin"),
    }
