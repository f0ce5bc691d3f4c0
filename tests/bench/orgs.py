"""Benchmark: organisation RLS through the membership table versus claims in the JWT.

20,000 users, 10,000 organisations (a paying owner and four members each, 50,000
memberships) and 100,000 bots (half personal, half the organisations'). A user reads their
bots as an app does (role + request.jwt.claims in a transaction, RLS deciding): the
dashboard list, a count of every bot they see and one bot by id.

Three ways for the policy "organisation members can read its bots" to know the caller's
organisations:

- membership: the caller's rows of organisation_members (primary key user_id,
  organisation_id), read inline once per statement: what the migrations ship.
- function: the same rows through the security definer ``private.organisation_ids()``.
- claims: the organisation ids in ``app_metadata.organisations`` of the JWT, as a custom
  access token hook would add them, read from ``auth.jwt()`` once per statement.

All run on the same database and sample, in the order membership, claims, function,
claims, membership (so drift on a shared machine shows), swapping the one policy between.

Last line: ``orgs: membership_p50_ms=… membership_p95_ms=… claims_p50_ms=… claims_p95_ms=…
function_p50_ms=… ratio=<membership p50 / claims p50>``.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import psycopg
from rich.console import Console

from tests.bench._common import bench_database, percentile

USERS, ORGS, MEMBERS_PER_ORG, BOTS = 20_000, 10_000, 4, 100_000
ROUNDS = 300

GENERATE = """
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
select gen_random_uuid(), 'authenticated', 'authenticated', 'user' || g || '@bench.local',
       '{"provider": "email", "role": "user"}', jsonb_build_object('full_name', 'User ' || g), now(), now()
  from generate_series(1, %(users)s) g;

create temp table people as select row_number() over (order by id) as n, id from public.profiles;

set session_replication_role = replica;

insert into public.organisations (id, name, owner_id)
select gen_random_uuid(), 'org ' || p.n, p.id from people p where p.n <= %(orgs)s;

insert into public.organisation_members (user_id, organisation_id, role)
select o.owner_id, o.id, 'owner' from public.organisations o;

insert into public.organisation_members (user_id, organisation_id, role)
select distinct on (p.id, o.id) p.id, o.id, (array['admin', 'member', 'member', 'read_only'])[k]
  from public.organisations o cross join generate_series(1, %(members)s) k
  join people p on p.n = 1 + abs(hashtext(o.id::text || k)) %% %(users)s
 where p.id <> o.owner_id
on conflict do nothing;

insert into public.bots (user_id, organisation_id, name, exchange, trading_pair, timeframe, strategy, status,
                         initial_balance, current_balance, stake_amount)
select p.id, null, 'bot ' || g, 'binance', 'ETH/BTC', '5m', 'sma_cross', 'stopped', 1, 1, 0.1
  from generate_series(1, %(bots)s / 2) g join people p on p.n = 1 + g %% %(users)s;

insert into public.bots (user_id, organisation_id, name, exchange, trading_pair, timeframe, strategy, status,
                         initial_balance, current_balance, stake_amount)
select o.owner_id, o.id, 'org bot ' || g, 'binance', 'ETH/BTC', '5m', 'sma_cross', 'stopped', 1, 1, 0.1
  from generate_series(1, %(bots)s / 2) g
  join (select id, owner_id, row_number() over (order by id) as n from public.organisations) o
    on o.n = 1 + g %% %(orgs)s;

set session_replication_role = origin
"""

POLICY = '"Organisation members can read its bots"'
# What the migrations ship: the caller's membership rows, read inline once per statement.
MEMBERSHIP_POLICY = (
    f"create policy {POLICY} on public.bots for select to authenticated "
    "using (organisation_id = any ((select array(select m.organisation_id from public.organisation_members m"
    " where m.user_id = (select auth.uid())))::uuid[]))"
)
# The same table behind a security definer function (private.organisation_ids()).
FUNCTION_POLICY = (
    f"create policy {POLICY} on public.bots for select to authenticated "
    "using (organisation_id = any ((select private.organisation_ids())::uuid[]))"
)
# The claims variant: what a custom access token hook's claim would allow instead.
CLAIMS_SETUP = """
create or replace function private.claim_organisation_ids() returns uuid[]
language sql stable
set search_path = ''
as $$
  select coalesce(array(select jsonb_object_keys(auth.jwt() -> 'app_metadata' -> 'organisations')::uuid), '{}')
