"""Optional parts switch off cleanly: a ``tradefleet worker`` configured from
``.env.example`` as it is (no master keys, SnapTrade, Alpaca or Telegram) says once per
missing part what is off, schedules none of that part's periodic jobs, and runs every
period without a job failing; configured, the same parts run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.db import ROOT
from tests.support.waiting import wait_for

TRADEFLEET = str(ROOT / ".venv" / "bin" / "tradefleet")
KEY = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
# Every periodic job of the built-in capabilities, and the queue it runs on.
PERIODIC = {
    "fleet.prune",
    "fleet.partitions",
    "credits.expire_holds",
    "credits.monthly_grants",
    "credits.api_usage",
    "billing.sweep",
    "billing.renew",
    "billing.payouts",
    "billing.monthly_payouts",
    "signals.renew",
    "holdings.nightly",
    "holdings.update_prices",
    "holdings.webhook_sweep",
    "markets.refresh",
    "data.refresh",
    "ops.health",
    "ops.alerts",
}
CONFIGURED = {
    "TRADEFLEET_MASTER_KEYS": KEY,
    "SNAPTRADE_CLIENT_ID": "partner",
    "SNAPTRADE_CONSUMER_KEY": "consumer-key",
    # Never reached: no stock is watched, and nothing is linked to SnapTrade.
    "SNAPTRADE_API_URL": "http://127.0.0.1:9/api/v1",
    "ALPACA_DATA_URL": "http://127.0.0.1:9",
    "ALPACA_DATA_KEY_ID": "key-id",
    "ALPACA_DATA_SECRET": "data-secret",
    "TELEGRAM_BOT_TOKEN": "123:abc",
    "TELEGRAM_API_URL": "http://127.0.0.1:9",
}


def fresh_env_file(url: str, **settings: str) -> str:
    """``.env.example`` as a new operator copies it, with their database and ``settings``."""
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        if name in settings or name == "DATABASE_URL":
            continue
        lines.append(line)
    lines += [f"DATABASE_URL={url}", *(f"{k}={v}" for k, v in settings.items())]
    return "\n".join(lines) + "\n"


class Worker:
    """One ``tradefleet worker`` run in ``folder`` with only its ``.env`` for settings."""

    def __init__(self, folder: Path, url: str, **settings: str) -> None:
        self.folder = folder
        self.log_path = folder / "worker.log"
        (folder / ".env").write_text(fresh_env_file(url, **settings))
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [TRADEFLEET, "worker"], env=env, cwd=folder, stdout=log, stderr=log
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"level": "raw", "msg": line})
        return out

    def warnings(self) -> list[dict[str, Any]]:
        return [r for r in self.lines() if r.get("level") == "warning"]


@pytest.fixture
def start(db_url: str, tmp_path: Path) -> Iterator[Any]:
    workers: list[Worker] = []

    def start_worker(**settings: str) -> Worker:
        folder = tmp_path / f"worker{len(workers)}"
        folder.mkdir()
        worker = Worker(folder, db_url, **settings)
        workers.append(worker)
        return worker

    yield start_worker
    for w in workers:
        w.stop()


async def jobs(url: str) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        cur = await c.execute(
            "select kind, status, attempts, last_error, idempotency_key from public.jobs order by id"
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


async def services_checked(url: str) -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        cur = await c.execute("select service, status from public.service_status")
        return {str(r[0]): str(r[1]) for r in await cur.fetchall()}


async def run_one_period(url: str, worker: Worker, expected: set[str]) -> list[dict[str, Any]]:
    """Wait until the worker has enqueued and finished this period of each ``expected``
    periodic job; return every job."""

    async def period_done() -> bool:
        assert worker.proc.poll() is None, worker.log_path.read_text()
        found = await jobs(url)
        periodic = [j for j in found if (j["idempotency_key"] or "").startswith("periodic:")]
        return {j["kind"] for j in periodic} >= expected and all(
            j["status"] not in ("queued", "running") for j in periodic
        )

    try:
        await wait_for("one period of every periodic job", period_done, limit_s=60)
    except AssertionError as e:
        raise AssertionError(f"{e}: {await jobs(url)}") from None
    return await jobs(url)


async def test_a_fresh_setup_runs_every_period_and_no_job_fails(db_url: str, start: Any) -> None:
    worker = start()
    expected = PERIODIC - {"holdings.nightly"}
    found = await run_one_period(db_url, worker, expected)
    worker.stop()
    periodic = {j["kind"] for j in found if (j["idempotency_key"] or "").startswith("periodic:")}
    assert periodic == expected, "the parts that are off schedule nothing"
    failed = [j for j in found if j["status"] != "succeeded" or j["attempts"] != 1]
    assert failed == [], failed
    assert worker.proc.returncode == 0, worker.log_path.read_text()
    assert await services_checked(db_url) == {"database": "healthy"}, "only what is configured"


async def test_each_missing_part_gives_exactly_one_warning(db_url: str, start: Any) -> None:
    worker = start(SNAPTRADE_CLIENT_ID="partner")  # half of SnapTrade's settings
    await run_one_period(db_url, worker, PERIODIC - {"holdings.nightly"})
    worker.stop()
    parts = [r for r in worker.warnings() if r.get("action") == "part_off"]
    assert sorted((r["part"], tuple(r["missing"])) for r in parts) == [
        ("Alpaca market data", ("ALPACA_DATA_KEY_ID", "ALPACA_DATA_SECRET")),
        ("SnapTrade", ("SNAPTRADE_CONSUMER_KEY",)),
        ("Telegram", ("TELEGRAM_BOT_TOKEN",)),
        ("master keys", ("TRADEFLEET_MASTER_KEYS",)),
    ]
    for r in parts:
        assert all(name in r["msg"] for name in r["missing"]), r["msg"]
        assert " is off: " in r["msg"], r["msg"]
    master = next(r for r in parts if r["part"] == "master keys")
    assert "holdings.nightly" in master["msg"] and "live bots" in master["msg"]
    others = [r for r in worker.warnings() if r.get("action") != "part_off"]
    assert others == [], others


async def test_configured_parts_run(db_url: str, start: Any) -> None:
    worker = start(**CONFIGURED)
    found = await run_one_period(db_url, worker, PERIODIC)
    worker.stop()
    assert [r for r in worker.warnings() if r.get("action") == "part_off"] == []
    periodic = {j["kind"] for j in found if (j["idempotency_key"] or "").startswith("periodic:")}
    assert periodic == PERIODIC
    failed = [j for j in found if j["status"] != "succeeded" or j["attempts"] != 1]
    assert failed == [], failed
    # Their fake addresses refuse connections, so each has failed (degraded, or down after
    # HEALTH_DOWN_AFTER periods).
    checked = await services_checked(db_url)
    assert set(checked) == {"database", "snaptrade", "alpaca", "telegram"}
    assert checked["database"] == "healthy"
    assert {checked[s] for s in ("snaptrade", "alpaca", "telegram")} <= {"degraded", "down"}
