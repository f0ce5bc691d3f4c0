"""Plan shapes the benchmarks depend on, checked on every run with auto_explain: the
dashboard's latest trades walk the user's index in order and stop (bench rls), the
dashboard's reads plan no subquery of the organisation policies, only the index scans they
need (bench rls), and a job
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


def relations(plan: dict[str, Any]) -> set[tuple[str, str]]:
    """(node type, index or relation) of every scan in a JSON plan, InitPlans included."""
    found = set()
    if "Index Name" in plan or "Relation Name" in plan:
        found.add((plan["Node Type"], plan.get("Index Name") or plan["Relation Name"]))
    for child in plan.get("Plans", []):
        found |= relations(child)
    return found


async def test_the_dashboards_reads_plan_only_the_scans_they_need(
    conn: psycopg.AsyncConnection[Any], users: dict[str, support.User]
) -> None:
    # Alice is a member of an organisation whose bot is Bob's: she reads its trades too.
    alice, bob = users["alice"], users["bob"]
    await conn.execute(
        """
        with o as (insert into organisations (name, owner_id) values ('plans', %(b)s) returning id),
             m as (insert into organisation_members (organisation_id, user_id, role)
                   select o.id, u.id, u.role from o,
                          (values (%(b)s::uuid, 'owner'), (%(a)s::uuid, 'member')) u(id, role)),
             bots as (
               insert into bots (user_id, organisation_id, name, exchange, trading_pair, timeframe,
                                 strategy, initial_balance, stake_amount)
               select u, case when u = %(b)s::uuid then (select id from o) end, 'plan', 'binance',
                      'ETH/BTC', '5m', 'rsi', 1, 0.1
                 from unnest(array[%(a)s::uuid, %(b)s::uuid]) u returning id, user_id)
        insert into trades (bot_id, user_id, exchange, trading_pair, side, amount, price, status,
                            exit_price, exit_time, entry_time)
        select b.id, b.user_id, 'binance', 'ETH/BTC', 'buy', 1, 0.1, 'closed', 0.11, now(),
               now() - make_interval(mins => n)
          from bots b, generate_series(1, 2000) n
        """,
        {"a": alice.id, "b": bob.id},
    )
    await conn.execute("analyze trades; analyze bots; analyze organisation_members")
    reads = {
        # latest_trades' own branch and get_user_trading_performance's trades
        "latest": "select t.* from public.trades t where t.user_id = (select auth.uid())"
        " order by t.entry_time desc limit 50",
        "performance": "select count(*), sum(tr.profit) from public.trades tr"
        " where tr.user_id = (select auth.uid()) and tr.status = 'closed'"
        " and tr.entry_time >= now() - make_interval(days => 30)",
        "bots": "select id, name, status from bot_performance_summary order by created_at desc",
    }
    plans = {}
    async with conn.transaction():
        await conn.execute(
            "select set_config('role', 'authenticated', true), "
            "set_config('request.jwt.claims', %s, true)",
            (json.dumps(alice.claims()),),
        )
        for name, query in reads.items():
            cur = await conn.execute(f"explain (format json) {query}")
            plans[name] = relations((await cur.fetchone() or [[{}]])[0][0]["Plan"])
        cur = await conn.execute("select count(distinct user_id) from trades")
        assert await cur.fetchone() == (2,)  # her own trades and the organisation bot's
    # Only the user's rows, through the user's index; the organisations' bots come from
    # one call of private.organisation_bot_ids(), not from subqueries planned every time.
    assert plans["latest"] == {("Index Scan", "trades_user_entry_idx")}, plans
    performance = {r for _, r in plans["performance"]}
    assert "trades_user_entry_idx" in performance <= {"trades", "trades_user_entry_idx"}, plans
    assert all(r.startswith(("bots", "profiles")) for _, r in plans["bots"]), plans


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
