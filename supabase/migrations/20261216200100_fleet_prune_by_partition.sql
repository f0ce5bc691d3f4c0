-- Retention of the webhook inbox and notifications deletes from the partitions it means,
-- by name, one at a time.
--
-- private.prune_history found the history of public.webhook_events and
-- public.notifications through the parent with `tableoid in (_kept, _default)`. The
-- planner cannot prune partitions on tableoid: every statement planned, locked and probed
-- every weekly partition (a Merge Append over each week's index), although only `_kept`
-- and the default partition hold rows of that age (the weeks older than the keep are
-- folded away, the newer weeks hold nothing old enough). A batch now deletes from
-- `<table>_kept` and then, for what is left of the batch, from `<table>_default`, each
-- named directly: the weekly partitions are neither planned nor locked nor read. What is
-- history is unchanged (a processed or ignored event by processed_at, a read
-- notification by read_at), oldest first within each partition, rows another transaction
-- holds skipped. A delete through the parent fired its statement trigger
-- webhook_events_console_notify; a delete from a partition does not, so the batch sends
-- the console its 'webhooks' notification itself when events went. Row triggers fire as
-- before (they are every partition's).
--
-- fold_history_partitions asks private.history_kept_end whether `_kept` is attached
-- instead of repeating its catalog lookup.

-- ======================================================================================
-- Functions
-- ======================================================================================

-- One batch of one history: at most p_batch of its rows older than p_before, oldest
-- first, skipping rows another transaction holds. What counts as history:
--   bot_logs        every log line, by created_at; only the rows of its default
--                   partition (its weekly partitions go whole: drop_history_partitions)
--   webhook_events  processed or ignored events, by processed_at; only the rows of its
--                   `_kept` partition, then of its default partition (its weeks are folded)
--   notifications   read notifications, by read_at; only the rows of its `_kept`
--                   partition, then of its default partition (its weeks are folded)
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
  v_part text;
  v_rows integer;
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
    when 'webhook_events', 'notifications' then
      v_n := 0;
      -- `_kept` only while it is attached (private.history_kept_end); the default
      -- partition always is.
      foreach v_part in array array[case when private.history_kept_end(p_history) is not null
                                         then p_history || '_kept' end,
                                    p_history || '_default'] loop
        continue when v_part is null or v_n >= p_batch;
        if p_history = 'webhook_events' then
          execute pg_catalog.format(
            'with doomed as ('
            '  select e.id, e.received_at from partitions.%1$I e'
            '   where e.status in (''processed'', ''ignored'') and e.processed_at < $1'
            '   order by e.processed_at limit $2 for update skip locked) '
            'delete from partitions.%1$I e using doomed'
            ' where e.id = doomed.id and e.received_at = doomed.received_at'
            '   and e.status in (''processed'', ''ignored'')', v_part)
            using p_before, p_batch - v_n;
        else
          execute pg_catalog.format(
            'with doomed as ('
            '  select n.id, n.created_at from partitions.%1$I n'
            '   where n.read_at is not null and n.read_at < $1'
            '   order by n.read_at limit $2 for update skip locked) '
            'delete from partitions.%1$I n using doomed'
            ' where n.id = doomed.id and n.created_at = doomed.created_at'
            '   and n.read_at is not null', v_part)
            using p_before, p_batch - v_n;
        end if;
        get diagnostics v_rows = row_count;
        v_n := v_n + v_rows;
      end loop;
      if p_history = 'webhook_events' and v_n > 0 then
        perform pg_catalog.pg_notify('tradefleet_console', 'webhooks');
      end if;
      return v_n;
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

-- Whether `_kept` is attached, for private.prune_history (which runs as the service role).
grant execute on function private.history_kept_end(text) to service_role;

-- Fold the partitions of p_table that end at or before p_before into `<p_table>_kept`:
-- detach them and `_kept`, copy into `_kept` the rows that stay at p_cutoff (the table's
-- `kept` condition), delete from `_kept` the rows that no longer stay, move in the rows of
-- the default partition older than p_before, drop the folded partitions and attach
-- `_kept` from MINVALUE to the end of the last one. Returns how many partitions went.
create or replace function private.fold_history_partitions(p_table text, p_before timestamptz, p_cutoff timestamptz)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_key text;
  v_kept text;
  v_parent regclass := pg_catalog.format('public.%I', p_table)::regclass;
  v_name text := p_table || '_kept';
  v_exists boolean;
  v_hi timestamptz;
  v_part record;
  v_n integer := 0;
begin
  select h.partition_key, h.kept into v_key, v_kept from private.history_partitions h where h.table_name = p_table;
  if v_kept is null then
    raise exception 'fold_history_partitions: % keeps no rows of old partitions', p_table using errcode = '22023';
  end if;
  v_exists := private.history_kept_end(p_table) is not null;
  select pg_catalog.max(r.hi) into v_hi
    from pg_catalog.pg_inherits i cross join lateral private.history_partition_range(i.inhrelid::regclass) r
   where i.inhparent = v_parent and r.hi is not null and r.hi <= p_before;
  if v_hi is null then
    if v_exists then
      return 0;
    end if;
    -- No week to fold yet: `_kept` starts empty, up to the first week.
    select pg_catalog.min(r.lo) into v_hi
      from pg_catalog.pg_inherits i cross join lateral private.history_partition_range(i.inhrelid::regclass) r
     where i.inhparent = v_parent and r.lo is not null;
    if v_hi is null then
      return 0;
    end if;
  end if;
  if v_exists then
    execute pg_catalog.format('alter table public.%I detach partition partitions.%I', p_table, v_name);
    execute pg_catalog.format('delete from partitions.%I t where not (%s)', v_name, v_kept) using p_cutoff;
  else
    execute pg_catalog.format('create table partitions.%I (like public.%I including defaults including constraints)',
                              v_name, p_table);
  end if;
  for v_part in
    select c.relname
      from pg_catalog.pg_inherits i
      join pg_catalog.pg_class c on c.oid = i.inhrelid
      cross join lateral private.history_partition_range(c.oid::regclass) r
     where i.inhparent = v_parent and r.hi is not null and r.hi <= v_hi
     order by r.hi
  loop
    execute pg_catalog.format('alter table public.%I detach partition partitions.%I', p_table, v_part.relname);
    execute pg_catalog.format('insert into partitions.%I select * from partitions.%I t where %s',
                              v_name, v_part.relname, v_kept) using p_cutoff;
    execute pg_catalog.format('drop table partitions.%I', v_part.relname);
    v_n := v_n + 1;
  end loop;
  -- Rows of weeks that had no partition wait in the default one; those in the new range move.
  execute pg_catalog.format(
    'with moved as (delete from partitions.%I t where t.%I < $2 returning *) '
    'insert into partitions.%I select * from moved t where %s',
    p_table || '_default', v_key, v_name, v_kept) using p_cutoff, v_hi;
  execute pg_catalog.format('alter table public.%I attach partition partitions.%I for values from (minvalue) to (%L)',
                            p_table, v_name, v_hi);
  execute pg_catalog.format('revoke all on table partitions.%I from public, anon, authenticated', v_name);
  execute pg_catalog.format('grant select, update, delete on table partitions.%I to service_role', v_name);
  return v_n;
end;
$$;

revoke all on function private.fold_history_partitions(text, timestamptz, timestamptz) from public, anon, authenticated, service_role;
