"""Benchmark: the public API's per-request SQL, and a request through it versus PostgREST's.

100,000 API keys (10,000 users with 10 keys each, 2 bots each). Eight clients, each with its
own connection and random keys, make each request's SQL: key lookup by keyed hash, scope
check, plan, GCRA rate-limit decisions, the key's last use, and the call's usage record.
The api function sends the usage records waiting in its isolate along with the next
request's ``public.api_authorize`` call, so in steady traffic a request is one round trip
carrying the previous call's record: the p99 of that is the first figure. Printed beside it:
``api_authorize`` alone, and followed by a usage record of its own
(``public.api_record_calls`` with that one call, two round trips: what an idle isolate
does). Then the same clients time a whole request to ``GET /api/v1/bots`` as the function
runs it (``api_authorize``, then a transaction with the user's claims and role and the bots
query) against the same query the way PostgREST runs it (a transaction with the role switch
and claims, then the query): the ratio of their p99s is the second.

Every measurement runs twice, with two kinds of client: Python processes (psycopg; each
``--threads``: threads of one process), as earlier releases measured, and pgbench's C
clients (8 connections on one thread per core). On this 2-core machine the 8 Python
processes spend about a third of the CPU themselves, so their latencies are mostly the
queue for the cores they share with the database; the headline figures are pgbench's, which
spends a few percent. Each line also gives the CPU per request, from ``psutil`` and
``getrusage``, of the database's processes and of the clients: what the machine's other load
does not change.

The ``api_authorize`` of the previous release (``REFERENCE``, from its migration) runs beside
it in the same run, alone and with the usage record, so the two compare under the same load.
Each measurement uses keys of its own.

Last line: ``api: p99_ms=<request SQL p99, record carried> ratio=<api request p99 / PostgREST
p99> python_p99_ms=… python_ratio=…`` (the first two from pgbench's clients, the last two
from the Python clients).
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from tests.bench._common import bench_database, cluster_cpu, percentile
from tests.support.programs import pg_program

USERS, KEYS_PER_USER, BOTS_PER_USER = 10_000, 10, 2
CLIENTS, CALLS = 8, 2_000
WARM = 50  # requests of each client before its CALLS counted ones
# Clients as threads of one process (--threads) rather than processes: see run().
THREADS = "--threads" in sys.argv[1:]

GENERATE = """
update public.plans set api_access = true,
       features = features || '{"api_requests_per_minute": 100000000}' where name = 'Free';

insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
select md5('bench-user/' || g)::uuid, 'authenticated', 'authenticated', 'user' || g || '@bench.local',
       '{"provider": "email", "role": "user"}', '{}', now(), now()
  from generate_series(1, %(users)s) g;

insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
select p.id, 'bot ' || b, 'binance', 'ETH/BTC', '5m', 'sma_cross', 1, 0.1
  from public.profiles p cross join generate_series(1, %(bots)s) b;

create table public.bench_api_keys as
select (g - 1) * %(keys)s + k as n, md5('bench-user/' || g)::uuid as user_id,
       'tf_live_' || md5('bench-key/' || ((g - 1) * %(keys)s + k)) as key
  from generate_series(1, %(users)s) g cross join generate_series(1, %(keys)s) k;

insert into public.api_keys (user_id, name, environment, prefix, key_hash, scopes)
select b.user_id, 'bench ' || b.n, 'live', left(b.key, 16), private.api_key_hash(b.key), '{bots:read,trades:read}'
  from public.bench_api_keys b
