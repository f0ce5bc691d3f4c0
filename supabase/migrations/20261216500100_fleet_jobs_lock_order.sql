-- A worker's heartbeat extends its running jobs' locks while another of its connections
-- completes some of them: the heartbeat updated them in the order its scan met them,
-- complete_jobs in the order of its array (the order the jobs finished in), so two jobs
-- could be locked in opposite orders and deadlock. Both now lock the jobs in id order first.
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
    perform 1 from public.jobs j
    where j.id = any (p_job_ids) and j.locked_by = p_worker_id and j.status = 'running'
    order by j.id
    for update;
    update public.jobs j
    set locked_until = now() + make_interval(secs => p_lock_s), updated_at = now()
    where j.id = any (p_job_ids) and j.locked_by = p_worker_id and j.status = 'running';
  end if;
  return v_status;
end;
$$;
revoke execute on function public.worker_heartbeat(uuid, double precision, bigint[]) from public, anon, authenticated;
grant execute on function public.worker_heartbeat(uuid, double precision, bigint[]) to service_role;

create or replace function public.complete_jobs(
  p_worker_id uuid,
  p_job_ids bigint[],
  p_results jsonb[] default null
) returns setof bigint
language plpgsql
set search_path = ''
as $$
begin
  perform 1 from public.jobs j
  where j.id = any (p_job_ids) and j.status = 'running' and j.locked_by = p_worker_id
  order by j.id
  for update;
  return query
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
end;
$$;
revoke execute on function public.complete_jobs(uuid, bigint[], jsonb[]) from public, anon, authenticated;
grant execute on function public.complete_jobs(uuid, bigint[], jsonb[]) to service_role;
