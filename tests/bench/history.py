"""Benchmark: partitioned bot_logs against the same rows in one plain table.

1,000 users with 2 bots each and LOGS log lines over the last 49 days, written twice: into
``public.bot_logs`` (weekly partitions) and into ``public.bot_logs_flat``, a plain table with
the same columns, indexes, foreign keys, policies and grants. Side by side, alternately, on the same
machine at the same moment:

- the dashboard's reads as the user through RLS (a bot's last 50 log lines, the user's last
  50), p50/p95;
- inserts in batches of 1,000 (what a fleet step writes), rows per second;
- retention beyond a 30-day keep: batch deletes of 1,000 rows (the plain
  table, as ``prune_history`` does) against ``drop_history_partitions``.

Last line: ``history: p95_ms=<partitioned> flat_p95_ms=<plain> ratio=<p95 / plain p95>
insert_ratio=<partitioned rows/s / plain rows/s> drop_s=<…> delete_s=<…> retention_ratio=<delete / drop>``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import psycopg

from tests.bench._common import bench_database, percentile

USERS, BOTS_PER_USER = 1000, 2
ROUNDS, INSERT_BATCHES, BATCH = 300, 20, 1000
DAYS = 49  # the logs span seven weeks; a 30-day keep leaves five (and drops at least two)

SETUP = """
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
select gen_random_uuid(), 'authenticated', 'authenticated', 'user' || g || '@bench.local',
       '{"provider": "email", "role": "user"}', '{}', now(), now()
  from generate_series(1, %(users)s) g;
insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, status, initial_balance, stake_amount)
select p.id, 'bot ' || b, 'binance', 'ETH/BTC', '5m', 'sma_cross', 'paused', 1, 0.1
  from public.profiles p cross join generate_series(1, %(bots)s) b;
select private.create_history_partition('bot_logs', now() - d * interval '1 day') from generate_series(0, %(days)s) d;
create table public.bot_logs_flat (like public.bot_logs including all);
alter table public.bot_logs_flat enable row level security;
revoke all on public.bot_logs_flat from anon, authenticated;
grant select on public.bot_logs_flat to authenticated;
create temporary table bench_bots as select id, user_id, row_number() over (order by id) as n from public.bots;
"""
FILL = """
insert into public.{table} (user_id, bot_id, log_level, message, context, created_at)
select b.user_id, b.id, 'info', 'step ' || g, jsonb_build_object('n', g),
       now() - %(days)s * interval '1 day' + (g::float8 / %(logs)s) * %(days)s * interval '1 day'
  from generate_series(1, %(logs)s) g
  join bench_bots b on b.n = 1 + g %% (select count(*) from bench_bots)
"""
COPY_POLICIES = """
do $$
declare
  p record;
begin
  for p in select policyname, roles, qual from pg_policies where schemaname = 'public' and tablename = 'bot_logs' loop
    execute format('create policy %I on public.bot_logs_flat for select to %s using (%s)', p.policyname,
                   array_to_string(p.roles, ', '), replace(p.qual, 'bot_logs.', 'bot_logs_flat.'));
  end loop;
  for p in select conname, pg_get_constraintdef(oid) as def from pg_constraint
            where conrelid = 'public.bot_logs'::regclass and contype = 'f' loop
    execute format('alter table public.bot_logs_flat add constraint %I %s', p.conname, p.def);
  end loop;
end;
$$;
"""
QUERY_NAMES = ["a bot's last 50 lines", "the user's last 50 lines"]
QUERIES = [
    "select id, log_level, message, created_at from public.{table} where bot_id = %(bot)s order by created_at desc limit 50",
    "select id, log_level, message, created_at from public.{table} order by created_at desc limit 50",
]
INSERT = """
insert into public.{table} (user_id, bot_id, log_level, message, context)
select b.user_id, b.id, 'info', 'live', '{{}}' from bench_bots b where b.n <= %(batch)s
"""
DELETE_BATCH = """
with doomed as (
  select l.id, l.created_at from public.bot_logs_flat l
   where l.created_at < now() - interval '30 days' order by l.created_at limit %(batch)s for update skip locked)