$$;
grant execute on function private.claim_organisation_ids() to authenticated
"""
CLAIMS_POLICY = (
    f"create policy {POLICY} on public.bots for select to authenticated "
    "using (organisation_id = any ((select private.claim_organisation_ids())::uuid[]))"
)

QUERIES = {
    "dashboard": "select id, name, status, profit from bots order by created_at desc, id limit 50",
    "count": "select count(*) from bots",
    "by_id": "select id, name, status from bots where id = %(bot)s",
}


def claims(user_id: str, organisations: dict[str, str]) -> str:
    return json.dumps(
        {
            "sub": user_id,
            "role": "authenticated",
            "aud": "authenticated",
            "app_metadata": {"provider": "email", "role": "user", "organisations": organisations},
            "aal": "aal1",
        }
    )


def timed(conn: psycopg.Connection[Any], jwt: str, query: str, params: dict[str, Any]) -> float:
    start = time.perf_counter()
    with conn.transaction():
        conn.execute(
            "select set_config('role', 'authenticated', true), "
            "set_config('request.jwt.claims', %s, true)",
            (jwt,),
        )
        conn.execute(query, params).fetchall()
    return (time.perf_counter() - start) * 1000


def use_policy(conn: psycopg.Connection[Any], create: str) -> None:
    with conn.transaction():
        conn.execute(f"drop policy {POLICY} on public.bots")
        conn.execute(create)


def measure(
    conn: psycopg.Connection[Any], sample: list[tuple[str, str, str]]
) -> dict[str, list[float]]:
    for jwt, _, bot in sample[:20]:
        for query in QUERIES.values():
            timed(conn, jwt, query, {"bot": bot})
    result: dict[str, list[float]] = {name: [] for name in QUERIES}
    for jwt, _, bot in sample:
        for name, query in QUERIES.items():
            result[name].append(timed(conn, jwt, query, {"bot": bot}))
    return result


def main() -> None:
    console = Console(stderr=True)
    with bench_database("orgs") as url, psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for statement in GENERATE.split(";\n\n"):
            conn.execute(
                statement,
                {"users": USERS, "orgs": ORGS, "members": MEMBERS_PER_ORG, "bots": BOTS},
            )
        conn.execute("vacuum analyze")
        row = conn.execute(
            "select (select count(*) from profiles), (select count(*) from organisations),"
            " (select count(*) from organisation_members), (select count(*) from bots),"
            " (select count(*) from bots where organisation_id is not null)"
        ).fetchone()
        assert row is not None
        console.print(
            f"generated {row[0]:,} users, {row[1]:,} organisations, {row[2]:,} memberships, "
            f"{row[3]:,} bots ({row[4]:,} of organisations) in {time.perf_counter() - started:.1f} s"
        )
        # Members of at least one organisation, with one bot of an organisation of theirs.
        members = conn.execute(
            "select m.user_id::text, jsonb_object_agg(m.organisation_id, m.role)::text,"
            " (select b.id::text from bots b where b.organisation_id = min(m.organisation_id::text)::uuid limit 1)"
            " from organisation_members m group by m.user_id"
        ).fetchall()
        rng = random.Random(7)
        picked = [members[rng.randrange(len(members))] for _ in range(ROUNDS)]
        sample = [(claims(uid, json.loads(orgs)), uid, bot) for uid, orgs, bot in picked]
        per_user = sum(len(json.loads(orgs)) for _, orgs, _ in picked) / len(picked)
        console.print(f"sampled {ROUNDS} members, {per_user:.1f} organisations each on average")
        conn.execute(CLAIMS_SETUP)
        runs: list[tuple[str, dict[str, list[float]]]] = []
        for variant, policy in (
            ("membership", MEMBERSHIP_POLICY),
            ("claims", CLAIMS_POLICY),
            ("function", FUNCTION_POLICY),
            ("claims", CLAIMS_POLICY),
            ("membership", MEMBERSHIP_POLICY),
        ):
            use_policy(conn, policy)
            runs.append((variant, measure(conn, sample)))
    for variant, result in runs:
        cells = " ".join(
            f"{name} p50={percentile(ms, 50):.2f} p95={percentile(ms, 95):.2f}"
            for name, ms in result.items()
        )
        print(f"{variant:10s} {cells} (ms)")
    by_variant: dict[str, list[float]] = {"membership": [], "function": [], "claims": []}
    for variant, result in runs:
        by_variant[variant].extend(v for ms in result.values() for v in ms)
    m50, m95 = percentile(by_variant["membership"], 50), percentile(by_variant["membership"], 95)
    c50, c95 = percentile(by_variant["claims"], 50), percentile(by_variant["claims"], 95)
    f50 = percentile(by_variant["function"], 50)
    print(
        f"orgs: membership_p50_ms={m50:.2f} membership_p95_ms={m95:.2f} claims_p50_ms={c50:.2f}"
        f" claims_p95_ms={c95:.2f} function_p50_ms={f50:.2f} ratio={m50 / c50:.2f}"
    )


if __name__ == "__main__":
    main()
