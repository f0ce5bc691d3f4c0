"""Benchmark: webhook events stored -> aggregated holdings updated, 1,000 accounts x 10 positions.

A local fake SnapTrade serves positions over real HTTP (a threaded server on 127.0.0.1);
the database is a fresh clone of the migrated template on the shared cluster, dropped at
the end. Jobs are claimed with SKIP LOCKED by concurrent runners calling the registered
handlers, as fleet workers do. Goal: <= 5 s. Last line:

    holdings: accounts=<n> positions=<m> seconds=<s>

Run: .venv/bin/python tests/bench/holdings.py [--users 100] [--accounts-per-user 10]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is sys.path[0]; sibling benches (e.g. queue.py) must not
# shadow the standard library.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
# ruff: noqa: E402

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import random
import re
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support import db as support
from worker.exchanges.keys import Keyring
from worker.fleet.registry import Job, JobContext, Registry
from worker.holdings import HoldingsDeps, register
from worker.holdings.provider import HoldingsProvider
from worker.holdings.snaptrade import SnapTradeClient, SnapTradeConfig

SYMBOLS = [f"SYM{i:02d}" for i in range(40)]
POSITIONS_PER_ACCOUNT = 10
_PATH = re.compile(r"^/api/v1/accounts/([^/]+)/positions/all$")
AS_OF = datetime.now(UTC).isoformat()


class FakeSnapTrade(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        match = _PATH.match(self.path.split("?", 1)[0])
        if not match or "Signature" not in self.headers:
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        n = int(match.group(1).rsplit("-", 1)[1])
        results = [{
            "instrument": {"kind": "stock", "id": s, "symbol": s, "raw_symbol": s, "description": None},
            "units": f"{(n % 7) + i + 1}.5", "price": f"{100 + i}.25", "cost_basis": f"{90 + i}.10", "currency": "USD",
        } for i, s in enumerate(SYMBOLS[(n + k) % len(SYMBOLS)] for k in range(POSITIONS_PER_ACCOUNT))]
        body = json.dumps({"results": results, "data_freshness": {"as_of": AS_OF}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def serve(ready: multiprocessing.Queue[int]) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeSnapTrade)
    httpd.daemon_threads = True
    ready.put(httpd.server_address[1])
    httpd.serve_forever()


async def _noop(_: float) -> None:
    return None


async def seed(url: str, keyring: Keyring, users: int, per_user: int) -> list[dict[str, str]]:
    """Users with an active SnapTrade connection and their accounts (as after linking)."""
    import psycopg

    events: list[dict[str, str]] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for u in range(users):
            uid = uuid.uuid4()
            await conn.execute(
                "insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, "
                "updated_at) values (%s, 'authenticated', 'authenticated', %s, '{}', '{}', now(), now())",
                (uid, f"bench{u}@test.local"))
            cur = await conn.execute(
                "insert into brokerage_connections (user_id, provider, provider_user_id, provider_connection_id, "
                "sealed_user_secret, status) values (%s, 'snaptrade', %s, %s, %s, 'active') returning id",
                (uid, str(uid), f"auth-{u}", keyring.seal_bytes(b"user-secret")))
            row = await cur.fetchone()
            assert row is not None
            for a in range(per_user):
                acc = f"acc-{u * per_user + a}"
                await conn.execute(
                    "insert into brokerage_accounts (connection_id, user_id, provider_account_id, name) "
                    "values (%s, %s, %s, %s)", (row[0], uid, acc, acc))
                events.append({"webhookId": str(uuid.uuid4()), "eventType": "ACCOUNT_HOLDINGS_UPDATED",
                               "userId": str(uid), "accountId": acc, "brokerageAuthorizationId": f"auth-{u}",
                               "eventTimestamp": datetime.now(UTC).isoformat()})
    return events


CLAIM = """
update jobs set status = 'running', attempts = attempts + 1, started_at = now()
 where id = (select id from jobs where status = 'queued' and kind like 'holdings.%%'
              order by id for update skip locked limit 1)
returning id, queue, kind, payload, attempts, max_attempts
"""


async def runner(pool: AsyncConnectionPool, reg: Registry, failures: list[str]) -> None:
    log = logging.LoggerAdapter(logging.getLogger("bench"))
    while True:
        async with pool.connection() as conn:
            row = await (await conn.execute(CLAIM)).fetchone()
        if row is None:
            return
        job = Job(id=row[0], queue=row[1], kind=row[2], payload=row[3], attempts=row[4], max_attempts=row[5])
        try:
            await reg.kinds[job.kind].handler(JobContext(job, pool, "bench", log, _noop))
            status = "succeeded"
        except Exception as e:
            failures.append(f"{job.kind}: {e}")
            status = "dead"
        async with pool.connection() as conn:
            await conn.execute("update jobs set status = %s, finished_at = now() where id = %s", (status, job.id))


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--accounts-per-user", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=24)
    args = parser.parse_args()

    # The fake provider runs in its own process, as a real one would (no shared GIL).
    ready: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ready,), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{ready.get(timeout=30)}/api/v1"

    support.ensure_platform()
    template = support.ensure_template()
    keyring = Keyring({"bench": os.urandom(32)})
    with support.cloned_database(template) as url:
        events = await seed(url, keyring, args.users, args.accounts_per_user)
        # Deliveries of many users arrive interleaved, not user by user.
        random.Random(7).shuffle(events)
        http = httpx.AsyncClient(limits=httpx.Limits(max_connections=args.concurrency * 2))
        snaptrade = SnapTradeClient(SnapTradeConfig("BENCH", "bench-key", base), http=http)
        providers: dict[str, HoldingsProvider] = {"snaptrade": snaptrade}
        reg = Registry()
        register(reg, HoldingsDeps(keyring=keyring, providers=providers, snaptrade=snaptrade))
        pool = AsyncConnectionPool(url, min_size=args.concurrency, max_size=args.concurrency, open=False,
                                   kwargs={"autocommit": True, "options": "-c role=service_role"})
        await pool.open(wait=True, timeout=60)
        failures: list[str] = []
        try:
            started = time.perf_counter()
            # What the Edge Function does per delivery: one idempotent insert (the trigger enqueues).
            async with pool.connection() as conn:
                await conn.execute(
                    "insert into webhook_events (provider, event_id, event_type, payload, occurred_at) "
                    "select 'snaptrade', e ->> 'webhookId', e ->> 'eventType', e, (e ->> 'eventTimestamp')::timestamptz "
                    "from jsonb_array_elements(%s::jsonb) e on conflict (provider, event_id) do nothing",
                    (json.dumps(events),))
            await asyncio.gather(*(runner(pool, reg, failures) for _ in range(args.concurrency)))
            seconds = time.perf_counter() - started
            async with pool.connection() as conn:
                positions = (await (await conn.execute("select count(*) from brokerage_positions")).fetchone() or [0])[0]
                holdings = (await (await conn.execute("select count(*) from aggregated_holdings")).fetchone() or [0])[0]
                pending = (await (await conn.execute(
                    "select count(*) from webhook_events where status <> 'processed'")).fetchone() or [0])[0]
        finally:
            await pool.close()
            await http.aclose()
            server.terminate()
            server.join(5)
    if failures or pending:
        print(f"FAILED: {len(failures)} job failures, {pending} events unprocessed; first: {failures[:3]}")
        return 1
    print(f"aggregated holdings rows: {holdings}; goal 5.0 s -> {seconds / 5.0:.2f} of budget")
    print(f"holdings: accounts={len(events)} positions={positions} seconds={seconds:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
