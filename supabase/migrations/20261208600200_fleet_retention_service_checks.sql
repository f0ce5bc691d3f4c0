-- Fleet: retention of service_checks, the history of the services' health checks
-- (ops area). public.prune_history takes 'service_checks' as a fifth history: every
-- check older than the keep, by checked_at (service_checks_checked_at_idx). The current
-- state of each service (service_status) is not history and stays.
-- Service role only.

-- ======================================================================================
-- Functions
-- ======================================================================================

-- One batch of one history: at most p_batch of its rows older than p_before, oldest
-- first, skipping rows another transaction holds. What counts as history:
--   bot_logs        every log line, by created_at
--   webhook_events  processed or ignored events, by processed_at
--   notifications   read notifications, by read_at
--   jobs            succeeded and cancelled jobs, by finished_at
--   service_checks  every check, by checked_at
create or replace function private.prune_history(p_history text, p_before timestamptz, p_batch integer)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_n integer;
begin
  case p_history
    when 'bot_logs' then
      with doomed as (
        select l.id from public.bot_logs l
         where l.created_at < p_before
         order by l.created_at
         limit p_batch
           for update skip locked
      )
      delete from public.bot_logs l using doomed where l.id = doomed.id;
    when 'webhook_events' then
      with doomed as (
        select e.id from public.webhook_events e
         where e.status in ('processed', 'ignored') and e.processed_at < p_before
         order by e.processed_at
         limit p_batch
           for update skip locked
      )
      delete from public.webhook_events e using doomed
       where e.id = doomed.id and e.status in ('processed', 'ignored');
    when 'notifications' then
      with doomed as (
        select n.id from public.notifications n
         where n.read_at is not null and n.read_at < p_before
         order by n.read_at
         limit p_batch
           for update skip locked
      )
      delete from public.notifications n using doomed where n.id = doomed.id;
    when 'jobs' then
      with doomed as (
        select j.id from public.jobs j
         where j.status in ('succeeded', 'cancelled') and j.finished_at < p_before
         order by j.finished_at
         limit p_batch
           for update skip locked
      )
      delete from public.jobs j using doomed
       where j.id = doomed.id and j.status in ('succeeded', 'cancelled');
    when 'service_checks' then
      with doomed as (
        select c.id from public.service_checks c
         where c.checked_at < p_before
         order by c.checked_at
         limit p_batch
           for update skip locked
      )
      delete from public.service_checks c using doomed where c.id = doomed.id;
  end case;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;

revoke all on function private.prune_history(text, timestamptz, integer) from public, anon, authenticated;
grant execute on function private.prune_history(text, timestamptz, integer) to service_role;

-- The fleet's entry point: one batch of p_history older than p_keep; returns how many
-- rows it deleted (fewer than p_batch: nothing older is left but rows others hold).
create or replace function public.prune_history(p_history text, p_keep interval, p_batch integer default 1000)
returns integer
language plpgsql
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'prune_history is for the fleet only' using errcode = '42501';
  end if;
  if p_history is null or p_history not in ('bot_logs', 'webhook_events', 'notifications', 'jobs', 'service_checks') then
    raise exception 'prune_history: history must be bot_logs, webhook_events, notifications, jobs or service_checks'
      using errcode = '22023';
  end if;
  if p_keep is null or p_keep <= interval '0' or p_keep > interval '100 years' then
    raise exception 'prune_history: keep must be positive and at most 100 years' using errcode = '22023';
  end if;
  if p_batch is null or p_batch < 1 or p_batch > 10000 then
    raise exception 'prune_history: batch must be between 1 and 10000' using errcode = '22023';
  end if;
  return private.prune_history(p_history, now() - p_keep, p_batch);
end;
$$;

revoke execute on function public.prune_history(text, interval, integer) from public, anon, authenticated;
grant execute on function public.prune_history(text, interval, integer) to service_role;
