-- mark_dead_workers forgot each dead worker in turn, locking that worker's leases in bot-id
-- order, then the next worker's: across two dead workers the rows were not in bot-id order,
-- so a worker taking their expired leases over (acquire_bot_leases locks the ones it takes
-- in bot-id order) could deadlock with it. Every dead worker's lease rows are now locked
-- first, in one bot-id order, before any of them is forgotten.
create or replace function public.mark_dead_workers(p_stale_s double precision) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_dead uuid[];
  v_id uuid;
begin
  with dead as (
    update public.workers w
    set status = 'dead', stopped_at = now()
    where w.status in ('running', 'draining')
      and w.heartbeat_at < now() - make_interval(secs => p_stale_s)
    returning w.id
  )
  select coalesce(array_agg(dead.id order by dead.id), '{}') into v_dead from dead;
  perform 1 from public.bot_leases l where l.worker_id = any (v_dead) order by l.bot_id for update;
  foreach v_id in array v_dead loop
    perform private.fleet_forget_worker(v_id, 'worker ' || v_id || ' stopped heartbeating');
  end loop;
  return cardinality(v_dead);
end;
$$;
revoke execute on function public.mark_dead_workers(double precision) from public, anon, authenticated;
grant execute on function public.mark_dead_workers(double precision) to service_role;
