"""Benchmark: one signal to N auto-executing subscribers' paper bots.

Measures the fleet's path from the signal row (a provider's PostgREST insert, which
queues signals.fanout) to every subscriber's order persisted (the fan-out transaction's
commit), on a fresh database of its own. The copies' credit charges that follow are
timed separately. The reference, measured after each size on the same database: the rows
the fan-out and its charges inserted (orders, trades, executions, notifications, ledger
transfers), inserted again in one transaction into tables with the same columns, defaults,
checks and indexes but no triggers, foreign keys or policies: what storing the outcome
costs without the rules that decide it. Last line:
``fanout: subscribers=<n> seconds=<s> orders_s=<s> ratio=<seconds / reference> growth=<g>``.

    scripts/bench fanout [--subscribers 10000]
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
import hashlib
import json
import time
import uuid
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from tests.bench._common import bench_database, growth, parse_sizes, print_curve
from worker.signals.jobs import CHARGE, CHARGE_CHUNK, FAN_OUT

SETUP = [
    # Subscribers sign up (profiles, credit accounts and Free plans come from the trigger).
    """insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
       select md5('bench-user:' || n)::uuid, 'authenticated', 'authenticated', 'sub' || n || '@bench.test',
              jsonb_build_object('provider', 'email', 'role', case when n = 0 then 'provider' else 'user' end),
              '{}', now(), now()
         from generate_series(%(lo)s::int, %(hi)s::int) n""",
    """insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
       values (md5('bench-strategy')::uuid, md5('bench-user:0')::uuid, 'Bench Momentum', 'marketplace', true, true, 10)""",
    # Every subscriber's paper bot, running under some worker's lease.
    """insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance,
                                current_balance, stake_amount, status)
       select md5('bench-bot:' || n)::uuid, md5('bench-user:' || n)::uuid, 'copy', 'binance', 'BTC/USDT', '1h',
              'rules', 1000, 1000, 100, 'running'
         from generate_series(%(lo)s::int, %(hi)s::int) n""",
    """insert into public.bot_leases (bot_id, epoch, expires_at)
       select md5('bench-bot:' || n)::uuid, 1, now() + interval '1 hour' from generate_series(%(lo)s::int, %(hi)s::int) n""",
    """insert into public.strategy_subscriptions (strategy_id, subscriber_id, status, auto_execute, bot_id, sizing,
                                                  price, current_period_end)
       select md5('bench-strategy')::uuid, md5('bench-user:' || n)::uuid, 'active', true, md5('bench-bot:' || n)::uuid,
              '{"mode": "fixed_quote", "amount": 250}', 10, now() + interval '1 month'
         from generate_series(%(lo)s::int, %(hi)s::int) n""",
]

GRANT_CHUNK = """
select count(*) from public.credit_create_transfers((
  select jsonb_agg(jsonb_build_object('id', md5('bench-grant:' || n)::uuid,
                                      'debit_account_id', (select id from public.credit_accounts where code = 'system:grants'),
                                      'credit_account_id', a.id, 'amount', 100, 'kind', 'grant'))
    from generate_series(%(lo)s::int, %(hi)s::int) n
    join public.credit_accounts a on a.user_id = md5('bench-user:' || n)::uuid and a.kind = 'user'))
"""

PUBLISH = """
insert into public.signals (strategy_id, pair, side, entry_price, stop_loss, take_profit)
values (md5('bench-strategy')::uuid, 'BTC/USDT', 'long', 100, 90, 120) returning id
"""


async def setup(url: str, n: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        # In chunks: each new bot takes its owner's advisory lock (the plan-limit check),
        # and one statement for 100,000 bots would exceed max_locks_per_transaction.
        for statement in SETUP:
            if "%(lo)s" not in statement:
                await conn.execute(statement)
                continue
            first = 0 if statement.startswith("insert into auth.users") else 1  # 0: the provider
            for lo in range(first, n + 1, 10_000):
                await conn.execute(statement, {"lo": lo, "hi": min(lo + 9_999, n)})
        # Grants in chunks: every one credits from the one system:grants account.
        for lo in range(1, n + 1, 1000):
            await conn.execute(GRANT_CHUNK, {"lo": lo, "hi": min(lo + 999, n)})
        await conn.execute("vacuum analyze")


async def publish(url: str) -> tuple[uuid.UUID, float]:
    """The provider publishes through PostgREST (role authenticated + JWT claims)."""
    claims = {
        "sub": str(uuid.UUID(bytes=bytes.fromhex(_md5("bench-user:0")))),
        "role": "authenticated",
        "app_metadata": {"role": "provider"},
    }
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute(
            "select set_config('role', 'authenticated', true), "
            "set_config('request.jwt.claims', %s, true)",
            (json.dumps(claims),),
        )
        cur = await conn.execute(PUBLISH)
        row = await cur.fetchone()
        assert row is not None
        await conn.commit()
        return uuid.UUID(str(row[0])), time.perf_counter()


REFERENCE_TABLES = ("orders", "trades", "signal_executions", "notifications", "credit_transfers")
COPY_COLUMNS = """
select string_agg(quote_ident(column_name), ', ' order by ordinal_position)
  from information_schema.columns
 where table_schema = 'public' and table_name = %s and is_generated = 'NEVER'
