-- One lock order for bot leases: every statement that changes bot_leases rows first locks
-- them with `select ... order by bot_id for update`, the order public.bot_apply_steps locks
-- them in (for share) before it writes a step. Acquisition, renewal, release and forgetting
-- a dead worker therefore never wait for a step while holding a lease row the step needs
-- next, so they cannot deadlock with it (or with each other). The whole order is
-- documented in docs/architecture.md: bot_leases (bot-id order) -> bots -> step rows
-- (orders, trades, logs) -> credit accounts and transfers.

-- Functions -----------------------------------------------------------------------------

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
  perform 1 from public.bot_leases l where l.worker_id = p_worker_id order by l.bot_id for update;
  update public.bot_leases l set worker_id = null, expires_at = least(l.expires_at, now())
  where l.worker_id = p_worker_id;
end;
$$;

revoke all on function private.fleet_forget_worker(uuid, text) from public, anon, authenticated;
grant execute on function private.fleet_forget_worker(uuid, text) to service_role;

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
  v_take uuid[];
  w record;
begin
  perform pg_advisory_xact_lock(hashtextextended('tradefleet:bot_leases', 0));

  select wk.status, wk.capacity into v_status, v_capacity from public.workers wk where wk.id = p_worker_id;
  if v_status is distinct from 'running' then
    -- Draining, stopped, dead or unknown: hold nothing.
    perform 1 from public.bot_leases l where l.worker_id = p_worker_id order by l.bot_id for update;
    update public.bot_leases l set worker_id = null, expires_at = least(l.expires_at, now())
    where l.worker_id = p_worker_id;
    return;
  end if;

  -- Every lease row this call may change is locked first, in bot-id order (the order
  -- public.bot_apply_steps locks them in): this worker's own, then free ones it may take.
  perform 1 from public.bot_leases l where l.worker_id = p_worker_id order by l.bot_id for update;

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
  -- The chosen ones are locked in bot-id order before they are taken.
  if v_held < v_target then
    select coalesce(array_agg(c.id), '{}') into v_take
    from (select b.id
          from public.bots b
          left join public.bot_leases x on x.bot_id = b.id
          where b.status = 'running'
            and (x.bot_id is null or x.expires_at <= now() or x.worker_id is null)
          order by x.expires_at nulls first, b.id
          limit v_target - v_held) c;
    perform 1 from public.bot_leases l where l.bot_id = any (v_take) order by l.bot_id for update;
    insert into public.bot_leases as l (bot_id, worker_id, epoch, acquired_at, renewed_at, expires_at)
    select t.id, p_worker_id, 1, now(), now(), now() + make_interval(secs => p_ttl_s)
    from unnest(v_take) as t(id)
    order by t.id
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
  perform 1 from public.bot_leases l
  where l.worker_id = p_worker_id and (p_bot_ids is null or l.bot_id = any (p_bot_ids))
  order by l.bot_id for update;
  update public.bot_leases l set worker_id = null, expires_at = least(l.expires_at, now())
  where l.worker_id = p_worker_id and (p_bot_ids is null or l.bot_id = any (p_bot_ids));
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;

revoke execute on function public.release_bot_leases(uuid, uuid[]) from public, anon, authenticated;
grant execute on function public.release_bot_leases(uuid, uuid[]) to service_role;
