"""Benchmark: the operators' platform overview at scale.

10,000 users, 20,000 bots (a third running, over five exchanges), 1,000,000 trades over the
last 90 days and 20,000 paid invoices. ``admin_platform_overview()`` runs as PostgREST runs
it for an admin (the admin database role and the admin's JWT claims in a transaction),
alternately with the reference: a plain ``select count(*) from trades`` on the same
connection, so both see the same machine at the same moment.

Last line: ``overview: p95_ms=<overview p95> ratio=<overview p95 / count(*) p95>``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
from rich.console import Console

from tests.bench._common import bench_database, percentile

USERS, BOTS_PER_USER, TRADES_PER_BOT, INVOICES = 10_000, 2, 50, 20_000
ROUNDS = 60

GENERATE = """
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at,
                        last_sign_in_at)
select gen_random_uuid(), 'authenticated', 'authenticated', 'user' || g || '@bench.local',
       '{"provider": "email", "role": "user"}', jsonb_build_object('full_name', 'User ' || g),
       now() - make_interval(hours => g %% 2000), now(), now() - make_interval(hours => g %% 500)
  from generate_series(1, %(users)s) g;

insert into auth.users (id, aud, role, email, raw_app_meta_data, created_at, updated_at)
values ('00000000-0000-4000-8000-00000000ad01', 'authenticated', 'authenticated', 'admin@bench.local',
        '{"provider": "email", "role": "admin"}', now(), now());

insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, status, initial_balance, stake_amount)
select p.id, 'bot ' || b, (array['binance', 'bybit', 'kraken', 'okx', 'kucoin'])[1 + abs(hashtext(p.email || b)) %% 5],
       (array['ETH/BTC', 'LTC/BTC', 'BTC/USDT', 'ETH/USDT'])[1 + (b + abs(hashtext(p.email))) %% 4],
       '5m', 'sma_cross', (array['running', 'paused', 'stopped'])[1 + abs(hashtext(p.email || b)) %% 3], 1, 0.1
  from public.profiles p cross join generate_series(1, %(bots)s) b;

insert into public.trades (bot_id, user_id, exchange, trading_pair, side, amount, price, exit_price, status,
                           entry_time, exit_time)
select b.id, b.user_id, b.exchange, b.trading_pair, 'buy', 1 + t %% 3, 0.05 + (t %% 7) / 100.0, 0.06, 'closed',
       x.entry_time, x.entry_time + interval '30 minutes'
  from public.bots b cross join generate_series(1, %(trades)s) t
 cross join lateral (select now() - make_interval(mins => 30 + abs(hashtext(b.id::text || t)) %% (90 * 24 * 60))
                       as entry_time) x;

insert into public.invoices (user_id, provider, amount, currency, status, paid_at)
select p.id, (array['stripe', 'paystack', 'tripay'])[1 + g %% 3], (array[29, 199])[1 + g %% 2], 'USD', 'paid',
       now() - make_interval(mins => g * 61 %% (60 * 24 * 60))
  from generate_series(1, %(invoices)s) g
  join (select id, row_number() over () as n from public.profiles) p on p.n = 1 + g %% %(users)s
"""

ADMIN_CLAIMS = json.dumps(
    {
        "sub": "00000000-0000-4000-8000-00000000ad01",
        "role": "tradefleet_admin",
        "aud": "authenticated",
        "email": "admin@bench.local",
        "app_metadata": {"provider": "email", "role": "admin"},
        "aal": "aal1",
    }
)
OVERVIEW = "select admin_platform_overview()"
REFERENCE = "select count(*) from trades"


def timed(conn: psycopg.Connection[Any], role: str, jwt: str, query: str) -> float:
    start = time.perf_counter()
    with conn.transaction():
        conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
            (role, jwt),
        )
        conn.execute(query).fetchall()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    console = Console(stderr=True)
    with bench_database("overview") as url, psycopg.connect(url, autocommit=True) as conn:
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
        counts = conn.execute(
            "select (select count(*) from profiles), (select count(*) from bots),"
            " (select count(*) from trades), (select count(*) from invoices)"
        ).fetchone()
        assert counts is not None
        console.print(
            f"generated {counts[0]:,} users, {counts[1]:,} bots, {counts[2]:,} trades, "
            f"{counts[3]:,} invoices in {time.perf_counter() - started:.1f} s"
        )
        service_jwt = json.dumps({"role": "service_role"})
        for _ in range(3):  # warm caches and plans for both
            timed(conn, "tradefleet_admin", ADMIN_CLAIMS, OVERVIEW)
            timed(conn, "service_role", service_jwt, REFERENCE)
        overview_ms: list[float] = []
        reference_ms: list[float] = []
        for _ in range(ROUNDS):
            overview_ms.append(timed(conn, "tradefleet_admin", ADMIN_CLAIMS, OVERVIEW))
            reference_ms.append(timed(conn, "service_role", service_jwt, REFERENCE))
        with conn.transaction():
            conn.execute(
                "select set_config('role', 'tradefleet_admin', true),"
                " set_config('request.jwt.claims', %s, true)",
                (ADMIN_CLAIMS,),
            )
            row = conn.execute(OVERVIEW).fetchone()
        assert row is not None
        overview = row[0]
    days = overview["trades_per_day"]
    console.print(
        f"overview: {overview['users']['total']:,} users, {sum(d['trades'] for d in days):,} trades "
        f"over {len(days)} days, bots running {overview['bots_running']}"
    )
    o95, r95 = percentile(overview_ms, 95), percentile(reference_ms, 95)
    print(f"admin_platform_overview() p50={percentile(overview_ms, 50):.2f} ms p95={o95:.2f} ms")
    print(f"reference count(*) trades p50={percentile(reference_ms, 50):.2f} ms p95={r95:.2f} ms")
    print(f"overview: p95_ms={o95:.2f} ratio={o95 / r95:.2f}")


if __name__ == "__main__":
    main()
