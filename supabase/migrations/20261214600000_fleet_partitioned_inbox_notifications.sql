-- Fleet: the webhook inbox (public.webhook_events) and notifications (public.notifications)
-- become partitioned history, weekly by received_at and created_at, with the conversion
-- of partitioned history (private.partition_history_table): every row moved and checked,
-- keys, indexes, policies, grants, triggers and Realtime's feed kept.
--
-- Both keep some old rows: a webhook event that is not processed or ignored (failed,
-- waiting, received) and an unread notification stay whatever their age, and a processed
-- event or a read notification stays until processed_at or read_at is older than the
-- keep. So their retention folds rather than drops (private.fold_history_partitions): the
-- weeks older than the keep are detached, the rows they must keep are copied into one
-- partition `<table>_kept` (from MINVALUE to the end of the last week folded), the weeks
-- are dropped and `_kept` attached again. Nothing is deleted from or inserted into an
-- attached partition: no row trigger fires, Realtime publishes nothing, and the rows of
-- a week go with one `drop table`. public.prune_history deletes in batches only the rows
-- of `_kept` and of the default partition that became history since.
--
-- A webhook event is received once per (provider, event_id) for ever, also after its week
-- was dropped: a unique key on a partitioned table must contain the partition key, so the
-- key lives in a narrow table private.webhook_event_keys (primary key provider,
-- event_id), written by a trigger in the inserting transaction; a redelivery is skipped as
-- `on conflict do nothing` skipped it (its insert returns no row).

-- ======================================================================================
-- Tables
-- ======================================================================================

-- Which rows of a week older than the keep stay (a condition on the table's columns, $1
-- the cutoff: now() minus the keep); null: none, the week is dropped whole.
alter table private.history_partitions add column kept text;

-- Every (provider, event_id) ever received, and its event (which may have gone since).
create table private.webhook_event_keys (
  provider text not null,
  event_id text not null,
  id uuid not null,
  received_at timestamptz not null,
  constraint webhook_events_once_per_provider_event primary key (provider, event_id)
);
revoke all on table private.webhook_event_keys from public, anon, authenticated;
grant select on table private.webhook_event_keys to service_role;

insert into private.webhook_event_keys (provider, event_id, id, received_at)
select e.provider, e.event_id, e.id, e.received_at from public.webhook_events e;

alter table public.webhook_events drop constraint webhook_events_once_per_provider_event;

-- ======================================================================================
-- Functions
-- ======================================================================================

-- Before an event is stored: its key, once. A redelivery (the key exists for another
-- event) is skipped.
create or replace function private.webhook_events_once()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' then
    if new.provider is distinct from old.provider or new.event_id is distinct from old.event_id then
      raise exception 'webhook_events_key_fixed: an event keeps its provider and event id'
        using errcode = '23514';
    end if;
    return new;
  end if;
  insert into private.webhook_event_keys (provider, event_id, id, received_at)
  values (new.provider, new.event_id, new.id, new.received_at)
  on conflict on constraint webhook_events_once_per_provider_event do nothing;
  if found then
    return new;
  end if;
  -- An update of received_at into another week moves the event: a delete, then this
  -- insert of the same event (its id) into the other week's partition.
  update private.webhook_event_keys k set received_at = new.received_at
   where k.provider = new.provider and k.event_id = new.event_id and k.id = new.id;
  if found then
    return new;
  end if;
  return null;
end;
$$;

revoke all on function private.webhook_events_once() from public, anon, authenticated, service_role;

-- The end of `<p_table>_kept` (the partition from MINVALUE), or null when it has none.
create or replace function private.history_kept_end(p_table text)
returns timestamptz
language sql
stable
set search_path = ''
as $$
  select (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), $r$TO \('([^']+)'\)$r$))[1]::timestamptz
    from pg_catalog.pg_inherits i join pg_catalog.pg_class c on c.oid = i.inhrelid
   where i.inhparent = pg_catalog.format('public.%I', p_table)::regclass
     and i.inhrelid = pg_catalog.to_regclass(pg_catalog.format('partitions.%I', p_table || '_kept'));
$$;

revoke all on function private.history_kept_end(text) from public, anon, authenticated, service_role;

-- Make sure the step holding p_at has its partition of p_table; true if it was created.
-- Rows of that range waiting in the default partition move into it first. A step that
-- `_kept` covers (folded, or older than every week) gets none: its rows are in `_kept`.
create or replace function private.create_history_partition(p_table text, p_at timestamptz)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_key text := (select h.partition_key from private.history_partitions h where h.table_name = p_table);
  v_step interval := (select h.step from private.history_partitions h where h.table_name = p_table);
  v_lo timestamptz := private.history_step_start(v_step, p_at);
  v_hi timestamptz := case when v_step = interval '1 month'
                           then (v_lo at time zone 'UTC' + v_step) at time zone 'UTC' else v_lo + v_step end;
  v_name text := p_table || '_p' || pg_catalog.to_char(v_lo at time zone 'UTC', 'YYYYMMDD');
  v_default text := p_table || '_default';
  v_waiting boolean;
