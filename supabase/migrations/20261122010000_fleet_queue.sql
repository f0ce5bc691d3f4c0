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
    select j.id
    from public.jobs j
    where j.status = 'queued'
      and j.queue = any (p_queues)
      and j.run_at <= now()
      and (p_kinds is null or j.kind = any (p_kinds))
    order by j.priority desc, j.run_at, j.id
    limit greatest(p_limit, 0)
    for update skip locked
  )
  update public.jobs j
  set status = 'running',
      attempts = j.attempts + 1,
      locked_by = p_worker_id,
      locked_until = now() + make_interval(secs => p_lock_s),
      started_at = now(),
      updated_at = now()
  from ready
  where j.id = ready.id
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
