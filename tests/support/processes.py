"""Real ``tradefleet worker`` processes for the end-to-end tests: a fleet of them with
their logs, and a PostgreSQL cluster of a test's own to restart under them."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tests.support.db import ROOT
from tests.support.programs import pg_program

TTL = 2.0
TRADEFLEET = str(ROOT / ".venv" / "bin" / "tradefleet")

RUNS_TABLE = """
create table public.fleet_test_runs (
  id bigint generated always as identity primary key,
  job_id bigint not null,
  worker_id uuid not null,
  attempt integer not null,
  tag text,
  started_at timestamptz not null default clock_timestamp(),
  finished_at timestamptz
);
grant all on public.fleet_test_runs to service_role;
"""


class Fleet:
    """Worker processes of one test, with their logs under ``tmp``."""

    def __init__(self, url: str, tmp: Path, **env: str) -> None:
        self.url = url
        self.tmp = tmp
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        full = {
            **os.environ,
            "DATABASE_URL": self.url,
            "WORKER_NAME": name,
            "LEASE_TTL_S": str(TTL),
            "HEARTBEAT_INTERVAL_S": "0.3",
            "SWEEP_INTERVAL_S": "0.3",
            "POLL_INTERVAL_S": "1",
            "JOB_LOCK_S": "4",
            "JOB_BACKOFF_BASE_S": "0.05",
            "DRAIN_TIMEOUT_S": "5",
            "WORKER_EXTRA_CAPABILITIES": "tests.support.fleet_kinds",
            "PYTHONPATH": str(ROOT),
            "WORKER_CONCURRENCY": "4",
            # These workers trade without replayed candles; tests never reach the exchanges.
            "TRADEFLEET_MARKETS_REFRESH": "false",
            **self.env,
            **env,
        }
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [TRADEFLEET, "worker"], env=full, stdout=log, stderr=log, cwd=self.tmp
        )
        log.close()
        self.procs[name] = proc
        return proc

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()


async def scalar(url: str, query: str, params: Any = None) -> Any:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        cur = await c.execute(query, params)
        row = await cur.fetchone()
        return None if row is None else row[0]


async def rows(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        cur = await c.execute(query, params)
        return await cur.fetchall()


def _as_pg(*cmd: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster of a test's own: its URL, and pg_ctl to restart, stop, start."""

    url: str
    ctl: list[str]

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_pg(*self.ctl, *args), check=True, capture_output=True)

    def restart(self) -> None:
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def start(self) -> None:
        self._ctl("start")


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster, migrated, on a free port (never the shared one:
    others' tests run there)."""
    # Outside pytest's tmp tree: the postgres system user must be able to reach it.
    home = Path(tempfile.mkdtemp(prefix="tradefleet-pg-"))
    data = home / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_pg(
            pg_program("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ),
        check=True,
        capture_output=True,
    )
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{data}'\n"
            "fsync = off\nwal_level = logical\ntimezone = 'UTC'\n"
        )
    ctl = [pg_program("pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "-t", "30"]
    subprocess.run(_as_pg(*ctl, "start"), check=True, capture_output=True)
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        env = {**os.environ, "TRADEFLEET_PG_PORT": str(port)}
        subprocess.run(
            [str(ROOT / "scripts" / "db"), "migrate", "postgres"],
            check=True,
            capture_output=True,
            env=env,
        )

        yield Cluster(url, ctl)
    finally:
        subprocess.run(_as_pg(*ctl, "-m", "immediate", "stop"), capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
