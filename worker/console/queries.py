"""What each page shows, read as the signed-in admin through the admin views, functions
and the tables their policies let admins read. Each function returns the template's data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.console.database import Cursor

Data = dict[str, Any]
Params = Mapping[str, str]
EMPTY: Params = {}


async def _rows(cur: Cursor, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    await cur.execute(query, params)
    return await cur.fetchall()


async def _one(cur: Cursor, query: str, params: tuple[Any, ...] = ()) -> dict[str, Any]:
    await cur.execute(query, params)
    row = await cur.fetchone()
    return row or {}


async def overview(cur: Cursor, params: Params = EMPTY) -> Data:
    row = await _one(cur, "select public.admin_platform_overview() as o")
    o: dict[str, Any] = row["o"]
    trades = sorted(o.get("trades_per_day") or [], key=lambda d: str(d.get("day")))
    revenue: dict[str, float] = {}
    for r in o.get("revenue_per_day") or []:
        revenue[str(r["day"])] = revenue.get(str(r["day"]), 0.0) + float(r.get("amount") or 0)
    return {
        "o": o,
        "trades_chart": {
            "x": [str(d["day"]) for d in trades],
            "y": [int(d.get("trades") or 0) for d in trades],
        },
        "revenue_chart": {"x": sorted(revenue), "y": [revenue[d] for d in sorted(revenue)]},
    }


async def fleet(cur: Cursor, params: Params = EMPTY) -> Data:
    workers = await _rows(
        cur,
        "select name, host, version, status, capacity, heartbeat_age_s, running_jobs, "
        "leased_bots, queue_lag_s, started_at from public.fleet_health "
        "order by status, name",
    )
    takeovers = await _rows(
        cur,
        "select l.bot_id, b.name as bot, f.name as taken_from, w.name as taken_by, l.epoch, "
        "l.taken_over_at from public.bot_leases l "
        "left join public.bots b on b.id = l.bot_id "
        "left join public.workers f on f.id = l.taken_over_from "
        "left join public.workers w on w.id = l.last_worker_id "
        "where l.taken_over_at > now() - interval '1 hour' "
        "order by l.taken_over_at desc limit 50",
    )
    return {"workers": workers, "takeovers": takeovers}


# Jobs waiting (ready, not yet claimed) at the end of each of the last 60 minutes, from the
# jobs' own timestamps: ready from max(created_at, run_at) until started (or finished without
# starting, as a cancelled one); a job queued again after a failure waits from its run_at.
QUEUE_DEPTH = """
with minutes as (
  select m, least(m + interval '1 minute', now()) as t
    from generate_series(date_trunc('minute', now()) - interval '59 minutes',
                         date_trunc('minute', now()), interval '1 minute') m
), recent as (
  select j.status, j.created_at, j.run_at, j.started_at, j.finished_at
    from public.jobs j
   where j.status = 'queued'
      or coalesce(j.started_at, j.finished_at) > now() - interval '61 minutes'
)
select extract(epoch from m.m)::bigint as minute,
       count(r.status) filter (
         where (r.status = 'queued' and greatest(r.created_at, r.run_at) <= m.t)
            or (r.status <> 'queued' and greatest(r.created_at, r.run_at) <= m.t
                and coalesce(r.started_at, r.finished_at) > m.t)) as depth
  from minutes m left join recent r on true
 group by m.m order by m.m
