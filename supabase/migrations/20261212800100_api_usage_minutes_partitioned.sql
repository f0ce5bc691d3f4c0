-- API usage: the per-minute rollups (public.api_usage_minutes) partitioned by day of
-- `minute` with the conversion of partitioned history (private.partition_history_table):
-- every row moved and checked, the key, foreign keys, index, policy, grants, the view
-- api_usage_per_minute and Realtime's feed kept. The per-minute rows are for the last days'
-- charts; the per-day rollups (api_usage_days) keep the long history. fleet.prune drops
-- the days older than API_USAGE_MINUTES_KEEP_S (30 days by default) whole, and deletes in
-- batches the old rows of the default partition (rows of days without a partition).
--
-- A day, not a week: a user's minutes are read by key or user and a recent time range, so
-- a statement prunes to the days it needs, and retention then keeps at most a day beyond
-- the keep; 33 or so daily partitions are planned only by a statement without a time range.

-- ======================================================================================
-- Functions
-- ======================================================================================

create or replace function public.prune_history(p_history text, p_keep interval, p_batch integer default 1000)
returns integer
language plpgsql
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'prune_history is for the fleet only' using errcode = '42501';
  end if;
  if p_history is null
     or p_history not in ('bot_logs', 'webhook_events', 'notifications', 'jobs', 'service_checks', 'api_usage_minutes') then
    raise exception 'prune_history: history must be bot_logs, webhook_events, notifications, jobs, service_checks or api_usage_minutes'
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

-- ======================================================================================
-- api_usage_minutes: daily partitions by minute, from the oldest row of the last 33 days
-- (the default keep is 30) to three days ahead; older rows go to the default partition,
-- which fleet.prune empties.
-- ======================================================================================

do $$
declare
  v_from timestamptz;
begin
  select greatest(coalesce(min(m.minute), now()), now() - interval '33 days') into v_from from public.api_usage_minutes m;
  perform private.partition_history_table('api_usage_minutes', 'minute', interval '1 day', least(v_from, now()),
                                          now() + interval '3 days', interval '3 days');
end;
$$;

-- ======================================================================================
-- Retention of the default partition
-- ======================================================================================

-- One batch of one history: at most p_batch of its rows older than p_before, oldest
-- first, skipping rows another transaction holds. What counts as history:
--   bot_logs        every log line, by created_at; only the rows of its default
--                   partition (its weekly partitions go whole: drop_history_partitions)
--   webhook_events  processed or ignored events, by processed_at
--   notifications   read notifications, by read_at
--   jobs            succeeded and cancelled jobs, by finished_at
--   service_checks  every check, by checked_at
--   api_usage_minutes  every per-minute rollup, by minute; only the rows of its default
--                   partition (its daily partitions go whole: drop_history_partitions)
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
        select l.id, l.created_at from partitions.bot_logs_default l
         where l.created_at < p_before
         order by l.created_at
         limit p_batch
           for update skip locked
      )
      delete from partitions.bot_logs_default l using doomed
       where l.id = doomed.id and l.created_at = doomed.created_at;
    when 'api_usage_minutes' then
      with doomed as (
        select m.key_id, m.minute, m.endpoint, m.status from partitions.api_usage_minutes_default m
         where m.minute < p_before
         order by m.minute
         limit p_batch
           for update skip locked
      )
      delete from partitions.api_usage_minutes_default m using doomed
       where m.key_id = doomed.key_id and m.minute = doomed.minute
         and m.endpoint = doomed.endpoint and m.status = doomed.status;
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
