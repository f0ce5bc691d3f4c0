"""Benchmark: a user's dashboard queries through RLS versus the service role.

10,000 users, 20,000 bots, 1,000,000 trades. The dashboard is what an app asks for on
load: the user's bots with performance, their last 50 trades, and their performance
function. Each query runs as PostgREST runs it (role + request.jwt.claims in a
transaction), alternately as the user (RLS decides) and as the service role (with an
explicit user filter), so both see the same machine at the same moment.

Last line: ``rls: p95_ms=<user p95> ratio=<user p95 / service p95>``.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import psycopg
from rich.console import Console

from tests.bench._common import bench_database, percentile

USERS, BOTS_PER_USER, TRADES_PER_BOT = 10_000, 2, 50
ROUNDS = 400

GENERATE = """
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
select gen_random_uuid(), 'authenticated', 'authenticated', 'user' || g || '@bench.local',
       '{"provider": "email", "role": "user"}', jsonb_build_object('full_name', 'User ' || g), now(), now()
  from generate_series(1, %(users)s) g;

insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, status, initial_balance, stake_amount)
select p.id, 'bot ' || b, 'binance', (array['ETH/BTC', 'LTC/BTC', 'XRP/BTC', 'ADA/BTC'])[1 + (b + abs(hashtext(p.email))) %% 4],
       '5m', 'sma_cross', (array['running', 'paused', 'stopped'])[1 + b %% 3], 1, 0.1
  from public.profiles p cross join generate_series(1, %(bots)s) b;

insert into public.trades (bot_id, user_id, exchange, trading_pair, side, amount, price, exit_price, profit, status,
                           entry_time, exit_time)
select b.id, b.user_id, b.exchange, b.trading_pair, 'buy', 1, 0.1, case when t %% 20 = 0 then null else 0.1 + (random() - 0.5) / 100 end,
       round(((random() - 0.48) / 100)::numeric, 8), case when t %% 20 = 0 then 'open' else 'closed' end,
       now() - make_interval(mins => (t * 97 + abs(hashtext(b.id::text)) %% 90) * 5),
       case when t %% 20 = 0 then null else now() - make_interval(mins => (t * 97 + abs(hashtext(b.id::text)) %% 90) * 5 - 30) end
  from public.bots b cross join generate_series(1, %(trades)s) t
"""

USER_QUERIES = {
    "bots": "select id, name, status, total_trades, win_rate_percentage, profit from bot_performance_summary order by created_at desc",
    "last_trades": "select id, trading_pair, side, price, profit, entry_time from trades order by entry_time desc limit 50",
    "performance": "select * from get_user_trading_performance(30)",
}
SERVICE_QUERIES = {
    "bots": "select id, name, status, total_trades, win_rate_percentage, profit from bot_performance_summary where user_id = %(u)s order by created_at desc",
    "last_trades": "select id, trading_pair, side, price, profit, entry_time from trades where user_id = %(u)s order by entry_time desc limit 50",
    "performance": "select * from get_user_trading_performance(30, %(u)s)",
}


def claims(user_id: str, email: str) -> str:
    return json.dumps(
        {
            "sub": user_id,
            "role": "authenticated",
            "aud": "authenticated",
            "email": email,
            "app_metadata": {"provider": "email", "role": "user"},
            "aal": "aal1",
        }
    )


def timed(
    conn: psycopg.Connection[Any], role: str, jwt: str, query: str, params: dict[str, Any]
) -> float:
    start = time.perf_counter()
    with conn.transaction():
        conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
            (role, jwt),
        )
        conn.execute(query, params).fetchall()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    console = Console(stderr=True)
    with bench_database("rls") as url, psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for statement in GENERATE.split(";\n\n"):
            conn.execute(
                statement, {"users": USERS, "bots": BOTS_PER_USER, "trades": TRADES_PER_BOT}
            )
        conn.execute("vacuum analyze")
        counts = conn.execute(
            "select (select count(*) from profiles), (select count(*) from bots), (select count(*) from trades)"
        ).fetchone()
        assert counts is not None
        console.print(
            f"generated {counts[0]:,} users, {counts[1]:,} bots, {counts[2]:,} trades "
            f"in {time.perf_counter() - started:.1f} s"
        )
        people = conn.execute("select id::text, email from profiles").fetchall()
        rng = random.Random(7)
        sample = [people[rng.randrange(len(people))] for _ in range(ROUNDS)]
        service_jwt = json.dumps({"role": "service_role"})
        # Warm up caches and plans for both paths.
        for uid, email in sample[:20]:
            for name in USER_QUERIES:
                timed(conn, "authenticated", claims(uid, email), USER_QUERIES[name], {})
                timed(conn, "service_role", service_jwt, SERVICE_QUERIES[name], {"u": uid})
        user_ms: dict[str, list[float]] = {n: [] for n in USER_QUERIES}
        service_ms: dict[str, list[float]] = {n: [] for n in USER_QUERIES}
        for uid, email in sample:
            for name in USER_QUERIES:
                user_ms[name].append(
                    timed(conn, "authenticated", claims(uid, email), USER_QUERIES[name], {})
                )
                service_ms[name].append(
                    timed(conn, "service_role", service_jwt, SERVICE_QUERIES[name], {"u": uid})
                )
    for name in USER_QUERIES:
        print(
            f"{name:12s} user p50={percentile(user_ms[name], 50):.2f} ms p95={percentile(user_ms[name], 95):.2f} ms"
            f" | service p50={percentile(service_ms[name], 50):.2f} ms p95={percentile(service_ms[name], 95):.2f} ms"
        )
    all_user = [v for vs in user_ms.values() for v in vs]
    all_service = [v for vs in service_ms.values() for v in vs]
    u95, s95 = percentile(all_user, 95), percentile(all_service, 95)
    print(
        f"all queries  user p50={percentile(all_user, 50):.2f} ms p95={u95:.2f} ms"
        f" | service p50={percentile(all_service, 50):.2f} ms p95={s95:.2f} ms"
    )
    print(f"rls: p95_ms={u95:.2f} ratio={u95 / s95:.2f}")


if __name__ == "__main__":
    main()
