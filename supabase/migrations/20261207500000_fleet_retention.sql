-- Fleet: retention of the history tables. bot_logs, processed webhook_events, read
-- notifications and finished jobs are history: public.prune_history deletes one small
-- batch of one of them older than a given age, and the fleet's periodic job fleet.prune
-- (worker/fleet/retention.py) calls it batch after batch, each in its own transaction,
-- so no delete holds row locks or a snapshot for long and writers are never blocked:
-- rows a writer holds are skipped (for update skip locked) and taken at the next run.
-- Replaces prune_jobs, which deleted every old finished job in one statement.
-- Service role only.

-- ======================================================================================
-- Indexes: each batch finds its oldest rows without scanning the table.
-- ======================================================================================

create index bot_logs_created_at_idx on public.bot_logs (created_at);
create index webhook_events_done_idx on public.webhook_events (processed_at)
  where status in ('processed', 'ignored');
create index notifications_read_at_idx on public.notifications (read_at) where read_at is not null;
create index jobs_finished_idx on public.jobs (finished_at) where status in ('succeeded', 'cancelled');

-- ======================================================================================
-- Functions
-- ======================================================================================

drop function public.prune_jobs(interval);

-- One batch of one history: at most p_batch of its rows older than p_before, oldest
-- first, skipping rows another transaction holds. What counts as history:
--   bot_logs        every log line, by created_at
--   webhook_events  processed or ignored events, by processed_at (received and failed
--                   events wait for the fleet or an operator)
--   notifications   read notifications, by read_at (unread ones stay)
--   jobs            succeeded and cancelled jobs, by finished_at (dead jobs wait for an
--                   operator, queued and running ones are work)
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
  if p_history is null or p_history not in ('bot_logs', 'webhook_events', 'notifications', 'jobs') then
    raise exception 'prune_history: history must be bot_logs, webhook_events, notifications or jobs'
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