delete from public.bot_logs_flat l using doomed where l.id = doomed.id and l.created_at = doomed.created_at
"""


def as_user(conn: psycopg.Connection[Any], user_id: str, query: str, args: dict[str, Any]) -> float:
    claims = json.dumps({"sub": user_id, "role": "authenticated", "aud": "authenticated"})
    start = time.perf_counter()
    with conn.transaction():
        conn.execute(
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
            (claims,),
        )
        conn.execute(query, args).fetchall()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logs", type=int, default=1_000_000)
    args = parser.parse_args()
    with bench_database("history") as url, psycopg.connect(url, autocommit=True) as conn:
        for statement in filter(str.strip, SETUP.split(";\n")):
            conn.execute(statement, {"users": USERS, "bots": BOTS_PER_USER, "days": DAYS})  # type: ignore[arg-type]
        conn.execute(COPY_POLICIES)
        for table in ("bot_logs", "bot_logs_flat"):
            t0 = time.perf_counter()
            conn.execute(FILL.format(table=table), {"logs": args.logs, "days": DAYS})  # type: ignore[arg-type]
            print(f"filled {table}: {args.logs} rows in {time.perf_counter() - t0:.1f} s")
        conn.execute("analyze public.bot_logs; analyze public.bot_logs_flat")
        bots = conn.execute("select id::text, user_id::text from bench_bots order by n").fetchall()

        times: dict[str, list[float]] = {"bot_logs": [], "bot_logs_flat": []}
        each: dict[tuple[str, int], list[float]] = {}
        for i in range(ROUNDS):
            bot, user = bots[(i * 7919) % len(bots)]
            for table in ("bot_logs", "bot_logs_flat") if i % 2 else ("bot_logs_flat", "bot_logs"):
                for q, query in enumerate(QUERIES):
                    ms = as_user(conn, user, query.format(table=table), {"bot": bot})
                    times[table].append(ms)
                    each.setdefault((table, q), []).append(ms)
        p95 = {t: percentile(v, 95) for t, v in times.items()}
        for (t, q), v in sorted(each.items()):
            print(
                f"dashboard read {QUERY_NAMES[q]} on {t}:"
                f" p50 {percentile(v, 50):.2f} ms, p95 {percentile(v, 95):.2f} ms"
            )

        spent = {"bot_logs": 0.0, "bot_logs_flat": 0.0}
        for i in range(INSERT_BATCHES):
            for table in ("bot_logs", "bot_logs_flat") if i % 2 else ("bot_logs_flat", "bot_logs"):
                t0 = time.perf_counter()
                conn.execute(INSERT.format(table=table), {"batch": BATCH})  # type: ignore[arg-type]
                spent[table] += time.perf_counter() - t0
        rate = {t: INSERT_BATCHES * BATCH / s for t, s in spent.items()}
        for t in rate:
            print(f"inserts {t}: {rate[t]:,.0f} rows/s")

        old = conn.execute(
            "select count(*) from public.bot_logs_flat where created_at < now() - interval '30 days'"
        ).fetchone()
        t0 = time.perf_counter()
        while conn.execute(DELETE_BATCH, {"batch": BATCH}).rowcount == BATCH:  # type: ignore[arg-type]
            pass
        delete_s = time.perf_counter() - t0
        count = "select count(*) from public.bot_logs"
        before = (conn.execute(count).fetchone() or (0,))[0]
        t0 = time.perf_counter()
        dropped = conn.execute(
            "select public.drop_history_partitions('bot_logs', interval '30 days')"
        ).fetchone()
        drop_s = time.perf_counter() - t0
        gone = before - (conn.execute(count).fetchone() or (0,))[0]
        print(
            f"retention beyond 30 days: plain table {old[0] if old else 0} rows by batch deletes in"
            f" {delete_s:.2f} s; partitioned {gone} rows, {dropped[0] if dropped else 0} partitions"
            f" detached and dropped in {drop_s:.3f} s"
        )
    print(
        f"history: p95_ms={p95['bot_logs']:.2f} flat_p95_ms={p95['bot_logs_flat']:.2f}"
        f" ratio={p95['bot_logs'] / p95['bot_logs_flat']:.2f}"
        f" insert_ratio={rate['bot_logs'] / rate['bot_logs_flat']:.2f}"
        f" drop_s={drop_s:.3f} delete_s={delete_s:.2f} retention_ratio={delete_s / drop_s:.0f}"
    )


if __name__ == "__main__":
    main()