begin
  if v_key is null then
    raise exception 'create_history_partition: % is not partitioned history', p_table using errcode = '22023';
  end if;
  if pg_catalog.to_regclass(pg_catalog.format('partitions.%I', v_name)) is not null
     or v_lo < coalesce(private.history_kept_end(p_table), '-infinity') then
    return false;
  end if;
  execute pg_catalog.format('select exists (select 1 from partitions.%I where %I >= $1 and %I < $2)',
                            v_default, v_key, v_key)
     into v_waiting using v_lo, v_hi;
  if not v_waiting then
    execute pg_catalog.format('create table partitions.%I partition of public.%I for values from (%L) to (%L)',
                              v_name, p_table, v_lo, v_hi);
  else
    execute pg_catalog.format('create table partitions.%I (like public.%I including defaults including constraints)',
                              v_name, p_table);
    execute pg_catalog.format(
      'with moved as (delete from partitions.%I where %I >= $1 and %I < $2 returning *) '
      'insert into partitions.%I select * from moved', v_default, v_key, v_key, v_name)
      using v_lo, v_hi;
    execute pg_catalog.format('alter table public.%I attach partition partitions.%I for values from (%L) to (%L)',
                              p_table, v_name, v_lo, v_hi);
  end if;
  execute pg_catalog.format('revoke all on table partitions.%I from public, anon, authenticated', v_name);
  return true;
end;
$$;

revoke all on function private.create_history_partition(text, timestamptz) from public, anon, authenticated;

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
  v_exists := exists (select 1 from pg_catalog.pg_inherits i
                       where i.inhparent = v_parent
                         and i.inhrelid = pg_catalog.to_regclass(pg_catalog.format('partitions.%I', v_name)));
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

-- Retention by partition: every partition of p_history whose whole range is older than
-- p_keep goes (dropped, or folded into `_kept` for a history that keeps some old rows);
-- returns how many went. The default partition is never dropped (public.prune_history
-- deletes its old rows).
create or replace function public.drop_history_partitions(p_history text, p_keep interval)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_part record;
  v_n integer := 0;
begin
  if not private.is_service() then
    raise exception 'drop_history_partitions is for the fleet only' using errcode = '42501';
  end if;
  if p_history is null or not exists (select 1 from private.history_partitions h where h.table_name = p_history) then
    raise exception 'drop_history_partitions: history must be one of %',
      (select pg_catalog.string_agg(h.table_name, ', ' order by h.table_name) from private.history_partitions h)
      using errcode = '22023';
  end if;
  if p_keep is null or p_keep <= interval '0' or p_keep > interval '100 years' then
    raise exception 'drop_history_partitions: keep must be positive and at most 100 years' using errcode = '22023';
  end if;
  perform pg_catalog.set_config('lock_timeout', '5s', true);
  if (select h.kept from private.history_partitions h where h.table_name = p_history) is not null then
    return private.fold_history_partitions(p_history, now() - p_keep, now() - p_keep);
  end if;
  for v_part in
    select c.oid::regclass as part, c.relname, r.hi
      from pg_catalog.pg_inherits i
      join pg_catalog.pg_class c on c.oid = i.inhrelid
      cross join lateral private.history_partition_range(c.oid::regclass) r
     where i.inhparent = pg_catalog.format('public.%I', p_history)::regclass
       and r.hi is not null and r.hi <= now() - p_keep
     order by r.hi
  loop
    execute pg_catalog.format('alter table public.%I detach partition partitions.%I', p_history, v_part.relname);
    execute pg_catalog.format('drop table partitions.%I', v_part.relname);
    v_n := v_n + 1;
  end loop;
  return v_n;
end;
$$;

revoke all on function public.drop_history_partitions(text, interval) from public, anon, authenticated;
grant execute on function public.drop_history_partitions(text, interval) to service_role;