"""


async def queue(cur: Cursor, params: Params = EMPTY) -> Data:
    kinds = await _rows(
        cur,
        "select queue, kind, ready, scheduled, failed, running, dead, succeeded, "
        "oldest_ready_age_s, last_dead_error from public.job_queue_stats order by queue, kind",
    )
    throughput = await _rows(
        cur,
        "select queue, kind, count(*) as done from public.jobs "
        "where status = 'succeeded' and finished_at > now() - interval '1 hour' "
        "group by queue, kind",
    )
    done = {(t["queue"], t["kind"]): t["done"] for t in throughput}
    for k in kinds:
        k["done_last_hour"] = done.get((k["queue"], k["kind"]), 0)
    dead = await _rows(
        cur,
        "select id, queue, kind, attempts, last_error, finished_at from public.jobs "
        "where status = 'dead' order by finished_at desc nulls last limit 50",
    )
    failed = await _rows(
        cur,
        "select id, queue, kind, attempts, max_attempts, last_error, run_at from public.jobs "
        "where status = 'queued' and last_error is not null order by run_at limit 50",
    )
    per_minute = await _rows(
        cur,
        "select extract(epoch from date_trunc('minute', finished_at))::bigint as minute, "
        "count(*) as done from public.jobs "
        "where status = 'succeeded' and finished_at > now() - interval '1 hour' "
        "group by 1 order by 1",
    )
    depth = await _rows(cur, QUEUE_DEPTH)
    totals = {
        name: sum(int(k[name]) for k in kinds)
        for name in ("ready", "scheduled", "failed", "running", "dead")
    }
    now = await _one(cur, "select extract(epoch from now())::bigint as now")
    chart = {
        "x": [int(m["minute"]) for m in per_minute],
        "y": [int(m["done"]) for m in per_minute],
        "from": int(now["now"]) - 3600,
        "to": int(now["now"]),
    }
    return {
        "kinds": kinds,
        "dead": dead,
        "failed": failed,
        "totals": totals,
        "throughput": chart,
        "depth": {
            "x": [int(d["minute"]) for d in depth],
            "y": [int(d["depth"]) for d in depth],
            "from": chart["from"],
            "to": chart["to"],
        },
    }


# Trades opened in each of the last 24 hours (through trades_entry_time_idx).
TRADES_PER_HOUR = """
select extract(epoch from h)::bigint as hour, count(t.id) as trades
  from generate_series(date_trunc('hour', now()) - interval '23 hours', date_trunc('hour', now()),
                       interval '1 hour') h
  left join public.trades t
    on t.entry_time >= h and t.entry_time < h + interval '1 hour'
 group by h order by h
"""

# Webhook lag (received -> processed), p95 per hour over the last 24 hours, all providers.
WEBHOOK_LAG = """
select extract(epoch from date_trunc('hour', received_at))::bigint as hour,
       percentile_cont(0.95) within group (
         order by extract(epoch from processed_at - received_at))::float8 as lag_p95_s
  from public.webhook_events
 where received_at > now() - interval '24 hours' and processed_at is not null
 group by 1 order by 1
"""


def _series(rows: list[dict[str, Any]], x: str, y: str, now: int, span_s: int) -> Data:
    """A chart's series: ``x`` as epoch seconds, ``y`` as numbers, over the last ``span_s``."""
    return {
        "x": [int(r[x]) for r in rows],
        "y": [float(r[y]) for r in rows],
        "from": now - span_s,
        "to": now,
    }


async def bots(cur: Cursor, params: Params = EMPTY) -> Data:
    by_status = await _rows(
        cur, "select status, count(*) as bots from public.bots group by status order by status"
    )
    by_exchange = await _rows(
        cur,
        "select exchange, count(*) filter (where status = 'running') as running, "
        "count(*) filter (where status = 'error') as errors from public.bots "
        "group by exchange order by exchange",
    )
    errors = await _rows(
        cur,
        "select id, name, exchange, trading_pair, error_message, updated_at from public.bots "
        "where status = 'error' order by updated_at desc limit 50",
    )
    now = int((await _one(cur, "select extract(epoch from now())::bigint as now"))["now"])
    per_hour = _series(await _rows(cur, TRADES_PER_HOUR), "hour", "trades", now, 24 * 3600)
    return {
        "by_status": by_status,
        "by_exchange": by_exchange,
        "errors": errors,
        "trades_per_hour": per_hour,
    }


async def webhooks(cur: Cursor, params: Params = EMPTY) -> Data:
    providers = await _rows(
        cur,
        """
        select provider,
               count(*) as received,
               count(*) filter (where status in ('processed', 'ignored')) as processed,
               count(*) filter (where status = 'failed') as failed,
               count(*) filter (where status in ('received', 'processing', 'waiting')) as waiting,
               coalesce(percentile_cont(0.95) within group (
                 order by extract(epoch from processed_at - received_at))
                 filter (where processed_at is not null), 0)::float8 as lag_p95_s
          from public.webhook_events
         where received_at > now() - interval '1 day'
         group by provider order by provider
        """,
    )
    failures = await _rows(
        cur,
        "select id, provider, event_type, event_id, attempts, error, received_at "
        "from public.webhook_events where status = 'failed' "
        "order by received_at desc limit 50",
    )
    now = int((await _one(cur, "select extract(epoch from now())::bigint as now"))["now"])
    lag = _series(await _rows(cur, WEBHOOK_LAG), "hour", "lag_p95_s", now, 24 * 3600)
    return {"providers": providers, "failures": failures, "lag": lag}


