"""Credit ledger benchmark.

8 concurrent clients over 10 hot and 10,000, 100,000 and 1,000,000 user accounts (each
size on a fresh database) run a realistic mix
(usage charges, holds, partial posts, voids, grants, and retries of earlier calls with
the same id), first one transfer per call, then the same mix through the batch call;
in the same run pgbench's built-in tpcb-like script runs on the same cluster with the
same client count. The ledger is audited after both runs. Last line:

    credits: accounts=<n> transfers_per_s=<x> batch_transfers_per_s=<y> violations=<n>
             ratio=<x / pgbench tps> growth=<time per batched transfer, largest over smallest size>

    scripts/bench credits [--sizes 10000,100000,1000000]

Clients run in 2 processes of 4 asyncio connections each, as pgbench runs 8 clients on
2 threads (-j 2), so the Python client is not the bottleneck on a small machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is sys.path[0]; sibling benches (queue.py) must not shadow
# the standard library.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parents[1]))
# ruff: noqa: E402

import argparse
import asyncio
import json
import multiprocessing
import random
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from tests.bench._common import bench_database, parse_sizes, print_curve
from tests.support import db as support
from tests.support.programs import pg_program

CLIENTS = 8
PROCESSES = 2
HOT = 10
SINGLE_SECONDS = 15.0
BATCH_SECONDS = 10.0
BATCH_SIZE = 1000
PGBENCH_SECONDS = 15
PGBENCH = pg_program("pgbench")

CHARGE = "select (credit_charge_usage(%(id)s, %(user_id)s, %(usage)s, %(quantity)s)).id"
HOLD = "select (credit_hold(%(id)s, %(debit)s, %(credit)s, %(amount)s, 'usage', interval '10 minutes')).id"
POST = "select (credit_post(%(id)s, %(pending_id)s, %(amount)s)).id"
VOID = "select (credit_void(%(id)s, %(pending_id)s)).id"
TRANSFER = "select (credit_create_transfer(%(id)s, %(debit)s, %(credit)s, %(amount)s, 'grant')).id"
BATCH = "select result, count(*) from credit_create_transfers(%(transfers)s::jsonb) group by result"


@dataclass
class Accounts:
    hot: list[tuple[str, str]]  # (user_id, account_id)
    cold: list[tuple[str, str]]
    usage: str
    grants: str


async def setup(url: str, cold_accounts: int) -> Accounts:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            """
            insert into auth.users (id, aud, role, email, raw_app_meta_data, created_at, updated_at)
            select gen_random_uuid(), 'authenticated', 'authenticated', 'bench' || g || '@bench.local',
                   '{"role": "user"}', now(), now()
              from generate_series(1, %(n)s) g
            """,
            {"n": HOT + cold_accounts},
        )
        cur = await conn.execute(
            "select user_id::text, id::text from credit_accounts where kind = 'user' order by id"
        )
        rows = [(r[0], r[1]) for r in await cur.fetchall()]
        cur = await conn.execute("select id::text from credit_accounts where code = 'system:usage'")
        usage = (await cur.fetchone() or ("",))[0]
        cur = await conn.execute(
            "select id::text from credit_accounts where code = 'system:grants'"
        )
        grants = (await cur.fetchone() or ("",))[0]
        random.Random(7).shuffle(rows)
        hot, cold = rows[:HOT], rows[HOT:]
        # Opening balances: hot accounts are busy and rich, cold ones hold a month's credits.
        for chunk_start in range(0, len(rows), 5000):
            chunk = rows[chunk_start : chunk_start + 5000]
            elements = [
                {
                    "action": "transfer",
                    "id": str(uuid.uuid4()),
                    "debit_account_id": grants,
                    "credit_account_id": acct,
                    "amount": "100000000" if (u, acct) in hot else "100000",
                    "kind": "grant",
                }
                for u, acct in chunk
            ]
            await conn.execute(
                "select count(*) from credit_create_transfers(%s::jsonb)", (json.dumps(elements),)
            )
        await conn.execute("vacuum analyze credit_accounts")
        await conn.execute("vacuum analyze credit_transfers")
        return Accounts(hot, cold, usage, grants)


def pick(rng: random.Random, acc: Accounts) -> tuple[str, str]:
    return rng.choice(acc.hot) if rng.random() < 0.5 else rng.choice(acc.cold)


def money(rng: random.Random, low: int, high: int) -> str:
    return str(Decimal(rng.randint(low * 100, high * 100)) / 100)


class Mix:
    """The realistic mix, as (action, params) steps; remembers open holds and past calls."""

    def __init__(self, seed: int, acc: Accounts) -> None:
        self.rng = random.Random(seed)
        self.acc = acc
        self.open_holds: list[tuple[str, str]] = []  # (hold id, amount)
        self.done: list[tuple[str, dict[str, Any]]] = []

    def next(self) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        r = rng.random()
        if r < 0.03 and self.done:  # a retry: the same call again, must not apply twice
            return rng.choice(self.done[-200:])
        new_id = str(uuid.uuid4())
        if r < 0.38:
            user_id, _ = pick(rng, self.acc)
            usage, qty = rng.choice(
                [("trade", "1"), ("ai_request", "1"), ("backtest_second", str(rng.randint(5, 120)))]
            )
            step = ("usage", {"id": new_id, "user_id": user_id, "usage": usage, "quantity": qty})
        elif r < 0.68 or not self.open_holds:
            _, acct = pick(rng, self.acc)
            amount = money(rng, 1, 20)
            step = (
                "hold",
                {"id": new_id, "debit": acct, "credit": self.acc.usage, "amount": amount},
            )
            self.open_holds.append((new_id, amount))
        elif r < 0.88:
            hold_id, amount = self.open_holds.pop(rng.randrange(len(self.open_holds)))
            post = Decimal(amount) * Decimal(rng.choice(["1", "1", "0.5", "0.25"]))
            step = ("post", {"id": new_id, "pending_id": hold_id, "amount": str(post)})
        elif r < 0.97:
            hold_id, _ = self.open_holds.pop(rng.randrange(len(self.open_holds)))
            step = ("void", {"id": new_id, "pending_id": hold_id, "amount": None})
        else:
            _, acct = pick(rng, self.acc)
            step = (
                "grant",
                {
                    "id": new_id,
                    "debit": self.acc.grants,
                    "credit": acct,
                    "amount": money(rng, 10, 100),
                },
            )
        self.done.append(step)
        if len(self.done) > 1000:
            del self.done[:500]
        return step


SINGLE_SQL = {"usage": CHARGE, "hold": HOLD, "post": POST, "void": VOID, "grant": TRANSFER}


def as_element(action: str, p: dict[str, Any]) -> dict[str, Any]:
    if action == "usage":
        return {
            "action": "usage",
            "id": p["id"],
            "user_id": p["user_id"],
            "usage": p["usage"],
            "quantity": p["quantity"],
        }
    if action == "hold":
        return {
            "action": "hold",
            "id": p["id"],
            "debit_account_id": p["debit"],
            "credit_account_id": p["credit"],
            "amount": p["amount"],
            "kind": "usage",
            "timeout_seconds": 600,
        }
    if action in ("post", "void"):
        return {
            "action": action,
            "id": p["id"],
            "pending_id": p["pending_id"],
            "amount": p["amount"],
        }
    return {
        "action": "transfer",
        "id": p["id"],
        "debit_account_id": p["debit"],
        "credit_account_id": p["credit"],
        "amount": p["amount"],
        "kind": "grant",
    }


async def single_client(url: str, acc: Accounts, seed: int, deadline: float) -> dict[str, int]:
    mix = Mix(seed, acc)
    stats = {"calls": 0, "new": 0, "retries": 0, "errors": 0, "retry_mismatch": 0}
    seen: set[str] = set()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("set role service_role")
        while time.monotonic() < deadline:
            action, params = mix.next()
            retry = params["id"] in seen
            try:
                cur = await conn.execute(SINGLE_SQL[action], params)
                row = await cur.fetchone()
            except psycopg.errors.DeadlockDetected:
                stats["errors"] += 1000  # must never happen: locks are taken in id order
                continue
            except psycopg.Error:
                stats["errors"] += 1
                continue
            stats["calls"] += 1
            if retry:
                stats["retries"] += 1
                if row is None or str(row[0]) != params["id"]:
                    stats["retry_mismatch"] += 1
            else:
                stats["new"] += 1
                seen.add(params["id"])
    return stats


async def batch_client(url: str, acc: Accounts, seed: int, deadline: float) -> dict[str, int]:
    mix = Mix(seed, acc)
    stats = {"calls": 0, "new": 0, "retries": 0, "errors": 0, "retry_mismatch": 0}
    seen: set[str] = set()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("set role service_role")
        while time.monotonic() < deadline:
            steps = [mix.next() for _ in range(BATCH_SIZE)]
            # An id repeated inside one batch is the same retry: it applies once.
            elements = [as_element(a, p) for a, p in steps]
            retries = sum(1 for _, p in steps if p["id"] in seen)
            cur = await conn.execute(BATCH, {"transfers": json.dumps(elements)})
            results = {r[0]: int(r[1]) for r in await cur.fetchall()}
            stats["calls"] += 1
            stats["new"] += results.get("ok", 0)
            stats["retries"] += results.get("exists", 0)
            stats["errors"] += sum(v for k, v in results.items() if k not in ("ok", "exists"))
            stats["retry_mismatch"] += max(0, retries - results.get("exists", 0))
            seen.update(p["id"] for _, p in steps)
    return stats


def run_process(args: tuple[str, str, Accounts, int, float]) -> list[dict[str, int]]:
    mode, url, acc, first_seed, deadline = args
    client = single_client if mode == "single" else batch_client

    async def main() -> list[dict[str, int]]:
        per_process = CLIENTS // PROCESSES
        return list(
            await asyncio.gather(
                *(client(url, acc, first_seed + i, deadline) for i in range(per_process))
            )
        )

    return asyncio.run(main())


def run_phase(
    mode: str, url: str, acc: Accounts, seconds: float, seed: int
) -> tuple[dict[str, int], float]:
    start = time.monotonic()
    deadline = start + seconds
    with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
        parts = pool.map(
            run_process, [(mode, url, acc, seed + 100 * i, deadline) for i in range(PROCESSES)]
        )
    elapsed = time.monotonic() - start
    total: dict[str, int] = {}
    for stats in (s for part in parts for s in part):
        for k, v in stats.items():
            total[k] = total.get(k, 0) + v
    return total, elapsed


def pgbench_tps() -> float:
    name = f"tf_bench_pgbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(support.admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        url = support.admin_url(name)
        subprocess.run([PGBENCH, "-i", "-q", url], check=True, capture_output=True, text=True)
        out = subprocess.run(
            [PGBENCH, "-c", str(CLIENTS), "-j", str(PROCESSES), "-T", str(PGBENCH_SECONDS), url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out) or re.search(
            r"tps = ([0-9.]+)", out
        )
        assert match, out
        return float(match.group(1))
    finally:
        with psycopg.connect(support.admin_url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


async def audit(url: str, expected_new: int) -> tuple[int, list[Any]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("select rule, account_id, detail from credit_audit()")
        problems: list[Any] = list(await cur.fetchall())
        cur = await conn.execute(
            "select count(*) from credit_transfers where not (kind = 'grant' and metadata = '{}' and amount >= 100000)"
        )
        row = await cur.fetchone()
        applied = int(row[0]) if row else 0
        if applied != expected_new:
            problems.append(
                (
                    "transfers_applied_once",
                    None,
                    f"{applied} transfers, {expected_new} accepted calls",
                )
            )
        return len(problems), problems


def measure(cold: int) -> dict[str, Any]:
    """One size on a fresh database: the single-call phase, the batched phase, the audit."""
    with bench_database("credits") as url:
        started = time.monotonic()
        acc = asyncio.run(setup(url, cold))
        setup_s = time.monotonic() - started
        single, single_s = run_phase("single", url, acc, SINGLE_SECONDS, 1)
        batch, batch_s = run_phase("batch", url, acc, BATCH_SECONDS, 10_000)
        violations, problems = asyncio.run(audit(url, single["new"] + batch["new"]))
        violations += single["retry_mismatch"] + batch["retry_mismatch"] + single["errors"] // 1000
    print(f"accounts={HOT + cold} setup {setup_s:.1f}s", flush=True)
    print(f"  single: {single} in {single_s:.1f}s", flush=True)
    print(f"  batch:  {batch} in {batch_s:.1f}s (batches of {BATCH_SIZE})", flush=True)
    for p in problems[:10]:
        print(f"  violation: {p}", flush=True)
    return {
        "single": single["new"] / single_s,
        "batch": batch["new"] / batch_s,
        "violations": violations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="user accounts, comma-separated (a curve; 10 of them are hot)",
    )
    args = parser.parse_args()
    rows: list[tuple[int, dict[str, float]]] = []
    for accounts in parse_sizes(args.sizes):
        r = measure(max(1, accounts - HOT))
        rows.append(
            (
                accounts,
                {
                    "transfers_per_s": r["single"],
                    "batch_transfers_per_s": r["batch"],
                    "violations": r["violations"],
                },
            )
        )
    tps = pgbench_tps()
    print(f"pgbench tpcb-like: tps={tps:.0f} (-c {CLIENTS} -j {PROCESSES} -T {PGBENCH_SECONDS})")
    print_curve("credits", "accounts", rows)
    accounts, last = rows[-1]
    violations = sum(int(f["violations"]) for _, f in rows)
    # Time per transfer at the largest size over the smallest (batched: the path at scale).
    rate = rows[0][1]["batch_transfers_per_s"] / last["batch_transfers_per_s"]
    print(
        f"credits: accounts={accounts} transfers_per_s={last['transfers_per_s']:.0f} "
        f"batch_transfers_per_s={last['batch_transfers_per_s']:.0f} violations={violations} "
        f"ratio={last['transfers_per_s'] / tps:.2f} growth={rate:.2f}"
    )


if __name__ == "__main__":
    main()
