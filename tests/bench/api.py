"""Benchmark: the public API's per-request SQL, and a request through it versus PostgREST's.

100,000 API keys (10,000 users with 10 keys each, 2 bots each). Eight clients, each a
process with its own connection and random keys (``--threads``: threads of one process),
make each request's SQL: key lookup by keyed hash,
scope check, plan, GCRA rate-limit decisions, the key's last use, and the call's usage
record. The api function sends the usage records waiting in its isolate along with the next
request's ``public.api_authorize`` call, so in steady traffic a request is one round trip
carrying the previous call's record: the p99 of that is the first figure. Printed beside it:
``api_authorize`` alone, and followed by a usage record of its own
(``public.api_record_calls`` with that one call, two round trips: what an idle isolate
does). Then the same clients time a whole request to ``GET /api/v1/bots`` as the function
runs it (``api_authorize``, then a transaction with the user's claims and role and the bots
query) against the same query the way PostgREST runs it (a transaction with the role switch
and claims, then the query): the ratio of their p99s is the second.

The ``api_authorize`` of the previous release (``REFERENCE``, from its migration) runs beside
it in the same run, alone and with the usage record, so the two compare under the same load.
Each run uses keys of its own.

Last line: ``api: p99_ms=<request SQL p99, record carried> ratio=<api request p99 / PostgREST p99>``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from tests.bench._common import bench_database, percentile

USERS, KEYS_PER_USER, BOTS_PER_USER = 10_000, 10, 2
CLIENTS, CALLS = 8, 2_000
# Clients as threads of one process (--threads) rather than processes: see run().
THREADS = "--threads" in sys.argv[1:]

GENERATE = """
update public.plans set api_access = true,
       features = features || '{"api_requests_per_minute": 100000000}' where name = 'Free';

insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
select gen_random_uuid(), 'authenticated', 'authenticated', 'user' || g || '@bench.local',
       '{"provider": "email", "role": "user"}', '{}', now(), now()
  from generate_series(1, %(users)s) g;

insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
select p.id, 'bot ' || b, 'binance', 'ETH/BTC', '5m', 'sma_cross', 1, 0.1
  from public.profiles p cross join generate_series(1, %(bots)s) b;

create table public.bench_api_keys as
select p.id as user_id, k, 'tf_live_' || md5(p.id::text || ':' || k) as key
  from public.profiles p cross join generate_series(1, %(keys)s) k;

insert into public.api_keys (user_id, name, environment, prefix, key_hash, scopes)
select b.user_id, 'bench ' || b.k, 'live', left(b.key, 16), private.api_key_hash(b.key), '{bots:read,trades:read}'
  from public.bench_api_keys b
"""

AUTHORIZE = "select public.api_authorize(%s, 'bots:read', '198.51.100.7'::inet)"
REFERENCE = "20261212300300_api_authorize_faster.sql"
AUTHORIZE_REFERENCE = AUTHORIZE.replace("api_authorize", "bench_api_authorize_reference")
CARRYING = "select public.api_authorize(%s, 'bots:read', '198.51.100.7'::inet, %s::jsonb)"
# Each client's record of its previous call, carried by its next api_authorize.
_waiting: dict[int, str | None] = {}
RECORD = "select public.api_record_calls(%s)"
BOTS = (
    "select b.id, b.name, b.status, b.initial_balance::text, b.created_at"
    " from public.bots b order by b.created_at desc, b.id limit 100"
)
ACT = "select set_config('request.jwt.claims', %s, true), set_config('role', 'authenticated', true)"


def claims(user_id: str) -> str:
    return json.dumps(
        {
            "sub": user_id,
            "role": "authenticated",
            "aud": "authenticated",
            "aal": "aal1",
            "app_metadata": {"role": "user"},
        }
    )


def authorize_only(conn: psycopg.Connection[Any], key: str, user: str) -> float:
    start = time.perf_counter()
    row = conn.execute(AUTHORIZE, (key,)).fetchone()
    elapsed = (time.perf_counter() - start) * 1000
    assert row is not None and row[0]["status"] == 200, row
    return elapsed


def reference_only(conn: psycopg.Connection[Any], key: str, user: str) -> float:
    start = time.perf_counter()
    row = conn.execute(AUTHORIZE_REFERENCE, (key,)).fetchone()
    elapsed = (time.perf_counter() - start) * 1000
    assert row is not None and row[0]["status"] == 200, row
    return elapsed


def record(conn: psycopg.Connection[Any], key_id: str, user: str) -> None:
    call = {
        "key_id": key_id,
        "user_id": user,
        "endpoint": "GET /v1/bots",
        "status": 200,
        "latency_ms": 1,
    }
    conn.execute(RECORD, (json.dumps([call]),))


def reference_and_record(conn: psycopg.Connection[Any], key: str, user: str) -> float:
    start = time.perf_counter()
    row = conn.execute(AUTHORIZE_REFERENCE, (key,)).fetchone()
    assert row is not None and row[0]["status"] == 200, row
    record(conn, row[0]["key_id"], user)
    return (time.perf_counter() - start) * 1000


def reference_function() -> str:
    """The previous release's api_authorize, renamed, to run beside the current one."""
    text = (Path(__file__).resolve().parents[2] / "supabase" / "migrations" / REFERENCE).read_text()
    start = text.index("create function public.api_authorize(")
    body = text[start : text.index("$$;", start) + 3]
    body = body.replace("create function", "create or replace function", 1)
    return body.replace("public.api_authorize(", "public.bench_api_authorize_reference(", 1)


