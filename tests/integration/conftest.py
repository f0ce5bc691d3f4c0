"""Fixtures of the integration tests (real PostgreSQL, one cloned database per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from worker.db import open_pool


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    """A pool on this test's database, opened the way the fleet opens its own: autocommit
    connections acting as ``service_role``."""
    p = await open_pool(db_url, min_size=1, max_size=6, name="tradefleet-test")
    try:
        yield p
    finally:
        await p.close()
