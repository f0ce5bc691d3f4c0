"""Plan shapes the benchmarks depend on, checked on every run with auto_explain: the
dashboard's latest trades walk the user's index in order and stop (bench rls), and a job
claim is never JIT-compiled however large the planner thinks the queue is (bench queue), and
the caller check of every ledger call is not planned again in each transaction (bench credits)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests.support import db as support

AUTO_EXPLAIN = (
    "load 'auto_explain'",
    "set auto_explain.log_min_duration = 0",
    "set auto_explain.log_nested_statements = on",
    "set auto_explain.log_level = notice",
)


async def explained(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Turn on auto_explain for ``conn``; the returned list fills with every plan it runs."""
    plans: list[str] = []
    conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
    for statement in AUTO_EXPLAIN:
        await conn.execute(statement)
    return plans


async def test_latest_trades_walk_the_users_index_in_order_and_stop(
    conn: psycopg.AsyncConnection[Any], users: dict[str, support.User]
) -> None:
    alice, bob = users["alice"], users["bob"]
    for user in (alice, bob):
        await conn.execute(
            """
            with b as (
              insert into bots (user_id, name, exchange, trading_pair, timeframe, strategy,
                                initial_balance, stake_amount)
              values (%(u)s, 'plan', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1) returning id)
            insert into trades (bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time)
            select b.id, %(u)s, 'binance', 'ETH/BTC', 'buy', 1, 0.1, now() - make_interval(mins => n)
              from b, generate_series(1, 2000) n
            """,
            {"u": user.id},
        )
    await conn.execute("analyze trades")
    plans = await explained(conn)
    claims = json.dumps(alice.claims())
    async with conn.transaction():
        await conn.execute(
            "select set_config('role', 'authenticated', true), "
            "set_config('request.jwt.claims', %s, true)",
            (claims,),
        )
        cur = await conn.execute("select user_id, entry_time from latest_trades(50)")
        page = await cur.fetchall()
        cur = await conn.execute(
            "select user_id, entry_time from trades order by entry_time desc limit 50"
        )
        through_table = await cur.fetchall()
    assert page == through_table and {r[0] for r in page} == {alice.id}
    inner = [p for p in plans if "from public.trades t" in p]
    assert inner, plans
    assert "Index Scan using trades_user_entry_idx" in inner[-1], inner[-1]
    assert "Bitmap" not in inner[-1], inner[-1]


async def test_a_claim_is_never_jit_compiled(conn: psycopg.AsyncConnection[Any]) -> None:
    cur = await conn.execute(
        "insert into workers (name, host, pid, version, queues) "
        "values ('plan', 'test', 1, 'test', '{plan}') returning id"
    )
    row = await cur.fetchone()
    assert row is not None
    await conn.execute(
        "select count(*) from enqueue_jobs('fleet.noop', array_fill('{}'::jsonb, array[20]), 'plan')"
    )
    plans = await explained(conn)
    # Every plan would be compiled, were JIT allowed: the thresholds a large queue crosses.
    for knob in ("jit_above_cost", "jit_inline_above_cost", "jit_optimize_above_cost"):
        await conn.execute(f"set {knob} = 0")
    await conn.execute("select count(*) from jobs")
    if not any("JIT:" in p for p in plans):
        pytest.skip("this PostgreSQL has no JIT provider")
    plans.clear()
    cur = await conn.execute(
        "select count(*) from claim_jobs(%s, '{plan}', 10, 30, null)", (row[0],)
    )
    assert await cur.fetchone() == (10,)
    claim = [p for p in plans if "update public.jobs j" in p]
    assert claim, plans
    assert "JIT:" not in claim[0], claim[0]


async def test_the_service_check_is_compiled_once_per_session(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    # Every ledger call checks its caller with private.is_service(). A SQL function with a
    # pinned search_path is never inlined and PostgreSQL 15 plans its body again in every
    # transaction; PL/pgSQL keeps the compiled function for the session (bench credits).
    cur = await conn.execute(
        "select l.lanname from pg_proc p join pg_language l on l.oid = p.prolang"
        " where p.oid = 'private.is_service()'::regprocedure"
    )
    assert await cur.fetchone() == ("plpgsql",)
    plans = await explained(conn)
    await conn.execute("set auto_explain.log_nested_statements = on")
    for _ in range(3):
        async with conn.transaction():
            cur = await conn.execute("select private.is_service()")
            assert await cur.fetchone() == (True,)
    # its expression runs as a cached simple expression: no plan is started for it
    assert not [p for p in plans if "current_setting" in p], plans
