"""Benchmark: the operator console at scale, over HTTP, as browsers use it.

The data of ``scripts/bench overview`` (10,000 users, 20,000 bots, 1,000,000 trades, 20,000
paid invoices) behind a real ``tradefleet console``. An admin's browser:

- loads the overview page (``GET /``: sign-in check, the admin's transaction, the
  overview function, the rendered page), alternately with the reference, a plain
  ``select count(*) from trades`` on a connection of its own;
- keeps the live event stream open, 50 of them at once: a job is enqueued (the trigger's
  NOTIFY reaches the console's one LISTEN connection) and the time until every one of the
  50 streams has the event is measured, alternately with one stream alone as reference.

Last line: ``console: overview_p95_ms=… sse_fanout_s=… overview_ratio=… fanout_ratio=…``
(overview p95 / count(*) p95; 50-stream fan-out p95 / one-stream p95).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import jwt
import psycopg
from rich.console import Console

from tests.bench._common import bench_database, percentile
from tests.bench.overview import BOTS_PER_USER, GENERATE, INVOICES, TRADES_PER_BOT, USERS
from tests.support import console as support

ROUNDS = 60
FANOUT_ROUNDS = 20
CLIENTS = 50
ADMIN = "00000000-0000-4000-8000-00000000ad01"


def admin_token() -> str:
    now = int(time.time())
    claims = {
        "iss": support.ISSUER,
        "aud": "authenticated",
        "sub": ADMIN,
        "email": "admin@bench.local",
        "exp": now + 3600,
        "iat": now,
        "role": "tradefleet_admin",
        "app_metadata": {"provider": "email", "role": "admin"},
    }
    return jwt.encode(claims, support.SECRET, algorithm="HS256")


def overview(base: str, headers: dict[str, str], url: str, console: Console) -> tuple[float, float]:
    page_ms: list[float] = []
    reference_ms: list[float] = []
    with (
        httpx.Client(base_url=base, headers=headers, timeout=30) as http,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        for _ in range(3):  # warm the pool, plans and caches of both
            assert http.get("/").status_code == 200
            conn.execute("select count(*) from trades").fetchall()
        for _ in range(ROUNDS):
            start = time.perf_counter()
            r = http.get("/")
            page_ms.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200 and "Overview" in r.text
            start = time.perf_counter()
            conn.execute("select count(*) from trades").fetchall()
            reference_ms.append((time.perf_counter() - start) * 1000)
    console.print(
        f"GET / p50={percentile(page_ms, 50):.1f} ms p95={percentile(page_ms, 95):.1f} ms; "
        f"count(*) trades p50={percentile(reference_ms, 50):.1f} ms "
        f"p95={percentile(reference_ms, 95):.1f} ms"
    )
    return percentile(page_ms, 95), percentile(reference_ms, 95)


async def _stream(
    http: httpx.AsyncClient, ready: asyncio.Event, got: asyncio.Queue[float], counter: list[int]
) -> None:
    async with http.stream("GET", "/events") as r:
        assert r.status_code == 200, r.status_code
        async for line in r.aiter_lines():
            if line.startswith("retry:"):
                counter[0] += 1
                if counter[0] == counter[1]:
                    ready.set()
            elif line == "data: queue":
                got.put_nowait(time.perf_counter())


async def fanout_round(base: str, headers: dict[str, str], url: str, clients: int) -> list[float]:
    """Seconds from the enqueue's commit to each of ``clients`` streams, per round."""
    limits = httpx.Limits(max_connections=clients + 5, max_keepalive_connections=clients + 5)
    got: asyncio.Queue[float] = asyncio.Queue()
    ready = asyncio.Event()
    counter = [0, clients]
    async with (
        httpx.AsyncClient(
            base_url=base, headers=headers, timeout=httpx.Timeout(30, read=None), limits=limits
        ) as http,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
    ):
        tasks = [asyncio.create_task(_stream(http, ready, got, counter)) for _ in range(clients)]
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(0.5)  # the hub's first events after connecting are gone
        while not got.empty():
            got.get_nowait()
        times: list[float] = []
        for _ in range(FANOUT_ROUNDS):
            await asyncio.sleep(0.4)  # past the hub's interval, so no event waits for it
            start = time.perf_counter()
            await conn.execute("select public.enqueue_job('bench.console')")
            last = 0.0
            for _ in range(clients):
                last = max(last, await asyncio.wait_for(got.get(), 30))
            times.append(last - start)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return times


def main() -> None:
    console = Console(stderr=True)
    with bench_database("console") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            params = {
                "users": USERS,
                "bots": BOTS_PER_USER,
                "trades": TRADES_PER_BOT,
                "invoices": INVOICES,
            }
            for statement in GENERATE.split(";\n\n"):
                conn.execute(statement, params)
            conn.execute("vacuum analyze")
            console.print(f"generated the data in {time.perf_counter() - started:.1f} s")
        headers = {"authorization": f"Bearer {admin_token()}"}
        with (
            tempfile.TemporaryDirectory() as tmp,
            support.serve(url, Path(tmp) / "console.log") as base,
        ):
            o95, r95 = overview(base, headers, url, console)
            one: list[float] = []
            many: list[float] = []
            for _ in range(2):  # alternate, so both see the same machine
                one += asyncio.run(fanout_round(base, headers, url, 1))
                many += asyncio.run(fanout_round(base, headers, url, CLIENTS))
    f95, one95 = percentile(many, 95), percentile(one, 95)
    print(f"overview page p95={o95:.2f} ms; reference count(*) trades p95={r95:.2f} ms")
    print(
        f"event to {CLIENTS} streams p50={percentile(many, 50):.3f} s p95={f95:.3f} s "
        f"max={max(many):.3f} s; to one stream p50={percentile(one, 50):.3f} s p95={one95:.3f} s"
    )
    print(
        f"console: overview_p95_ms={o95:.2f} sse_fanout_s={f95:.3f} "
        f"overview_ratio={o95 / r95:.2f} fanout_ratio={f95 / one95:.2f}"
    )


if __name__ == "__main__":
    main()