"""

AUTHORIZE = "select public.api_authorize(%s, 'bots:read', '198.51.100.7'::inet)"
REFERENCE = "20261214700000_api_authorize_lean.sql"
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
    start = text.index("create or replace function public.api_authorize(")
    body = text[start : text.index("$$;", start) + 3]
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
        for _ in range(WARM):
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


# The same requests from C clients: pgbench, 8 connections on one thread per core, each
# request one pgbench transaction (its whole script), prepared statements as the Python
# clients' psycopg uses them after 5 executions. pgbench makes no strings, so a request's
# key is made in SQL from its number (an md5, microseconds), and the scope is spelt without
# a colon (pgbench reads ':name' as a variable). A client's first WARM requests are not
# counted. A request answered other than 200 fails its transaction (1 / 0), and the run.
PGBENCH = pg_program("pgbench")
PGBENCH_THREADS = min(CLIENTS, os.cpu_count() or 1)
KEY = "'tf_live_' || md5('bench-key/' || :n)"
SCOPE = "'bots' || chr(58) || 'read'"
IP = "'198.51.100.7'::inet"
PICK = "\\set n random(:lo, :hi)\n"
OK = "\\if :status != 200\nselect 1 / 0;\n\\endif\n"
PREVIOUS = (
    "jsonb_build_array(jsonb_build_object('key_id', :key_id::text, 'user_id', :user_id::text,"
    " 'endpoint', 'GET /v1/bots', 'status', 200, 'latency_ms', 1))"
)
IDS = "a ->> 'status' as status, a ->> 'key_id' as key_id, a ->> 'user_id' as user_id"


def _authorize(function: str, calls: str = "") -> str:
    return f"select {IDS} from public.{function}({KEY}, {SCOPE}, {IP}{calls}) a \\gset\n{OK}"


PGBENCH_SCRIPTS = {
    "reference": PICK + _authorize("bench_api_authorize_reference"),
    "api_authorize": PICK + _authorize("api_authorize"),
    "reference + rec": PICK
    + _authorize("bench_api_authorize_reference")
    + f"select public.api_record_calls({PREVIOUS});\n",
    "+ usage record": PICK
    + _authorize("api_authorize")
    + f"select public.api_record_calls({PREVIOUS});\n",
    "record carried": PICK + _authorize("api_authorize", f", {PREVIOUS}"),
    "request via api": PICK + f"select a ->> 'status' as status, a ->> 'claims' as claims"
    f" from public.api_authorize({KEY}, {SCOPE}, {IP}) a \\gset\n{OK}"
    "begin;\n"
    "select set_config('request.jwt.claims', :claims, true), set_config('role', 'authenticated', true);\n"
    f"{BOTS};\n"
    "commit;\n",
    # PostgREST is given the claims; here they are made in SQL from the key's user (its
    # number: keys are numbered user by user), an md5 and a concatenation.
    "via PostgREST": PICK + f"\\set g (:n - 1) / {KEYS_PER_USER} + 1\n"
    "begin;\n"
    "select set_config('request.jwt.claims', '{\"sub\": \"' || md5('bench-user/' || :g)::uuid"
    ' || \'", "role": "authenticated", "aud": "authenticated", "aal": "aal1",'
    ' "app_metadata": {"role": "user"}}\', true), set_config(\'role\', \'authenticated\', true);\n'
    f"{BOTS};\n"
    "commit;\n",
}


def run_pgbench(url: str, script: str, keys: range, previous: tuple[str, str]) -> list[float]:
    """CLIENTS pgbench clients, WARM + CALLS requests each, keys numbered in ``keys``; the
    latency of every request but the first WARM of each client."""
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        path = Path(tmp) / "script.sql"
        path.write_text(script)
        command = [
            PGBENCH, "-n", "-c", str(CLIENTS), "-j", str(PGBENCH_THREADS), "-t", str(WARM + CALLS),
            "-M", "prepared", "-f", str(path), "-l", "--log-prefix", str(Path(tmp) / "log"),
            "-D", f"lo={keys.start}", "-D", f"hi={keys.stop - 1}",
            "-D", f"key_id={previous[0]}", "-D", f"user_id={previous[1]}", url,
        ]  # fmt: skip
        env = os.environ | {"PGOPTIONS": "-c role=service_role"}
        out = subprocess.run(command, capture_output=True, text=True, env=env)
        if out.returncode != 0 or "number of failed transactions: 0 " not in out.stdout:
            raise SystemExit(f"bench api: pgbench failed:\n{out.stdout}\n{out.stderr}")
        latencies = []
        for log in Path(tmp).glob("log.*"):
            for line in log.read_text().splitlines():
                _client, request, micros = line.split()[:3]
                if int(request) > WARM:  # numbered from 1
                    latencies.append(int(micros) / 1000)
        assert len(latencies) == CLIENTS * CALLS, len(latencies)
        return latencies


def database_cpu(url: str) -> float:
    """CPU seconds the database's processes have used (``cluster_cpu``)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select pg_backend_pid()").fetchone()
        assert row is not None
        return cluster_cpu(int(row[0]))


