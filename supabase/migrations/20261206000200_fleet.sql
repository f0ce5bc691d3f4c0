-- Fleet: the webhook inbox (webhook_events), the durable job queue (jobs), worker
-- registrations with heartbeats (workers) and bot leases with fencing epochs (bot_leases),
-- plus the operators' views job_queue_stats and fleet_health. Owned by worker.fleet,
-- which knows no capability: capabilities enqueue their own job kinds (their triggers on
-- webhook_events live in their own migrations), and the fencing trigger on orders and
-- trades, and the lease's foreign key to bots, live with the bots.
-- Only the fleet (service role) writes here; admins may read for operations.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.webhook_events (
  id uuid primary key default gen_random_uuid(),
  provider text not null constraint webhook_events_provider_known
    check (provider in ('snaptrade', 'stripe', 'paystack', 'tripay', 'tradingview', 'alpaca')),
  event_id text not null,
  event_type text not null,
  payload jsonb not null,
  status text not null default 'received' constraint webhook_events_status_known
    check (status in ('received', 'processing', 'processed', 'failed', 'ignored')),
  attempts integer not null default 0,
  error text,
  occurred_at timestamptz,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  constraint webhook_events_once_per_provider_event unique (provider, event_id)
);

create index webhook_events_pending_idx on public.webhook_events (received_at) where status in ('received', 'failed');

create table public.workers (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  host text not null,
  pid integer not null,
  version text not null,
  queues text[] not null default '{default}',
  capacity integer not null default 1000 constraint workers_capacity_positive check (capacity > 0),
  status text not null default 'running' constraint workers_status_known
    check (status in ('running', 'draining', 'stopped', 'dead')),
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  stopped_at timestamptz,
  metadata jsonb not null default '{}'
);

create index workers_alive_idx on public.workers (heartbeat_at) where status in ('running', 'draining');

