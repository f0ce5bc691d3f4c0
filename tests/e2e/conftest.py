"""Fixtures of the end-to-end tests: worker processes on a test's database, and a
PostgreSQL cluster of a test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support import processes
from tests.support.processes import RUNS_TABLE, Fleet


@pytest.fixture
async def test_db(db_url: str) -> AsyncIterator[str]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
        await c.execute(RUNS_TABLE)
    yield db_url


@pytest.fixture
def fleet(test_db: str, tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(test_db, tmp_path)
    yield f
    f.stop_all()


@pytest.fixture
def private_cluster() -> Iterator[tuple[str, Callable[[], None]]]:
    """A throwaway cluster on a free port (never the shared one: others' tests run there)."""
    with processes.private_cluster() as cluster:
        yield cluster.url, cluster.restart


@pytest.fixture
def own_cluster() -> Iterator[processes.Cluster]:
    """The same, to stop and start at will."""
    with processes.private_cluster() as cluster:
        yield cluster