def authorize_and_record(conn: psycopg.Connection[Any], key: str, user: str) -> float:
    start = time.perf_counter()
    row = conn.execute(AUTHORIZE, (key,)).fetchone()
    assert row is not None and row[0]["status"] == 200, row
    record(conn, row[0]["key_id"], user)
    return (time.perf_counter() - start) * 1000


def authorize_carrying(conn: psycopg.Connection[Any], key: str, user: str) -> float:
    """One round trip: the key, limits and the previous call's usage record, as the api
    function makes it in steady traffic (its waiting records ride along)."""
    start = time.perf_counter()
    row = conn.execute(CARRYING, (key, _waiting.get(id(conn)))).fetchone()
    elapsed = (time.perf_counter() - start) * 1000
    assert row is not None and row[0]["status"] == 200, row
    call = {"key_id": row[0]["key_id"], "user_id": user, "endpoint": "GET /v1/bots"}
    _waiting[id(conn)] = json.dumps([call | {"status": 200, "latency_ms": 1}])
    return elapsed


def through_api(conn: psycopg.Connection[Any], key: str, user: str) -> float:
    start = time.perf_counter()
    row = conn.execute(AUTHORIZE, (key,)).fetchone()
    assert row is not None and row[0]["status"] == 200, row
    with conn.transaction():
        conn.execute(ACT, (json.dumps(row[0]["claims"]),))
        conn.execute(BOTS).fetchall()
    return (time.perf_counter() - start) * 1000


def through_postgrest(conn: psycopg.Connection[Any], key: str, user: str) -> float:
    start = time.perf_counter()
    with conn.transaction():
        conn.execute(ACT, (claims(user),))
        conn.execute(BOTS).fetchall()
    return (time.perf_counter() - start) * 1000


def _calls(url: str, sample: list[tuple[str, str]], fn: Any, i: int, wait: Any) -> list[float]:
    """One client: its own connection, a warm-up, then CALLS calls; every latency."""
    rng = random.Random(i)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set role service_role")
        for _ in range(50):  # warm up
            key, user = sample[rng.randrange(len(sample))]
            fn(conn, key, user)
        wait()
        out = []
        for _ in range(CALLS):
            key, user = sample[rng.randrange(len(sample))]
            out.append(fn(conn, key, user))
        return out


def _process_client(
    url: str, sample: list[tuple[str, str]], fn: Any, i: int, barrier: Any, results: Any
) -> None:
    results.put(_calls(url, sample, fn, i, barrier.wait))


def run(url: str, sample: list[tuple[str, str]], fn: Any) -> list[float]:
    """CLIENTS clients, each on its own connection, CALLS calls each; every latency.

    Each client is a process of its own, as the api function's isolates are: threads of one
    Python process would also time each other's waits for the interpreter lock, which on a
    busy machine (a thread holding it is descheduled) dominate the tail. ``--threads`` runs
    them as threads of this process instead, as earlier releases measured."""
    if THREADS:
        results: list[list[float]] = [[] for _ in range(CLIENTS)]
        barrier = threading.Barrier(CLIENTS)

        def client(i: int) -> None:
            results[i] = _calls(url, sample, fn, i, barrier.wait)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [v for r in results for v in r]
    ctx = multiprocessing.get_context("fork")
    pbarrier = ctx.Barrier(CLIENTS)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_process_client, args=(url, sample, fn, i, pbarrier, queue))
        for i in range(CLIENTS)
    ]
    for p in procs:
        p.start()
    latencies = [v for _ in procs for v in queue.get()]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"bench api: a client process failed (exit code {p.exitcode})")
    return latencies


def main() -> None:
    console = Console(stderr=True)
    with bench_database("api") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            for statement in GENERATE.split(";\n\n"):
                conn.execute(
                    statement, {"users": USERS, "keys": KEYS_PER_USER, "bots": BOTS_PER_USER}
                )
            conn.execute(reference_function())
            conn.execute(
                "grant execute on function public.bench_api_authorize_reference(text, text, inet, jsonb)"
                " to service_role"
            )
            conn.execute("vacuum analyze")
            n = conn.execute("select count(*) from public.api_keys").fetchone()
            assert n is not None
            console.print(f"generated {n[0]:,} API keys in {time.perf_counter() - started:.1f} s")
            sample = [
                (str(k), str(u))
                for k, u in conn.execute(
                    "select key, user_id from public.bench_api_keys order by random() limit 70000"
                ).fetchall()
            ]
        # Each comparison of the two functions uses keys of its own: a key used within the
        # minute is not marked used again, which would favour the second.
        parts = [sample[i::7] for i in range(7)]
        reference_ms = run(url, parts[0], reference_only)
        auth_ms = run(url, parts[1], authorize_only)
        reference_metered_ms = run(url, parts[2], reference_and_record)
        metered_ms = run(url, parts[3], authorize_and_record)
        carrying_ms = run(url, parts[4], authorize_carrying)
        api_ms = run(url, parts[5], through_api)
        rest_ms = run(url, parts[6], through_postgrest)
    for name, values in (
        ("reference", reference_ms),
        ("api_authorize", auth_ms),
        ("reference + rec", reference_metered_ms),
        ("+ usage record", metered_ms),
        ("record carried", carrying_ms),
        ("request via api", api_ms),
        ("via PostgREST", rest_ms),
    ):
        print(
            f"{name:16s} n={len(values)} p50={percentile(values, 50):.2f} ms"
            f" p95={percentile(values, 95):.2f} ms p99={percentile(values, 99):.2f} ms"
        )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    clients = "threads of one process" if THREADS else "processes"
    print(f"load average while measuring: {load} on {os.cpu_count()} cores; clients: {clients}")
    p99 = percentile(carrying_ms, 99)
    ratio = percentile(api_ms, 99) / percentile(rest_ms, 99)
    print(f"api: p99_ms={p99:.2f} ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