-- One batch of one history: at most p_batch of its rows older than p_before, oldest
-- first, skipping rows another transaction holds. What counts as history:
--   bot_logs        every log line, by created_at; only the rows of its default
--                   partition (its weekly partitions go whole: drop_history_partitions)
--   webhook_events  processed or ignored events, by processed_at; only the rows of its
--                   `_kept` and default partitions (its weeks are folded)
--   notifications   read notifications, by read_at; only the rows of its `_kept` and
--                   default partitions (its weeks are folded)
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
        select e.tableoid, e.id, e.received_at from public.webhook_events e
         where e.tableoid in ('partitions.webhook_events_kept'::regclass, 'partitions.webhook_events_default'::regclass)
           and e.status in ('processed', 'ignored') and e.processed_at < p_before
         order by e.processed_at
         limit p_batch
           for update skip locked
      )
      delete from public.webhook_events e using doomed
       where e.tableoid = doomed.tableoid and e.id = doomed.id and e.received_at = doomed.received_at
         and e.status in ('processed', 'ignored');
    when 'notifications' then
      with doomed as (
        select n.tableoid, n.id, n.created_at from public.notifications n
         where n.tableoid in ('partitions.notifications_kept'::regclass, 'partitions.notifications_default'::regclass)
           and n.read_at is not null and n.read_at < p_before
         order by n.read_at
         limit p_batch
           for update skip locked
      )
      delete from public.notifications n using doomed
       where n.tableoid = doomed.tableoid and n.id = doomed.id and n.created_at = doomed.created_at
         and n.read_at is not null;
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

-- ======================================================================================
-- webhook_events: weekly by received_at, notifications: weekly by created_at, each from
-- the week of its oldest row to a week ahead (so no row waits in the default partition),
-- with an empty `_kept` partition below. The first fleet.prune folds the weeks older
-- than its keep (so the migration deletes nothing, whatever the keep).
-- ======================================================================================

-- Functions that take or return the table's row type hold on to the old table (the
-- conversion re-creates only those bound to the table itself): dropped before, re-created
-- after with their grants and comments.
create or replace function private.row_type_functions(p_table regclass)
returns table (drop_sql text, create_sql text[])
language sql
stable
set search_path = ''
as $$
  select pg_catalog.format('drop function %s', p.oid::regprocedure),
         array[pg_catalog.pg_get_functiondef(p.oid),
               pg_catalog.format('revoke all on function %s from public, anon, authenticated, service_role',
                                 p.oid::regprocedure)]
         || coalesce((select pg_catalog.array_agg(pg_catalog.format('grant execute on function %s to %s', p.oid::regprocedure,
                               case when a.grantee = 0 then 'public' else pg_catalog.quote_ident(a.grantee::regrole::text) end))
                        from pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
                       where a.grantee <> p.proowner), '{}')
         || coalesce((select pg_catalog.array_agg(pg_catalog.format('comment on function %s is %L', p.oid::regprocedure, d))
                        from pg_catalog.obj_description(p.oid, 'pg_proc') d where d is not null), '{}')
    from pg_catalog.pg_depend d
    join pg_catalog.pg_proc p on p.oid = d.objid
   where d.classid = 'pg_catalog.pg_proc'::regclass
     and d.refobjid = (select c.reltype from pg_catalog.pg_class c where c.oid = p_table)
   group by p.oid;
$$;

revoke all on function private.row_type_functions(regclass) from public, anon, authenticated, service_role;

do $$
declare
  v_from timestamptz;
  v_lo timestamptz;
  v_after text[] := '{}'::text[];
  v_sql text;
  v_rec record;
begin
  for v_rec in
    select f.* from private.row_type_functions('public.webhook_events') f
    union all select f.* from private.row_type_functions('public.notifications') f
  loop
    execute v_rec.drop_sql;
    v_after := v_after || v_rec.create_sql;
  end loop;
  select coalesce(min(e.received_at), now()) into v_from from public.webhook_events e;
  perform private.partition_history_table('webhook_events', 'received_at', interval '7 days', least(v_from, now()),
                                          now() + interval '7 days', interval '7 days');
  update private.history_partitions
     set kept = $k$t.status not in ('processed', 'ignored') or t.processed_at is null or t.processed_at >= $1$k$
   where table_name = 'webhook_events';
  v_lo := private.history_step_start(interval '7 days', least(v_from, now()));
  perform private.fold_history_partitions('webhook_events', v_lo, '-infinity');

  select coalesce(min(n.created_at), now()) into v_from from public.notifications n;
  perform private.partition_history_table('notifications', 'created_at', interval '7 days', least(v_from, now()),
                                          now() + interval '7 days', interval '7 days');
  update private.history_partitions
     set kept = $k$t.read_at is null or t.read_at >= $1$k$
   where table_name = 'notifications';
  v_lo := private.history_step_start(interval '7 days', least(v_from, now()));
  perform private.fold_history_partitions('notifications', v_lo, '-infinity');

  foreach v_sql in array v_after loop
    execute v_sql;
  end loop;
end;
$$;

drop function private.row_type_functions(regclass);

create trigger webhook_events_once
  before insert or update of provider, event_id on public.webhook_events
  for each row execute function private.webhook_events_once();
