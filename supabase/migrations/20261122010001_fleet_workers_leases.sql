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

-- The worker is alive: stamp it and push the visibility timeout of every job it runs
-- p_lock_s into the future. A worker its peers had marked dead (it was paused or
-- partitioned) comes back as running; its old jobs and leases are already gone.
-- Returns the worker's status ('running', 'draining'), or null if it is unknown.
create or replace function public.worker_heartbeat(
  p_worker_id uuid,
  p_lock_s double precision default 30
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
  if v_status is not null then
    update public.jobs j
    set locked_until = now() + make_interval(secs => p_lock_s), updated_at = now()
    where j.locked_by = p_worker_id and j.status = 'running';
  end if;
  return v_status;
end;
$$;
revoke execute on function public.worker_heartbeat(uuid, double precision) from public, anon, authenticated;
grant execute on function public.worker_heartbeat(uuid, double precision) to service_role;

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