create table public.jobs (
  -- bigint identity: claim order and insert speed matter more here than opaque ids.
  id bigint generated always as identity primary key,
  queue text not null default 'default',
  kind text not null constraint jobs_kind_format check (kind ~ '^[a-z][a-z0-9_.]{0,63}$'),
  payload jsonb not null default '{}',
  status text not null default 'queued' constraint jobs_status_known
    check (status in ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
  priority integer not null default 0,
  run_at timestamptz not null default now(),
  attempts integer not null default 0,
  max_attempts integer not null default 5 constraint jobs_max_attempts_positive check (max_attempts > 0),
  idempotency_key text constraint jobs_idempotency_key_unique unique,
  locked_by uuid references public.workers (id) on delete set null,
  locked_until timestamptz,
  last_error text,
  result jsonb,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now()
);

create index jobs_claim_idx on public.jobs (queue, priority desc, run_at, id) where status = 'queued';
create index jobs_running_idx on public.jobs (locked_until) where status = 'running';
create index jobs_locked_by_idx on public.jobs (locked_by);
create index jobs_kind_status_idx on public.jobs (kind, status);

create table public.bot_leases (
  bot_id uuid primary key,
  worker_id uuid references public.workers (id) on delete set null,
  -- Grows on every takeover; writes made for the bot carry it (fencing).
  epoch bigint not null default 1,
  acquired_at timestamptz not null default now(),
  renewed_at timestamptz not null default now(),
  expires_at timestamptz not null
);

create index bot_leases_worker_id_idx on public.bot_leases (worker_id);
create index bot_leases_expires_idx on public.bot_leases (expires_at);

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

revoke all on public.webhook_events, public.workers, public.jobs, public.bot_leases from anon, authenticated;
grant all on public.webhook_events, public.workers, public.jobs, public.bot_leases to service_role;
grant select on public.webhook_events, public.workers, public.jobs, public.bot_leases to authenticated;
alter table public.webhook_events enable row level security;
alter table public.workers enable row level security;
alter table public.jobs enable row level security;
alter table public.bot_leases enable row level security;
create policy "Admins can read webhook events" on public.webhook_events
  for select to tradefleet_admin using (true);
create policy "Admins can read workers" on public.workers
  for select to tradefleet_admin using (true);
create policy "Admins can read jobs" on public.jobs
  for select to tradefleet_admin using (true);
create policy "Admins can read bot leases" on public.bot_leases
  for select to tradefleet_admin using (true);

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

-- Fleet: the durable job queue on public.jobs.
-- Workers (service_role) enqueue, claim with FOR UPDATE SKIP LOCKED under a visibility
-- timeout, complete, fail (retry with exponential backoff and jitter, `dead` after
-- max_attempts keeping the last error), extend locks, and reclaim jobs whose lock expired.
-- Enqueue notifies channel `tradefleet_jobs` with the queue name: a wake-up only, a
-- periodic poll guarantees progress if a notification is lost.
-- None of these functions is security definer: service_role owns the needed grants.
create or replace function public.enqueue_job(
  p_kind text,
  p_payload jsonb default '{}',
  p_queue text default 'default',
  p_run_at timestamptz default null,
  p_priority integer default 0,
  p_max_attempts integer default 5,
  p_idempotency_key text default null
) returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_id bigint;
begin
  insert into public.jobs (queue, kind, payload, run_at, priority, max_attempts, idempotency_key)
  values (p_queue, p_kind, coalesce(p_payload, '{}'), coalesce(p_run_at, now()), p_priority,
          p_max_attempts, p_idempotency_key)
  on conflict (idempotency_key) do nothing
  returning id into v_id;
  if v_id is null then
    -- The same key enqueued twice yields one job: hand back the existing one.
    select j.id into v_id from public.jobs j where j.idempotency_key = p_idempotency_key;
    return v_id;
  end if;
  perform pg_notify('tradefleet_jobs', p_queue);
  return v_id;
end;
$$;

revoke execute on function public.enqueue_job(text, jsonb, text, timestamptz, integer, integer, text)
  from public, anon, authenticated;
grant execute on function public.enqueue_job(text, jsonb, text, timestamptz, integer, integer, text)
  to service_role;

-- Many jobs of one kind in one statement and one notification (fan-out, benchmarks).
create or replace function public.enqueue_jobs(
  p_kind text,
  p_payloads jsonb[],
  p_queue text default 'default',
  p_priority integer default 0,
  p_max_attempts integer default 5
) returns setof bigint
language plpgsql
set search_path = ''
as $$
begin
  return query
    insert into public.jobs (queue, kind, payload, priority, max_attempts)
    select p_queue, p_kind, coalesce(p.payload, '{}'), p_priority, p_max_attempts
    from unnest(p_payloads) with ordinality as p(payload, n)
    order by p.n
    returning id;
  perform pg_notify('tradefleet_jobs', p_queue);
end;
$$;

revoke execute on function public.enqueue_jobs(text, jsonb[], text, integer, integer)
  from public, anon, authenticated;
grant execute on function public.enqueue_jobs(text, jsonb[], text, integer, integer) to service_role;

-- Claim up to p_limit ready jobs of p_queues (and of p_kinds, when given: a worker only
-- takes kinds it can run). The lock is the visibility timeout: past locked_until the job
-- is reclaimed and runs again elsewhere.
create or replace function public.claim_jobs(
  p_worker_id uuid,
  p_queues text[],
  p_limit integer,
  p_lock_s double precision default 30,
  p_kinds text[] default null
) returns setof public.jobs
language sql
set search_path = ''
as $$
  with ready as (
    select c.id
    from unnest(p_queues) as q(name)
    cross join lateral (
      select j.id, j.priority, j.run_at
      from public.jobs j
      where j.status = 'queued'
        and j.queue = q.name
        and j.run_at <= now()
        and (p_kinds is null or j.kind = any (p_kinds))
      order by j.priority desc, j.run_at, j.id
      limit greatest(p_limit, 0)
      for update skip locked
    ) c
    order by c.priority desc, c.run_at, c.id
    limit greatest(p_limit, 0)
  )
  update public.jobs j
  set status = 'running',
      attempts = j.attempts + 1,
      locked_by = p_worker_id,
      locked_until = now() + make_interval(secs => p_lock_s),
      started_at = now(),
      updated_at = now()
  where j.id = any (array(select ready.id from ready))
  returning j.*;
$$;

revoke execute on function public.claim_jobs(uuid, text[], integer, double precision, text[])
  from public, anon, authenticated;
grant execute on function public.claim_jobs(uuid, text[], integer, double precision, text[]) to service_role;

-- Complete jobs this worker still holds. Returns the ids it completed: a job whose lock was
-- lost (reclaimed after expiry) is not overwritten.
create or replace function public.complete_jobs(
  p_worker_id uuid,
  p_job_ids bigint[],
  p_results jsonb[] default null
) returns setof bigint
language sql
set search_path = ''
as $$
  update public.jobs j
  set status = 'succeeded',
      result = r.result,
      finished_at = now(),
      locked_by = null,
      locked_until = null,
      updated_at = now()
  from unnest(p_job_ids, coalesce(p_results, array[]::jsonb[])) as r(id, result)
  where j.id = r.id
    and j.status = 'running'
    and j.locked_by = p_worker_id
  returning j.id;
$$;

revoke execute on function public.complete_jobs(uuid, bigint[], jsonb[]) from public, anon, authenticated;
grant execute on function public.complete_jobs(uuid, bigint[], jsonb[]) to service_role;

create or replace function public.complete_job(
  p_worker_id uuid,
  p_job_id bigint,
  p_result jsonb default null
) returns boolean
language sql
set search_path = ''
as $$
  select exists (select 1 from public.complete_jobs(p_worker_id, array[p_job_id], array[p_result]));
$$;

revoke execute on function public.complete_job(uuid, bigint, jsonb) from public, anon, authenticated;
grant execute on function public.complete_job(uuid, bigint, jsonb) to service_role;

-- Record a failure. p_retry = false (Fatal) or attempts >= max_attempts -> 'dead';
-- otherwise back to 'queued' after min(base * 2^(attempts-1), cap) seconds with full
-- jitter in [50%, 100%], or exactly p_retry_after_s when the handler said so.
-- Returns the job's new status, or null when this worker no longer holds it.
create or replace function public.fail_job(
  p_worker_id uuid,
  p_job_id bigint,
  p_error text,
  p_retry boolean default true,
  p_retry_after_s double precision default null,
  p_backoff_base_s double precision default 2,
  p_backoff_cap_s double precision default 3600
) returns text
language sql
set search_path = ''
as $$
  update public.jobs j
  set status = case when p_retry and j.attempts < j.max_attempts then 'queued' else 'dead' end,
      run_at = case
        when p_retry and j.attempts < j.max_attempts then
          now() + make_interval(secs => coalesce(
            p_retry_after_s,
            least(p_backoff_base_s * power(2, greatest(j.attempts - 1, 0)), p_backoff_cap_s)
              * (0.5 + random() / 2)))
        else j.run_at end,
      finished_at = case when p_retry and j.attempts < j.max_attempts then null else now() end,
      last_error = left(p_error, 4000),
      locked_by = null,
      locked_until = null,
      updated_at = now()
  where j.id = p_job_id
    and j.status = 'running'
    and j.locked_by = p_worker_id
  returning j.status;
$$;

revoke execute on function public.fail_job(uuid, bigint, text, boolean, double precision, double precision, double precision)
  from public, anon, authenticated;
grant execute on function public.fail_job(uuid, bigint, text, boolean, double precision, double precision, double precision)
  to service_role;

-- Hand jobs back to the queue unchanged (drain: the worker stops before running them).
-- The attempt they were claimed with is given back too.
create or replace function public.release_jobs(p_worker_id uuid, p_job_ids bigint[]) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_n integer;
begin
  update public.jobs j
  set status = 'queued', attempts = greatest(j.attempts - 1, 0), locked_by = null,
      locked_until = null, started_at = null, updated_at = now()
  where j.id = any (p_job_ids) and j.status = 'running' and j.locked_by = p_worker_id;
  get diagnostics v_n = row_count;
  if v_n > 0 then
    perform pg_notify('tradefleet_jobs', q.queue)
    from (select distinct j.queue from public.jobs j where j.id = any (p_job_ids)) q;
  end if;
  return v_n;
end;
$$;

revoke execute on function public.release_jobs(uuid, bigint[]) from public, anon, authenticated;
grant execute on function public.release_jobs(uuid, bigint[]) to service_role;

-- Heartbeat of one running job: push its visibility timeout p_lock_s into the future.
create or replace function public.extend_job_lock(
  p_worker_id uuid,
  p_job_id bigint,
  p_lock_s double precision
) returns boolean
language sql
set search_path = ''
as $$
  with extended as (
    update public.jobs j
    set locked_until = now() + make_interval(secs => p_lock_s), updated_at = now()
    where j.id = p_job_id and j.status = 'running' and j.locked_by = p_worker_id
    returning 1
  )
  select exists (select 1 from extended);
$$;

revoke execute on function public.extend_job_lock(uuid, bigint, double precision) from public, anon, authenticated;
grant execute on function public.extend_job_lock(uuid, bigint, double precision) to service_role;

-- A crashed worker's jobs run again elsewhere: every running job whose lock expired goes
-- back to 'queued' (or to 'dead' when it has used all its attempts). Returns how many.
create or replace function public.reclaim_expired_jobs() returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_n integer;
  v_queues text[];
begin
  with expired as (
    select j.id from public.jobs j
    where j.status = 'running' and j.locked_until < now()
    for update skip locked
  ), moved as (
    update public.jobs j
    set status = case when j.attempts < j.max_attempts then 'queued' else 'dead' end,
        run_at = now(),
        finished_at = case when j.attempts < j.max_attempts then null else now() end,
        last_error = 'lock expired: worker ' || coalesce(j.locked_by::text, '?')
          || ' stopped heartbeating during attempt ' || j.attempts,
        locked_by = null,
        locked_until = null,
        updated_at = now()
    from expired
    where j.id = expired.id
    returning j.queue
  )
  select count(*), array_agg(distinct moved.queue) into v_n, v_queues from moved;
  if v_n > 0 then
    perform pg_notify('tradefleet_jobs', q) from unnest(v_queues) q;
  end if;
  return v_n;
end;
$$;

revoke execute on function public.reclaim_expired_jobs() from public, anon, authenticated;
grant execute on function public.reclaim_expired_jobs() to service_role;

-- Finished jobs are history; keep p_keep of it. Dead jobs stay until an operator acts.
create or replace function public.prune_jobs(p_keep interval default '7 days') returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_n integer;
begin
  delete from public.jobs j
  where j.status in ('succeeded', 'cancelled') and j.finished_at < now() - p_keep;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;

revoke execute on function public.prune_jobs(interval) from public, anon, authenticated;
grant execute on function public.prune_jobs(interval) to service_role;

-- Operators: one row per (queue, kind). Reads jobs with the caller's rights, so admins
-- see it through the jobs RLS policy and everyone else sees nothing.
create or replace view public.job_queue_stats
with (security_invoker = true)
as
select
  j.queue,
  j.kind,
  count(*) filter (where j.status = 'queued' and j.run_at <= now()) as ready,
  count(*) filter (where j.status = 'queued' and j.run_at > now()) as scheduled,
  count(*) filter (where j.status = 'queued' and j.last_error is not null) as failed,
  count(*) filter (where j.status = 'running') as running,
  count(*) filter (where j.status = 'dead') as dead,
  count(*) filter (where j.status = 'succeeded') as succeeded,
  min(j.run_at) filter (where j.status = 'queued' and j.run_at <= now()) as oldest_ready_at,
  coalesce(extract(epoch from now() - min(j.run_at) filter (where j.status = 'queued' and j.run_at <= now())), 0)::double precision
    as oldest_ready_age_s,
  (array_agg(j.last_error order by j.updated_at desc) filter (where j.status = 'dead'))[1] as last_dead_error
from public.jobs j
group by j.queue, j.kind;

revoke all on public.job_queue_stats from anon, authenticated;
grant select on public.job_queue_stats to authenticated, service_role;

-- Fleet: worker registrations, heartbeats and bot leases.
-- A worker registers, heartbeats (which also extends the locks of the jobs it runs) and
-- is marked dead by its peers when its heartbeat is stale: its jobs go back to the queue
-- and its leases are freed at once. A running bot is leased to exactly one worker; the
-- lease's epoch grows on every acquisition that is not a renewal, and orders/trades carry
-- it (private.check_lease_epoch rejects stale epochs). Lease rows are never deleted, so an
-- epoch never goes back.
create or replace function public.register_worker(
  p_name text,
  p_host text,
  p_pid integer,
  p_version text,
  p_queues text[] default '{default}',
  p_capacity integer default 1000,
  p_metadata jsonb default '{}'
) returns uuid
language sql
set search_path = ''
as $$
  insert into public.workers (name, host, pid, version, queues, capacity, metadata)
  values (p_name, p_host, p_pid, p_version, p_queues, p_capacity, coalesce(p_metadata, '{}'))
  returning id;
$$;

revoke execute on function public.register_worker(text, text, integer, text, text[], integer, jsonb)
  from public, anon, authenticated;
grant execute on function public.register_worker(text, text, integer, text, text[], integer, jsonb)
  to service_role;

-- The worker is alive: stamp it and push the visibility timeout of the jobs it says it
-- still runs (p_job_ids) p_lock_s into the future. A worker its peers had marked dead (it was paused or
-- partitioned) comes back as running; its old jobs and leases are already gone.
-- Returns the worker's status ('running', 'draining'), or null if it is unknown.
create or replace function public.worker_heartbeat(
  p_worker_id uuid,
  p_lock_s double precision default 30,
  p_job_ids bigint[] default '{}'
) returns text
language plpgsql
set search_path = ''
as $$
declare
  v_status text;
begin
  update public.workers w
  set heartbeat_at = now(),
      status = case when w.status in ('dead', 'stopped') then 'running' else w.status end,
      stopped_at = case when w.status in ('dead', 'stopped') then null else w.stopped_at end
  where w.id = p_worker_id
  returning w.status into v_status;
  if v_status is not null and cardinality(p_job_ids) > 0 then
    update public.jobs j
    set locked_until = now() + make_interval(secs => p_lock_s), updated_at = now()
    where j.id = any (p_job_ids) and j.locked_by = p_worker_id and j.status = 'running';
  end if;
  return v_status;
end;
$$;

revoke execute on function public.worker_heartbeat(uuid, double precision, bigint[]) from public, anon, authenticated;
grant execute on function public.worker_heartbeat(uuid, double precision, bigint[]) to service_role;

-- Requeue a worker's running jobs and free its leases (it stopped or died).
create or replace function private.fleet_forget_worker(p_worker_id uuid, p_reason text) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_queues text[];
begin
  with moved as (
    update public.jobs j
    set status = case when j.attempts < j.max_attempts then 'queued' else 'dead' end,
        run_at = now(),
        finished_at = case when j.attempts < j.max_attempts then null else now() end,
        last_error = p_reason || ' during attempt ' || j.attempts,
        locked_by = null, locked_until = null, updated_at = now()
    where j.locked_by = p_worker_id and j.status = 'running'
    returning j.queue
  )
  select array_agg(distinct moved.queue) into v_queues from moved;
  if v_queues is not null then
    perform pg_notify('tradefleet_jobs', q) from unnest(v_queues) q;
  end if;
  update public.bot_leases l set worker_id = null, expires_at = least(l.expires_at, now())
  where l.worker_id = p_worker_id;
end;
$$;

revoke all on function private.fleet_forget_worker(uuid, text) from public, anon, authenticated;
grant execute on function private.fleet_forget_worker(uuid, text) to service_role;

create or replace function public.set_worker_status(p_worker_id uuid, p_status text) returns void
language plpgsql
set search_path = ''
as $$
begin
  if p_status not in ('running', 'draining', 'stopped') then
    raise exception 'a worker can set itself running, draining or stopped, not %', p_status
      using errcode = 'check_violation';
  end if;
  update public.workers w
  set status = p_status,
      heartbeat_at = now(),
      stopped_at = case when p_status = 'stopped' then now() else null end
  where w.id = p_worker_id;
  if p_status = 'stopped' then
    perform private.fleet_forget_worker(p_worker_id, 'worker ' || p_worker_id || ' stopped');
  end if;
end;
$$;

revoke execute on function public.set_worker_status(uuid, text) from public, anon, authenticated;
grant execute on function public.set_worker_status(uuid, text) to service_role;

-- Peers call this on a schedule: workers silent for p_stale_s are dead; their jobs run
-- again elsewhere right away and their bots become free to take over. Returns how many.
create or replace function public.mark_dead_workers(p_stale_s double precision) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_id uuid;
  v_n integer := 0;
begin
  for v_id in
    update public.workers w
    set status = 'dead', stopped_at = now()
    where w.status in ('running', 'draining')
      and w.heartbeat_at < now() - make_interval(secs => p_stale_s)
    returning w.id
  loop
    perform private.fleet_forget_worker(v_id, 'worker ' || v_id || ' stopped heartbeating');
    v_n := v_n + 1;
  end loop;
  return v_n;
end;
$$;

revoke execute on function public.mark_dead_workers(double precision) from public, anon, authenticated;
grant execute on function public.mark_dead_workers(double precision) to service_role;

-- Acquire and renew this worker's bot leases; returns every lease it holds afterwards.
-- Balanced spreading: the running bots are shared among the live lease-holding workers
-- (status 'running', heartbeat within p_live_s, metadata.leases = true) by water-filling
-- their capacities; a worker over its share releases its newest leases so a newcomer picks
-- them up, a worker under its share takes free or expired leases. One advisory lock
-- serialises the decisions, so two workers never race for a bot.
create or replace function public.acquire_bot_leases(
  p_worker_id uuid,
  p_ttl_s double precision,
  p_live_s double precision default null
) returns table (bot_id uuid, epoch bigint)
language plpgsql
set search_path = ''
as $$
declare
  v_status text;
  v_capacity integer;
  v_bots integer;
  v_left integer;
  v_workers integer;
  v_target integer := 0;
  v_share integer;
  v_held integer;
  w record;
begin
  perform pg_advisory_xact_lock(hashtextextended('tradefleet:bot_leases', 0));

  select wk.status, wk.capacity into v_status, v_capacity from public.workers wk where wk.id = p_worker_id;
  if v_status is distinct from 'running' then
    -- Draining, stopped, dead or unknown: hold nothing.
    update public.bot_leases l set worker_id = null, expires_at = least(l.expires_at, now())
    where l.worker_id = p_worker_id;
    return;
  end if;

  -- Bots that stopped running are let go.
  update public.bot_leases l set worker_id = null, expires_at = least(l.expires_at, now())
  where l.worker_id = p_worker_id
    and not exists (select 1 from public.bots b where b.id = l.bot_id and b.status = 'running');

  select count(*) into v_bots from public.bots b where b.status = 'running';
  select count(*) into v_workers
  from public.workers wk
  where wk.id = p_worker_id
     or (wk.status = 'running' and coalesce((wk.metadata ->> 'leases')::boolean, false)
         and wk.heartbeat_at >= now() - make_interval(secs => coalesce(p_live_s, p_ttl_s)));

  -- Water-filling: workers whose capacity is below the fair share of what is left are
  -- saturated at their capacity; everyone else may hold up to ceil(left / workers left).
  -- Equal workers get equal targets, so who holds a bot only changes when one is over.
  v_left := v_bots;
  for w in
    select wk.id, wk.capacity
    from public.workers wk
    where wk.id = p_worker_id
       or (wk.status = 'running' and coalesce((wk.metadata ->> 'leases')::boolean, false)
           and wk.heartbeat_at >= now() - make_interval(secs => coalesce(p_live_s, p_ttl_s)))
    order by wk.capacity, wk.id
  loop
    v_share := ceil(v_left::numeric / greatest(v_workers, 1))::integer;
    if w.capacity >= v_share then
      v_target := least(v_share, v_capacity);
      exit;
    end if;
    if w.id = p_worker_id then
      v_target := w.capacity;
      exit;
    end if;
    v_left := greatest(v_left - w.capacity, 0);
    v_workers := v_workers - 1;
  end loop;

  -- Over the share: let the newest leases go.
  update public.bot_leases l set worker_id = null, expires_at = now()
  where l.bot_id in (
    select x.bot_id from public.bot_leases x
    where x.worker_id = p_worker_id and x.expires_at > now()
    order by x.acquired_at desc, x.bot_id
    offset v_target
  );

  -- Renew what is still held.
  update public.bot_leases l
  set expires_at = now() + make_interval(secs => p_ttl_s), renewed_at = now()
  where l.worker_id = p_worker_id and l.expires_at > now();
  get diagnostics v_held = row_count;

  -- Under the share: take free bots (never leased, released or expired), longest-free first.
  if v_held < v_target then
    insert into public.bot_leases as l (bot_id, worker_id, epoch, acquired_at, renewed_at, expires_at)
    select b.id, p_worker_id, 1, now(), now(), now() + make_interval(secs => p_ttl_s)
    from public.bots b
    left join public.bot_leases x on x.bot_id = b.id
    where b.status = 'running'
      and (x.bot_id is null or x.expires_at <= now() or x.worker_id is null)
    order by x.expires_at nulls first, b.id
    limit v_target - v_held
    on conflict on constraint bot_leases_pkey do update
      set worker_id = excluded.worker_id,
          epoch = l.epoch + 1,
          acquired_at = excluded.acquired_at,
          renewed_at = excluded.renewed_at,
          expires_at = excluded.expires_at
      where l.expires_at <= now() or l.worker_id is null;
  end if;

  return query
    select l.bot_id, l.epoch from public.bot_leases l
    where l.worker_id = p_worker_id and l.expires_at > now()
    order by l.bot_id;
end;
$$;

revoke execute on function public.acquire_bot_leases(uuid, double precision, double precision)
  from public, anon, authenticated;
grant execute on function public.acquire_bot_leases(uuid, double precision, double precision) to service_role;

-- Let leases go (all of this worker's, or the given bots'): on shutdown or when a bot
-- runner gives a bot up. The next holder's acquisition grows the epoch.
create or replace function public.release_bot_leases(p_worker_id uuid, p_bot_ids uuid[] default null)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_n integer;
begin
  update public.bot_leases l set worker_id = null, expires_at = least(l.expires_at, now())
  where l.worker_id = p_worker_id and (p_bot_ids is null or l.bot_id = any (p_bot_ids));
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;

revoke execute on function public.release_bot_leases(uuid, uuid[]) from public, anon, authenticated;
grant execute on function public.release_bot_leases(uuid, uuid[]) to service_role;

-- Operators: one row per worker that is alive or stopped within the last day, with its
-- load and how far behind its queues are. security_invoker: admins read it through RLS.
create or replace view public.fleet_health
with (security_invoker = true)
as
select
  w.id,
  w.name,
  w.host,
  w.pid,
  w.version,
  w.status,
  w.queues,
  w.capacity,
  w.started_at,
  w.heartbeat_at,
  extract(epoch from now() - w.heartbeat_at)::double precision as heartbeat_age_s,
  (select count(*) from public.jobs j where j.locked_by = w.id and j.status = 'running') as running_jobs,
  (select count(*) from public.bot_leases l where l.worker_id = w.id and l.expires_at > now()) as leased_bots,
  coalesce((
    select extract(epoch from now() - min(j.run_at))::double precision
    from public.jobs j
    where j.status = 'queued' and j.run_at <= now() and j.queue = any (w.queues)
  ), 0) as queue_lag_s
from public.workers w
where w.status in ('running', 'draining') or w.heartbeat_at > now() - interval '1 day';

revoke all on public.fleet_health from anon, authenticated;
grant select on public.fleet_health to authenticated, service_role;

-- ======================================================================================
-- Realtime
-- ======================================================================================

alter publication supabase_realtime add table public.jobs;
