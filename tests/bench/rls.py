"""Benchmark: a user's dashboard queries through RLS versus the service role.

10,000 users, 20,000 bots, and 1,000,000, 3,000,000 and 10,000,000 trades (the same
users' history growing, measured at each size). The dashboard is what an app asks for on
load: the user's bots with performance, their last 50 trades (``latest_trades``, the
dashboard's RPC), and their performance function. Each query runs as PostgREST runs it (role + request.jwt.claims in a
transaction), alternately as the user (RLS decides) and as the service role (with an
explicit user filter), so both see the same machine at the same moment.

Last line, at the largest size: ``rls: trades=<n> p95_ms=<user p95> ratio=<user p95 /
service p95> growth=<p95 at the largest size / p95 at the smallest>``.

    scripts/bench rls [--sizes 1000000,3000000,10000000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

import psycopg
from rich.console import Console

from tests.bench._common import bench_database, growth, parse_sizes, percentile, print_curve

USERS, BOTS_PER_USER = 10_000, 2
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
-- trades number first + 1 .. trades of every bot: the curve grows each bot's history
select b.id, b.user_id, b.exchange, b.trading_pair, 'buy', 1, 0.1, case when t %% 20 = 0 then null else 0.1 + (random() - 0.5) / 100 end,
       round(((random() - 0.48) / 100)::numeric, 8), case when t %% 20 = 0 then 'open' else 'closed' end,
       now() - make_interval(mins => (t * 97 + abs(hashtext(b.id::text)) %% 90) * 5),
       case when t %% 20 = 0 then null else now() - make_interval(mins => (t * 97 + abs(hashtext(b.id::text)) %% 90) * 5 - 30) end
  from public.bots b cross join generate_series(%(first)s + 1, %(trades)s) t
"""

USER_QUERIES = {
    "bots": "select id, name, status, total_trades, win_rate_percentage, profit from bot_performance_summary order by created_at desc",
    "last_trades": "select id, trading_pair, side, price, profit, entry_time from latest_trades(50)",
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


def measure(conn: psycopg.Connection[Any], rng: random.Random) -> dict[str, list[float]]:
    """Every dashboard query for ROUNDS sampled users, as each user and as the service role."""
    people = conn.execute("select id::text, email from profiles").fetchall()
    sample = [people[rng.randrange(len(people))] for _ in range(ROUNDS)]
    service_jwt = json.dumps({"role": "service_role"})
    # Warm up caches and plans for both paths.
    for uid, email in sample[:20]:
        for name in USER_QUERIES:
            timed(conn, "authenticated", claims(uid, email), USER_QUERIES[name], {})
            timed(conn, "service_role", service_jwt, SERVICE_QUERIES[name], {"u": uid})
    ms: dict[str, list[float]] = {}
    for i, (uid, email) in enumerate(sample):
        for name in USER_QUERIES:
            runs = [
                (f"user {name}", "authenticated", claims(uid, email), USER_QUERIES[name], {}),
                (f"service {name}", "service_role", service_jwt, SERVICE_QUERIES[name], {"u": uid}),
            ]
            # The first to read a user's rows finds them colder than the second: take turns.
            for key, role, jwt, query, params in runs[:: -1 if i % 2 else 1]:
                ms.setdefault(key, []).append(timed(conn, role, jwt, query, params))
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", default="1000000,3000000,10000000", help="trades, comma-separated (a curve)"
    )
    args = parser.parse_args()
    bots = USERS * BOTS_PER_USER
    sizes = parse_sizes(args.sizes)
    console = Console(stderr=True)
    rng = random.Random(7)
    rows: list[tuple[int, dict[str, float]]] = []
    with bench_database("rls") as url, psycopg.connect(url, autocommit=True) as conn:
        first = 0
        for size in sizes:
            per_bot = max(1, size // bots)
            started = time.perf_counter()
            for i, statement in enumerate(GENERATE.split(";\n\n")):
                if first and i < 2:
                    continue  # users and bots exist; only their history grows
                conn.execute(
                    statement,
                    {"users": USERS, "bots": BOTS_PER_USER, "first": first, "trades": per_bot},
                )
            first = per_bot
            conn.execute("vacuum analyze")
            counts = conn.execute(
                "select (select count(*) from profiles), (select count(*) from bots), (select count(*) from trades)"
            ).fetchone()
            assert counts is not None
            console.print(
                f"{counts[0]:,} users, {counts[1]:,} bots, {counts[2]:,} trades "
                f"(generated in {time.perf_counter() - started:.1f} s)"
            )
            ms = measure(conn, rng)
            for name in USER_QUERIES:
                u, sv = ms[f"user {name}"], ms[f"service {name}"]
                print(
                    f"trades={counts[2]} {name:12s} user p50={percentile(u, 50):.2f} ms "
                    f"p95={percentile(u, 95):.2f} ms | service p50={percentile(sv, 50):.2f} ms "
                    f"p95={percentile(sv, 95):.2f} ms",
                    flush=True,
                )
            user = [v for k, vs in ms.items() if k.startswith("user ") for v in vs]
            service = [v for k, vs in ms.items() if k.startswith("service ") for v in vs]
            u95, s95 = percentile(user, 95), percentile(service, 95)
            rows.append(
                (
                    int(counts[2]),
                    {
                        "p50_ms": percentile(user, 50),
                        "p95_ms": u95,
                        "service_p95_ms": s95,
                        "ratio": u95 / s95,
                    },
                )
            )
    print_curve("rls", "trades", rows)
    trades, last = rows[-1]
    # Latencies are per request already: growth is the largest size's p95 over the smallest's.
    rate = growth([(1, rows[0][1]["p95_ms"]), (1, last["p95_ms"])])
    print(
        f"rls: trades={trades} p95_ms={last['p95_ms']:.2f} ratio={last['ratio']:.2f} "
        f"growth={rate:.2f}"
    )


if __name__ == "__main__":
    main()