async def ledger(cur: Cursor, params: Params = EMPTY) -> Data:
    audit = await _rows(cur, "select rule, account_id, detail from public.admin_credit_audit()")
    system = await _rows(
        cur,
        "select code, kind, currency, credits_posted, debits_posted, debits_pending, "
        "credits_pending, balance from public.credit_accounts where kind <> 'user' "
        "order by code",
    )
    holds = await _rows(
        cur,
        """
        select t.id, t.kind, t.amount, t.created_at, t.timeout_at, a.user_id
          from public.credit_transfers t
          join public.credit_accounts a on a.id = t.debit_account_id
         where t.phase = 'pending'
           and not exists (select 1 from public.credit_transfers r where r.pending_id = t.id)
         order by t.created_at desc limit 50
        """,
    )
    payouts = await _rows(
        cur,
        """
        select t.id, t.amount, t.phase, t.created_at, a.user_id
          from public.credit_transfers t
          join public.credit_accounts a on a.id = t.debit_account_id
         where t.kind = 'payout' order by t.created_at desc limit 50
        """,
    )
    return {"audit": audit, "system": system, "holds": holds, "payouts": payouts}


async def services(cur: Cursor, params: Params = EMPTY) -> Data:
    found = await _one(
        cur, "select to_regprocedure('public.admin_service_health()') is not null as found"
    )
    if not found.get("found"):
        return {"checks": None}
    return {"checks": await _rows(cur, "select * from public.admin_service_health()")}


async def marketplace(cur: Cursor, params: Params = EMPTY) -> Data:
    strategies = await _rows(
        cur,
        """
        select s.id, s.name, s.is_verified, s.created_at, p.email as provider
          from public.strategies s
          left join public.profiles p on p.id = s.user_id
         where s.strategy_type = 'marketplace' and s.is_public
         order by s.is_verified, s.created_at desc limit 100
        """,
    )
    return {"strategies": strategies}


async def audit(cur: Cursor, params: Params = EMPTY) -> Data:
    entries = await _rows(
        cur,
        """
        select l.at, l.actor_role, p.email as actor, l.action, l.target_type, l.target_id,
               l.reason, l.before, l.after
          from public.admin_audit_log l
          left join public.profiles p on p.id = l.actor_id
         order by l.at desc limit 100
        """,
    )
    return {"entries": entries}


async def users(cur: Cursor, params: Params = EMPTY) -> Data:
    """Users whose email contains ``q`` (newest first): plan, credits, bots, last sign-in.
    Never their secrets (chat ids, webhook URLs, exchange keys)."""
    q = params.get("q", "").strip()[:200]
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await _rows(
        cur,
        """
        select p.id, p.email, p.role, p.is_active, p.last_login_at, p.created_at,
               (select pl.name from public.subscriptions s join public.plans pl on pl.id = s.plan_id
                 where s.user_id = p.id and s.status in ('active', 'trial')
                 order by s.started_at desc limit 1) as plan,
               (select a.balance from public.credit_accounts a
                 where a.user_id = p.id and a.kind = 'user' limit 1) as credits,
               (select count(*) from public.bots b where b.user_id = p.id) as bots,
               (select count(*) from public.bots b
                 where b.user_id = p.id and b.status = 'running') as running
          from public.profiles p
         where p.email ilike %s
         order by p.created_at desc limit 50
        """,
        (pattern,),
    )
    return {"q": q, "users": rows}


async def set_user_role(cur: Cursor, user_id: str, role: str, reason: str) -> str:
    row = await _one(
        cur,
        "select (p).email, (p).role from public.admin_set_user_role(%s::uuid, %s, %s) p",
        (user_id, role, reason),
    )
    return f"{row.get('email') or user_id} is now a {row.get('role', role)}"


async def retry_job(cur: Cursor, job_id: int) -> str:
    row = await _one(cur, "select (public.admin_retry_job(%s)).status as status", (job_id,))
    return f"job {job_id} is {row.get('status')} again"


async def discard_job(cur: Cursor, job_id: int, reason: str) -> str:
    await cur.execute("select public.admin_discard_job(%s, %s)", (job_id, reason))
    return f"job {job_id} is discarded"


async def replay_webhook_event(cur: Cursor, event_id: str, reason: str) -> str:
    row = await _one(
        cur,
        "select (e).provider, (e).event_id from public.admin_replay_webhook_event(%s::uuid, %s) e",
        (event_id, reason),
    )
    return f"{row.get('provider')} event {row.get('event_id', event_id)} is replayed"


async def verify_strategy(cur: Cursor, strategy_id: str, verified: bool, reason: str) -> str:
    row = await _one(
        cur,
        "select (s).name from public.admin_verify_strategy(%s::uuid, %s, %s) s",
        (strategy_id, verified, reason),
    )
    state = "verified" if verified else "no longer verified"
    return f"strategy {row.get('name', strategy_id)} is {state}"