"""


async def reference(url: str, since: Any) -> tuple[float, int]:
    """Seconds to insert again, in one transaction, every row the run inserted into
    :data:`REFERENCE_TABLES` (``created_at >= since``) into plain copies of those tables;
    and how many rows that is."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        statements = []
        for table in REFERENCE_TABLES:
            copy = f"bench_reference_{table}"
            await conn.execute(f"drop table if exists {copy}")
            await conn.execute(f"create table {copy} (like public.{table} including all)")
            row = await (await conn.execute(COPY_COLUMNS, (table,))).fetchone()
            assert row is not None
            statements.append(
                f"insert into {copy} ({row[0]}) overriding system value "
                f"select {row[0]} from public.{table} where created_at >= %(since)s"
            )
        await conn.execute("checkpoint")
        rows = 0
        t = time.perf_counter()
        async with conn.transaction():
            for statement in statements:
                rows += (await conn.execute(statement, {"since": since})).rowcount
        elapsed = time.perf_counter() - t
        for table in REFERENCE_TABLES:
            await conn.execute(f"drop table bench_reference_{table}")
    return elapsed, rows


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


async def run(url: str, n: int) -> dict[str, Any]:
    await setup(url, n)
    async with AsyncConnectionPool(
        url,
        min_size=2,
        max_size=4,
        open=False,
        kwargs={"autocommit": True, "options": "-c role=service_role"},
    ) as pool:
        await pool.open(wait=True)
        async with pool.connection() as conn:
            since = (await (await conn.execute("select now()")).fetchone() or [None])[0]
        signal_id, t0 = await publish(url)
        # The fleet: claim the queued job, run the fan-out (one transaction: orders persisted at
        # its commit), then charge the copies' credits chunk by chunk.
        async with pool.connection() as conn:
            job = await (
                await conn.execute(
                    "select payload from public.jobs where kind = 'signals.fanout' and status = 'queued'"
                )
            ).fetchone()
            assert job is not None and job[0]["signal_id"] == str(signal_id)
            async with conn.transaction():
                fan = await (
                    await conn.execute(FAN_OUT, {"signal_id": signal_id, "phase": "open"})
                ).fetchone()
            t_orders = time.perf_counter()
            charged = 0
            while True:
                async with conn.transaction():
                    row = await (
                        await conn.execute(CHARGE, {"signal_id": signal_id, "chunk": CHARGE_CHUNK})
                    ).fetchone()
                assert row is not None
                if row[0] + row[1] == 0:
                    break
                charged += row[0]
            t_charged = time.perf_counter()
            orders = (
                await (
                    await conn.execute(
                        "select count(*) from public.orders where reason = 'copy of signal ' || %s",
                        (str(signal_id),),
                    )
                ).fetchone()
                or [0]
            )[0]
    assert fan is not None
    reference_s, reference_rows = await reference(url, since)
    return {
        "reference_s": reference_s,
        "reference_rows": reference_rows,
        "executed": fan[0],
        "skipped": fan[1],
        "notified": fan[2],
        "orders": orders,
        "charged": charged,
        "orders_s": t_orders - t0,
        "charged_s": t_charged - t0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", default="10000,100000", help="subscriber counts, comma-separated (a curve)"
    )
    args = parser.parse_args()
    rows: list[tuple[int, dict[str, float]]] = []
    for n in parse_sizes(args.sizes):
        with bench_database("fanout") as url:
            result = asyncio.run(run(url, n))
        assert result["orders"] == n, f"only {result['orders']} of {n} orders persisted"
        assert result["charged"] == n, f"only {result['charged']} of {n} copies charged"
        rows.append(
            (
                n,
                {
                    "orders_s": result["orders_s"],
                    "seconds": result["charged_s"],
                    "reference_s": result["reference_s"],
                },
            )
        )
        print(
            f"fanout detail: subscribers={n} executed={result['executed']} skipped={result['skipped']} "
            f"notified={result['notified']} charged={result['charged']} "
            f"reference_rows={result['reference_rows']} reference_s={result['reference_s']:.2f}",
            flush=True,
        )
    print_curve("fanout", "subscribers", rows)
    n, last = rows[-1]
    rate = growth([(size, r["seconds"]) for size, r in rows]) if len(rows) > 1 else 1.0
    print(
        f"fanout: subscribers={n} seconds={last['seconds']:.2f} orders_s={last['orders_s']:.2f} "
        f"ratio={last['seconds'] / last['reference_s']:.2f} growth={rate:.2f}"
    )


if __name__ == "__main__":
    main()
