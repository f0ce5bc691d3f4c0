"""Benchmark: retention of partitioned notifications (folding old weeks) against batch deletes
of the same rows in a plain table.

1,000 users and NOTES notifications over the last 126 days (a third unread, the rest read a
day after they were made), written into ``public.notifications`` (weekly partitions, made
from the oldest week as the conversion makes them) and copied into
``public.notifications_flat``, a plain table with the same indexes and the owner's policy. Retention beyond the 90-day keep: ``prune_history``'s
batch deletes of 1,000 rows on the plain table against ``drop_history_partitions`` (the old
weeks folded into ``_kept``, their unread rows copied) followed by ``prune_history`` on
``_kept``; then a user's update of one notification by id through RLS (the plain table
with the same policy), p50, alternately.

Last line: ``inbox: rows=<old rows gone> fold_s=<…> delete_s=<…> retention_ratio=<delete / fold>
kept=<rows in _kept> update_p50_ms=<…> flat_update_p50_ms=<…> update_ratio=<partitioned / plain>``.
"""

from __future__ import annotations

import argparse
import time

import psycopg

from tests.bench._common import bench_database, percentile

USERS, BATCH, DAYS, UPDATES = 1000, 1000, 126, 200

SETUP = """
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
select gen_random_uuid(), 'authenticated', 'authenticated', 'user' || g || '@bench.local',
       '{"provider": "email", "role": "user"}', '{}', now(), now()
  from generate_series(1, %(users)s) g;
alter table public.notifications detach partition partitions.notifications_kept;
select private.create_history_partition('notifications', now() - d * interval '1 day') from generate_series(0, %(days)s) d;
create table public.notifications_flat (like public.notifications including all);
alter table public.notifications_flat enable row level security;
create policy own on public.notifications_flat for all to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
grant select, update on public.notifications_flat to authenticated;
create temporary table bench_users as select id, row_number() over (order by id) as n from public.profiles
"""
FILL = """
insert into public.notifications (user_id, kind, title, created_at, read_at)
select u.id, 'system', 'note ' || g, c.at, case when g %% 3 = 0 then null else c.at + interval '1 day' end
  from generate_series(1, %(notes)s) g
  join bench_users u on u.n = 1 + g %% %(users)s
  cross join lateral (select now() - %(days)s * interval '1 day'
                             + (g::float8 / %(notes)s) * %(days)s * interval '1 day' as at) c
"""
DELETE_BATCH = """
with doomed as (
  select n.id from public.notifications_flat n where n.read_at < now() - interval '90 days'
   order by n.read_at limit %(batch)s
)
delete from public.notifications_flat n using doomed where n.id = doomed.id
"""
ATTACH = """
do $$
begin
  execute format('alter table public.notifications attach partition partitions.notifications_kept'
                 ' for values from (minvalue) to (%L)',
                 (select min(r.lo) from pg_inherits i, private.history_partition_range(i.inhrelid::regclass) r
                   where i.inhparent = 'public.notifications'::regclass));
end;
$$
"""
UPDATE = "update public.{table} set read_at = now() where id = %(id)s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notes", type=int, default=500_000)
    args = parser.parse_args()
    params = {"users": USERS, "days": DAYS, "notes": args.notes}
    with bench_database("inbox") as url, psycopg.connect(url, autocommit=True) as conn:
        for statement in filter(str.strip, SETUP.split(";\n")):
            conn.execute(statement, params)  # type: ignore[arg-type]
            if "create_history_partition" in statement:
                conn.execute(ATTACH)
        t0 = time.perf_counter()
        conn.execute(FILL, params)  # type: ignore[arg-type]
        print(f"filled notifications: {args.notes} rows in {time.perf_counter() - t0:.1f} s")
        conn.execute("insert into public.notifications_flat select * from public.notifications")
        conn.execute("analyze public.notifications; analyze public.notifications_flat")

        count = "select count(*) from {}"
        before = (conn.execute(count.format("public.notifications_flat")).fetchone() or (0,))[0]
        t0 = time.perf_counter()
        while conn.execute(DELETE_BATCH, {"batch": BATCH}).rowcount == BATCH:  # type: ignore[arg-type]
            pass
        delete_s = time.perf_counter() - t0
        deleted = (
            before - (conn.execute(count.format("public.notifications_flat")).fetchone() or (0,))[0]
        )

        before = (conn.execute(count.format("public.notifications")).fetchone() or (0,))[0]
        t0 = time.perf_counter()
        folded = conn.execute(
            "select public.drop_history_partitions('notifications', interval '90 days')"
        ).fetchone()
        while (
            conn.execute(
                "select private.prune_history('notifications', now() - interval '90 days', %s)",
                (BATCH,),
            ).fetchone()
            or (0,)
        )[0] == BATCH:
            pass
        fold_s = time.perf_counter() - t0
        gone = before - (conn.execute(count.format("public.notifications")).fetchone() or (0,))[0]
        kept = (conn.execute(count.format("partitions.notifications_kept")).fetchone() or (0,))[0]
        print(
            f"retention beyond 90 days: plain table {deleted} rows by batch deletes in {delete_s:.2f} s;"
            f" partitioned {gone} rows, {folded[0] if folded else 0} weeks folded in {fold_s:.3f} s,"
            f" {kept} unread rows in _kept"
        )

        targets = conn.execute(
            "select n.id::text, n.user_id::text from public.notifications n"
            " join public.notifications_flat f using (id) order by random() limit %s",
            (UPDATES,),
        ).fetchall()
        times: dict[str, list[float]] = {"notifications": [], "notifications_flat": []}
        for i, (note, user) in enumerate(targets):
            for table in ("notifications", "notifications_flat")[:: 1 if i % 2 else -1]:
                with conn.transaction():
                    conn.execute(
                        "select set_config('role', 'authenticated', true),"
                        " set_config('request.jwt.claims', json_build_object('sub', %s::text,"
                        " 'role', 'authenticated')::text, true)",
                        (user,),
                    )
                    t0 = time.perf_counter()
                    assert conn.execute(UPDATE.format(table=table), {"id": note}).rowcount == 1
                    times[table].append((time.perf_counter() - t0) * 1000)
        p50 = {t: percentile(v, 50) for t, v in times.items()}
        print(
            f"a user's update by id through RLS, p50: partitioned {p50['notifications']:.2f} ms,"
            f" plain table {p50['notifications_flat']:.2f} ms"
        )
    print(
        f"inbox: rows={gone} fold_s={fold_s:.3f} delete_s={delete_s:.2f}"
        f" retention_ratio={delete_s / fold_s:.1f} kept={kept}"
        f" update_p50_ms={p50['notifications']:.2f} flat_update_p50_ms={p50['notifications_flat']:.2f}"
        f" update_ratio={p50['notifications'] / p50['notifications_flat']:.2f}"
    )


if __name__ == "__main__":
    main()
