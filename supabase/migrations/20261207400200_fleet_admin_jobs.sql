-- Operators act on jobs that went wrong: retry a dead (or discarded, or failed and
-- waiting for its next attempt) job now, or discard a dead or failed one with a reason.
-- Both write the audit log (admin_audit_log) with the job's state before and after.
-- Running and succeeded jobs are the fleet's and are left alone.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

-- Dead jobs, newest first, for the console's queue page.
create index jobs_dead_idx on public.jobs (finished_at desc) where status = 'dead';

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

-- What the audit log keeps of a job.
create or replace function private.job_audit_state(p_job public.jobs) returns jsonb
language sql immutable
set search_path = ''
as $$
  select jsonb_build_object('status', p_job.status, 'attempts', p_job.attempts, 'max_attempts', p_job.max_attempts,
                            'run_at', p_job.run_at, 'last_error', p_job.last_error)
$$;

revoke all on function private.job_audit_state(public.jobs) from public, anon, authenticated;

-- Retry a job now: 'dead', 'cancelled', or 'queued' after a failure. It keeps its history
-- (attempts, last_error) and gets one more attempt if it had used them all.
create or replace function public.admin_retry_job(p_job_id bigint) returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_actor uuid := private.require_admin();
  v_before public.jobs;
  v_after public.jobs;
begin
  select * into v_before from public.jobs j where j.id = p_job_id for update;
  if not found then
    raise exception 'no such job: %', p_job_id using errcode = 'no_data_found';
  end if;
  if not (v_before.status in ('dead', 'cancelled') or (v_before.status = 'queued' and v_before.last_error is not null)) then
    raise exception 'job % is %; only dead, discarded or failed jobs are retried', p_job_id, v_before.status
      using errcode = 'check_violation', constraint = 'jobs_retry_dead_or_failed';
  end if;
  update public.jobs j
     set status = 'queued',
         run_at = now(),
         max_attempts = greatest(j.max_attempts, j.attempts + 1),
         finished_at = null,
         locked_by = null,
         locked_until = null,
         updated_at = now()
   where j.id = p_job_id
  returning * into v_after;
  perform pg_notify('tradefleet_jobs', v_after.queue);
  perform private.admin_audit(v_actor, 'retry_job', 'job', p_job_id::text, null,
                              private.job_audit_state(v_before), private.job_audit_state(v_after));
  return v_after;
end;
$$;

revoke execute on function public.admin_retry_job(bigint) from public, anon;
grant execute on function public.admin_retry_job(bigint) to authenticated, service_role;

-- Discard a dead job, or a failed one waiting for its next attempt: it is cancelled and
-- never runs again (unless retried). prune_jobs removes it with the rest of the history.
create or replace function public.admin_discard_job(p_job_id bigint, p_reason text) returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_actor uuid := private.require_admin();
  v_before public.jobs;
  v_after public.jobs;
begin
  perform private.admin_check_reason(p_reason);
  select * into v_before from public.jobs j where j.id = p_job_id for update;
  if not found then
    raise exception 'no such job: %', p_job_id using errcode = 'no_data_found';
  end if;
  if not (v_before.status = 'dead' or (v_before.status = 'queued' and v_before.last_error is not null)) then
    raise exception 'job % is %; only dead or failed jobs are discarded', p_job_id, v_before.status
      using errcode = 'check_violation', constraint = 'jobs_discard_dead_or_failed';
  end if;
  update public.jobs j
     set status = 'cancelled', finished_at = now(), locked_by = null, locked_until = null, updated_at = now()
   where j.id = p_job_id
  returning * into v_after;
  perform private.admin_audit(v_actor, 'discard_job', 'job', p_job_id::text, p_reason,
                              private.job_audit_state(v_before), private.job_audit_state(v_after));
  return v_after;
end;
$$;

revoke execute on function public.admin_discard_job(bigint, text) from public, anon;
grant execute on function public.admin_discard_job(bigint, text) to authenticated, service_role;