def client_cpu() -> float:
    """CPU seconds of this process and of its children that have ended (client processes,
    pgbench)."""
    mine, theirs = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return mine.ru_utime + mine.ru_stime + theirs.ru_utime + theirs.ru_stime


def measured(url: str, work: Any) -> tuple[list[float], float, float]:
    """``work()``'s latencies and the database's and the clients' CPU milliseconds per
    request while it ran (whatever else the machine runs does not count)."""
    database, clients = database_cpu(url), client_cpu()
    latencies: list[float] = work()
    database, clients = database_cpu(url) - database, client_cpu() - clients
    n = CLIENTS * (CALLS + WARM)  # the warm-up requests used CPU too
    return latencies, database * 1000 / n, clients * 1000 / n


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
            keys = {
                int(n): (str(k), str(u))
                for n, k, u in conn.execute(
                    "select n, key, user_id from public.bench_api_keys"
                ).fetchall()
            }
            previous = conn.execute("select id, user_id from public.api_keys limit 1").fetchone()
            assert previous is not None
        # Each measurement uses keys of its own (numbered ranges): a key used within the
        # minute is not marked used again, which would favour the second of two.
        size = USERS * KEYS_PER_USER // (2 * len(PGBENCH_SCRIPTS))
        ranges = [range(1 + i * size, 1 + (i + 1) * size) for i in range(2 * len(PGBENCH_SCRIPTS))]
        python: dict[str, tuple[list[float], float, float]] = {}
        for (name, fn), numbers in zip(
            (
                ("reference", reference_only),
                ("api_authorize", authorize_only),
                ("reference + rec", reference_and_record),
                ("+ usage record", authorize_and_record),
                ("record carried", authorize_carrying),
                ("request via api", through_api),
                ("via PostgREST", through_postgrest),
            ),
            ranges[: len(PGBENCH_SCRIPTS)],
            strict=True,
        ):
            sample = [keys[n] for n in numbers]
            python[name] = measured(url, functools.partial(run, url, sample, fn))
        c_clients: dict[str, tuple[list[float], float, float]] = {}
        for (name, script), numbers in zip(
            PGBENCH_SCRIPTS.items(), ranges[len(python) :], strict=True
        ):
            c_clients[name] = measured(
                url,
                functools.partial(
                    run_pgbench, url, script, numbers, (str(previous[0]), str(previous[1]))
                ),
            )
    clients = "threads of one process" if THREADS else "processes"
    for title, results in (
        (f"Python clients ({CLIENTS} {clients}):", python),
        (
            f"C clients (pgbench, {CLIENTS} connections on {PGBENCH_THREADS} threads):",
            c_clients,
        ),
    ):
        print(title)
        for name, (values, database, client) in results.items():
            print(
                f"  {name:16s} n={len(values)} p50={percentile(values, 50):.2f} ms"
                f" p95={percentile(values, 95):.2f} ms p99={percentile(values, 99):.2f} ms"
                f"  cpu/request: database {database:.2f} ms, clients {client:.2f} ms"
            )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"load average while measuring: {load} on {os.cpu_count()} cores")

    def figures(results: dict[str, tuple[list[float], float, float]]) -> tuple[float, float]:
        p99 = percentile(results["record carried"][0], 99)
        ratio = percentile(results["request via api"][0], 99) / percentile(
            results["via PostgREST"][0], 99
        )
        return p99, ratio

    p99, ratio = figures(c_clients)
    python_p99, python_ratio = figures(python)
    print(
        f"api: p99_ms={p99:.2f} ratio={ratio:.2f}"
        f" python_p99_ms={python_p99:.2f} python_ratio={python_ratio:.2f}"
    )


if __name__ == "__main__":
    main()
