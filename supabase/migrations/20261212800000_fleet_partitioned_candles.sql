-- Fleet: candles partitioned by month. public.candles grows with every market and
-- timeframe the fleet follows and goes back years (downloads for backtests), so it becomes
-- range-partitioned by open_time with the conversion of partitioned history
-- (private.partition_history_table): one partition per calendar month (UTC) in schema
-- `partitions`, from the month of the oldest stored candle to two months ahead, every row
-- moved and checked (count and checksum), keys, the policy, grants, the
-- `candles_publish_latest` trigger and everything else the table had re-created.
--
-- A month, not a week: candles are read by range (a backtest reads months or years of one
-- market, a bot the last few hundred candles), so a query prunes to the months it needs
-- whatever the step; a month keeps the partition count at twelve a year over years of
-- history (a week would make hundreds, each one planned by a statement that cannot prune)
-- and a month of 1m candles of a market (43,200 rows) is a small partition.
--
-- Monthly steps are new to partitioned history: a month is not a fixed interval (date_bin
-- cannot bin by it), so a step of '1 month' starts partitions on the first of the month,
-- 00:00 UTC. A write of candles of a month that has no partition lands in the default
-- partition, unless the writer made its months first (the data download does, with
-- public.create_history_partitions_between); the rows of a history marked
-- `fill_from_default` (candles) that wait there are moved into partitions of their own
-- months by the fleet's periodic job (fleet.partitions), so the default partition stays
-- small.
--
-- Retention is unchanged and off for candles: fleet.prune drops old partitions of the
-- histories it keeps (bot_logs), never candles.

-- ======================================================================================
-- Tables
-- ======================================================================================

alter table private.history_partitions drop constraint history_partitions_step_days;
alter table private.history_partitions add constraint history_partitions_step_days check (
  step = interval '1 month'
  or (step >= interval '1 day' and step <= interval '31 days'
      and pg_catalog.date_part('epoch', step)::bigint % 86400 = 0 and pg_catalog.date_part('month', step) = 0));
alter table private.history_partitions
  add column fill_from_default boolean not null default false;
comment on column private.history_partitions.fill_from_default is
  'Rows waiting in the default partition get a partition of their own range from create_history_partitions.';

-- ======================================================================================
-- Functions
-- ======================================================================================

-- Where the step holding p_at starts: the first of its month (UTC) for a monthly step,
-- else its day or week (weeks start on Monday 00:00 UTC).
create or replace function private.history_step_start(p_step interval, p_at timestamptz)
returns timestamptz
language sql
immutable
set search_path = ''
as $$
  select case when p_step = interval '1 month'
              then pg_catalog.date_trunc('month', p_at, 'UTC')
              else pg_catalog.date_bin(p_step, p_at, timestamptz '2000-01-03 00:00:00+00') end;
$$;

revoke all on function private.history_step_start(interval, timestamptz) from public, anon, authenticated;

-- Make sure the step (day, week, month) holding p_at has its partition of p_table; true if
-- it was created. Rows of that range waiting in the default partition move into it first.
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
  if pg_catalog.to_regclass(pg_catalog.format('partitions.%I', v_name)) is not null then
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

-- The fleet's periodic job: each history's partitions up to its `ahead`, and for a
-- history that fills from its default partition, a partition for every step of the rows
-- waiting there.
create or replace function public.create_history_partitions()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_n integer := 0;
  v_table text;
  v_key text;
  v_step interval;
  v_ahead interval;
  v_fill boolean;
  v_at timestamptz;
begin
  if not private.is_service() then
    raise exception 'create_history_partitions is for the fleet only' using errcode = '42501';
  end if;
  -- Creating a partition locks its parent briefly; never queue behind a long transaction.
  perform pg_catalog.set_config('lock_timeout', '5s', true);
  for v_table, v_key, v_step, v_ahead, v_fill in
    select h.table_name, h.partition_key, h.step, h.ahead, h.fill_from_default
      from private.history_partitions h order by h.table_name
  loop
    v_n := v_n + private.create_history_partitions(v_table, now() + v_ahead);
    if v_fill then
      for v_at in
        execute pg_catalog.format('select distinct private.history_step_start($1, d.%I) from partitions.%I d',
                                  v_key, v_table || '_default')
          using v_step
      loop
        if private.create_history_partition(v_table, v_at) then
          v_n := v_n + 1;
        end if;
      end loop;
    end if;
  end loop;
  return v_n;
end;
$$;

revoke all on function public.create_history_partitions() from public, anon, authenticated;
grant execute on function public.create_history_partitions() to service_role;

-- The partitions of p_history for every step from p_from to p_until, made before a write
-- of old rows (a download of candles years back) so that they go straight into their
-- months instead of through the default partition; returns how many were created.
create or replace function public.create_history_partitions_between(
  p_history text, p_from timestamptz, p_until timestamptz)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_step interval := (select h.step from private.history_partitions h where h.table_name = p_history);
  v_at timestamptz;
  v_n integer := 0;
begin
  if not private.is_service() then
    raise exception 'create_history_partitions_between is for the fleet only' using errcode = '42501';
  end if;
  if v_step is null then
    raise exception 'create_history_partitions_between: history must be one of %',
      (select pg_catalog.string_agg(h.table_name, ', ' order by h.table_name) from private.history_partitions h)
      using errcode = '22023';
  end if;
  if p_from is null or p_until is null or p_until < p_from or p_until > p_from + interval '100 years'
     or not pg_catalog.isfinite(p_from) or not pg_catalog.isfinite(p_until) then
    raise exception 'create_history_partitions_between: from and until must be finite, from <= until, at most 100 years apart'
      using errcode = '22023';
  end if;
  perform pg_catalog.set_config('lock_timeout', '5s', true);
  for v_at in
    select pg_catalog.generate_series(private.history_step_start(v_step, p_from), p_until, v_step) union select p_until
  loop
    if private.create_history_partition(p_history, v_at) then
      v_n := v_n + 1;
    end if;
  end loop;
  return v_n;
end;
$$;

revoke all on function public.create_history_partitions_between(text, timestamptz, timestamptz)
  from public, anon, authenticated;
grant execute on function public.create_history_partitions_between(text, timestamptz, timestamptz) to service_role;

-- The conversion, as in 20261212700000_fleet_partitioned_history.sql, except that the views
-- and `begin atomic` functions it re-creates keep exactly their grants: re-created, they
-- got the schema's default privileges (every privilege to anon and authenticated) on top.
-- Turn public.<p_table> into a table partitioned by range of p_key: partitions of p_step
-- from p_from's to p_until's, a default partition for the rest, every row moved (the
-- count and a checksum of the rows must match), everything the table had re-created from
-- the catalog. Run by migrations only (owner).
create or replace function private.partition_history_table(
  p_table text, p_key text, p_step interval, p_from timestamptz, p_until timestamptz, p_ahead interval)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_old regclass := pg_catalog.format('public.%I', p_table)::regclass;
  v_legacy text := p_table || '_unpartitioned';
  v_path text := pg_catalog.current_setting('search_path');
  v_views text[] := '{}';
  v_view_names text[] := '{}';
  v_funcs text[] := '{}';
  v_table_after text[] := '{}';
  v_dependents_after text[] := '{}';
  v_sql text;
  v_seqs text[];
  v_rec record;
  v_count_before bigint;
  v_count_after bigint;
  v_sum_before text;
  v_sum_after text;
  v_checksum constant text :=
    'select count(*), md5(coalesce(string_agg(md5(t::text), '''' order by md5(t::text)), '''')) from public.%I t';
begin
  if (select c.relkind from pg_catalog.pg_class c where c.oid = v_old) <> 'r' then
    raise exception 'partition_history_table: public.% is not a plain table', p_table using errcode = '22023';
  end if;
  if exists (select 1 from pg_catalog.pg_constraint c where c.confrelid = v_old) then
    raise exception 'partition_history_table: foreign keys reference public.%', p_table using errcode = '2BP01';
  end if;
  -- Read every definition fully qualified, as it is now.
  perform pg_catalog.set_config('search_path', '', true);
  execute pg_catalog.format('lock table public.%I in access exclusive mode', p_table);

  -- Views on the table (and views on those), innermost first, with options and grants.
  for v_rec in
    with recursive deps(oid, depth) as (
      select r.ev_class, 1
        from pg_catalog.pg_depend d
        join pg_catalog.pg_rewrite r on r.oid = d.objid
       where d.classid = 'pg_catalog.pg_rewrite'::regclass and d.refobjid = v_old and r.ev_class <> v_old
      union
      select r.ev_class, deps.depth + 1
        from deps
        join pg_catalog.pg_depend d on d.refobjid = deps.oid
        join pg_catalog.pg_rewrite r on r.oid = d.objid
       where d.classid = 'pg_catalog.pg_rewrite'::regclass and r.ev_class <> deps.oid
    )
    select c.oid, c.relkind, c.reloptions, pg_catalog.max(deps.depth) as depth
      from deps join pg_catalog.pg_class c on c.oid = deps.oid
     group by c.oid, c.relkind, c.reloptions
     order by pg_catalog.max(deps.depth), c.oid
  loop
    v_views := v_views || pg_catalog.format('create %s %s%s as %s',
      case v_rec.relkind when 'm' then 'materialized view' else 'view' end,
      v_rec.oid::regclass,
      case when v_rec.reloptions is null then ''
           else ' with (' || pg_catalog.array_to_string(v_rec.reloptions, ', ') || ')' end,
      pg_catalog.rtrim(pg_catalog.pg_get_viewdef(v_rec.oid), ';'));
    v_view_names := v_view_names || pg_catalog.format('drop %s if exists %s',
      case v_rec.relkind when 'm' then 'materialized view' else 'view' end, v_rec.oid::regclass);
    -- A re-created view gets the schema's default privileges: only its own grants stay.
    v_dependents_after := v_dependents_after
      || pg_catalog.format('revoke all on table %s from public, anon, authenticated, service_role', v_rec.oid::regclass)
      || private.partition_history_acl(v_rec.oid, v_rec.oid::regclass::text);
    v_dependents_after := v_dependents_after || coalesce(
      (select pg_catalog.array_agg(pg_catalog.format('comment on %s %s is %L',
                case v_rec.relkind when 'm' then 'materialized view' else 'view' end, v_rec.oid::regclass, d))
         from pg_catalog.obj_description(v_rec.oid, 'pg_class') d where d is not null), '{}');
  end loop;
  -- `begin atomic` functions bound to the table, with their grants.
  for v_rec in
    select distinct p.oid, p.proowner, p.proacl
      from pg_catalog.pg_depend d join pg_catalog.pg_proc p on p.oid = d.objid
     where d.classid = 'pg_catalog.pg_proc'::regclass and d.refobjid = v_old
  loop
    v_funcs := v_funcs || pg_catalog.pg_get_functiondef(v_rec.oid);
    v_dependents_after := v_dependents_after
      || pg_catalog.format('revoke all on function %s from public, anon, authenticated, service_role', v_rec.oid::regprocedure)
      || (select coalesce(pg_catalog.array_agg(pg_catalog.format('grant execute on function %s to %s',
                   v_rec.oid::regprocedure,
                   case when a.grantee = 0 then 'public' else pg_catalog.quote_ident(a.grantee::regrole::text) end)), '{}')
            from pg_catalog.aclexplode(coalesce(v_rec.proacl, pg_catalog.acldefault('f', v_rec.proowner))) a
           where a.grantee <> v_rec.proowner);
  end loop;

  -- The table's own: keys (a unique one gains the partition key), foreign keys, indexes,
  -- RLS, policies, grants, triggers, publications, comment.
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.format('alter table public.%I add constraint %I %s (%s)',
             p_table, c.conname, case c.contype when 'p' then 'primary key' else 'unique' end,
             (select pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by k.n)
                from pg_catalog.unnest(c.conkey) with ordinality k(attnum, n)
                join pg_catalog.pg_attribute a on a.attrelid = v_old and a.attnum = k.attnum)
             || case when exists (select 1 from pg_catalog.pg_attribute a
                                   where a.attrelid = v_old and a.attnum = any (c.conkey) and a.attname = p_key)
                     then '' else ', ' || pg_catalog.quote_ident(p_key) end)
           order by c.contype, c.conname), '{}')
      from pg_catalog.pg_constraint c where c.conrelid = v_old and c.contype in ('p', 'u'));
  if exists (select 1 from pg_catalog.pg_index i
              where i.indrelid = v_old and i.indisunique
                and not exists (select 1 from pg_catalog.pg_constraint c where c.conindid = i.indexrelid)) then
    raise exception 'partition_history_table: public.% has a unique index that is not a constraint', p_table
      using errcode = '0A000';
  end if;
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.format('alter table public.%I add constraint %I %s',
             p_table, c.conname, pg_catalog.pg_get_constraintdef(c.oid)) order by c.conname), '{}')
      from pg_catalog.pg_constraint c where c.conrelid = v_old and c.contype = 'f');
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.pg_get_indexdef(i.indexrelid) order by i.indexrelid), '{}')
      from pg_catalog.pg_index i where i.indrelid = v_old and not i.indisunique);
  if (select c.relrowsecurity from pg_catalog.pg_class c where c.oid = v_old) then
    v_table_after := v_table_after || pg_catalog.format('alter table public.%I enable row level security', p_table);
  end if;
  if (select c.relforcerowsecurity from pg_catalog.pg_class c where c.oid = v_old) then
    v_table_after := v_table_after || pg_catalog.format('alter table public.%I force row level security', p_table);
  end if;
  for v_rec in
    select p.polname, p.polpermissive, p.polcmd, p.polroles,
           pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual,
           pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as with_check
      from pg_catalog.pg_policy p where p.polrelid = v_old order by p.polname
  loop
    v_table_after := v_table_after || pg_catalog.format('create policy %I on public.%I as %s for %s to %s%s%s',
      v_rec.polname, p_table,
      case when v_rec.polpermissive then 'permissive' else 'restrictive' end,
      case v_rec.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                        when 'd' then 'delete' else 'all' end,
      (select pg_catalog.string_agg(case when r = 0 then 'public' else pg_catalog.quote_ident(r::regrole::text) end, ', ')
         from pg_catalog.unnest(v_rec.polroles) r),
      case when v_rec.qual is null then '' else ' using (' || v_rec.qual || ')' end,
      case when v_rec.with_check is null then '' else ' with check (' || v_rec.with_check || ')' end);
  end loop;
  v_table_after := v_table_after
    || pg_catalog.format('revoke all on table public.%I from public, anon, authenticated, service_role', p_table)
    || private.partition_history_acl(v_old, pg_catalog.format('public.%I', p_table));
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.pg_get_triggerdef(t.oid) order by t.tgname), '{}')
      from pg_catalog.pg_trigger t where t.tgrelid = v_old and not t.tgisinternal);
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.format('alter publication %I add table public.%I', p.pubname, p_table)), '{}')
      from pg_catalog.pg_publication_rel pr join pg_catalog.pg_publication p on p.oid = pr.prpubid
     where pr.prrelid = v_old);
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.format('comment on table public.%I is %L', p_table, d)), '{}')
      from pg_catalog.obj_description(v_old, 'pg_class') d where d is not null);

  execute pg_catalog.format(v_checksum, p_table) into v_count_before, v_sum_before;

  -- Out of the way: dependents (outermost first), then the old table and its indexes.
  for v_rec in
    select distinct p.oid from pg_catalog.pg_depend d join pg_catalog.pg_proc p on p.oid = d.objid
     where d.classid = 'pg_catalog.pg_proc'::regclass and d.refobjid = v_old
  loop
    execute pg_catalog.format('drop function %s', v_rec.oid::regprocedure);
  end loop;
  for v_rec in select u.v from pg_catalog.unnest(v_view_names) with ordinality u(v, n) order by u.n desc loop
    execute v_rec.v;
  end loop;
  for v_rec in
    select p.pubname from pg_catalog.pg_publication_rel pr join pg_catalog.pg_publication p on p.oid = pr.prpubid
     where pr.prrelid = v_old
  loop
    execute pg_catalog.format('alter publication %I drop table public.%I', v_rec.pubname, p_table);
  end loop;
  execute pg_catalog.format('alter table public.%I rename to %I', p_table, v_legacy);
  for v_rec in
    select c.oid, c.relname, con.conname
      from pg_catalog.pg_index i join pg_catalog.pg_class c on c.oid = i.indexrelid
      left join pg_catalog.pg_constraint con on con.conindid = i.indexrelid and con.conrelid = v_old
     where i.indrelid = v_old
  loop
    if v_rec.conname is not null then
      execute pg_catalog.format('alter table public.%I rename constraint %I to %I', v_legacy, v_rec.conname, 'unpartitioned_' || v_rec.oid);
    else
      execute pg_catalog.format('alter index public.%I rename to %I', v_rec.relname, 'unpartitioned_' || v_rec.oid);
    end if;
  end loop;

  -- The partitioned table, its partitions and everything the old one had.
  execute pg_catalog.format(
    'create table public.%I (like public.%I including defaults including constraints including identity '
    'including generated including storage including comments including statistics) partition by range (%I)',
    p_table, v_legacy, p_key);
  execute pg_catalog.format('create table partitions.%I partition of public.%I default', p_table || '_default', p_table);
  insert into private.history_partitions (table_name, partition_key, step, ahead)
  values (p_table, p_key, p_step, p_ahead);
  perform private.create_history_partition(p_table, d)
     from (select pg_catalog.generate_series(p_from, p_until, p_step) union select p_until) s(d);
  execute pg_catalog.format('revoke all on table partitions.%I from public, anon, authenticated', p_table || '_default');
  execute pg_catalog.format('grant select, update, delete on table partitions.%I to service_role', p_table || '_default');

  -- Every row moves, identities keep their values and their sequences go on.
  execute pg_catalog.format('insert into public.%I overriding system value select * from public.%I', p_table, v_legacy);
  for v_rec in
    select a.attname from pg_catalog.pg_attribute a
     where a.attrelid = pg_catalog.format('public.%I', p_table)::regclass and a.attidentity <> '' and not a.attisdropped
  loop
    execute pg_catalog.format('select pg_catalog.setval(%L, s.last_value, s.is_called) from %s s',
      pg_catalog.pg_get_serial_sequence(pg_catalog.format('public.%I', p_table), v_rec.attname),
      pg_catalog.pg_get_serial_sequence(pg_catalog.format('public.%I', v_legacy), v_rec.attname));
  end loop;
  -- Keys, foreign keys and indexes are built once over the moved rows (faster than row by
  -- row), and triggers and publications come after the copy: moving a row is not an
  -- event, nothing fires and Realtime sends nothing.
  foreach v_sql in array v_table_after loop
    execute v_sql;
  end loop;
  execute pg_catalog.format(v_checksum, p_table) into v_count_after, v_sum_after;
  if v_count_after is distinct from v_count_before or v_sum_after is distinct from v_sum_before then
    raise exception 'partition_history_table: public.% had % rows (checksum %), the partitioned table has % (%)',
      p_table, v_count_before, v_sum_before, v_count_after, v_sum_after;
  end if;
  v_seqs := array(
    select pg_catalog.format('alter sequence %s rename to %I',
             pg_catalog.pg_get_serial_sequence(pg_catalog.format('public.%I', p_table), a.attname),
             (pg_catalog.parse_ident(pg_catalog.pg_get_serial_sequence(pg_catalog.format('public.%I', v_legacy), a.attname)))[2])
      from pg_catalog.pg_attribute a
     where a.attrelid = pg_catalog.format('public.%I', p_table)::regclass and a.attidentity <> '' and not a.attisdropped);
  execute pg_catalog.format('drop table public.%I', v_legacy);
  -- The sequences keep their names (and their grants: none but the owner's, as identities').
  foreach v_sql in array v_seqs loop
    execute v_sql;
  end loop;

  foreach v_sql in array v_views loop
    execute v_sql;
  end loop;
  foreach v_sql in array v_funcs loop
    execute v_sql;
  end loop;
  foreach v_sql in array v_dependents_after loop
    execute v_sql;
  end loop;
  perform pg_catalog.set_config('search_path', v_path, true);
  return v_count_after;
end;
$$;

revoke all on function private.partition_history_table(text, text, interval, timestamptz, timestamptz, interval)
  from public, anon, authenticated, service_role;

-- ======================================================================================
-- candles: monthly partitions by open_time, from the month of the oldest candle to two
-- months ahead; nothing lands in the default partition.
-- ======================================================================================

do $$
declare
  v_from timestamptz;
  v_zone text := pg_catalog.current_setting('timezone');
begin
  -- Months are calendar months in UTC whatever the session's time zone.
  perform pg_catalog.set_config('timezone', 'UTC', true);
  select pg_catalog.date_trunc('month', coalesce(min(c.open_time), now()), 'UTC') into v_from from public.candles c;
  perform private.partition_history_table('candles', 'open_time', interval '1 month', least(v_from, now()),
                                          now() + interval '2 months', interval '2 months');
  update private.history_partitions set fill_from_default = true where table_name = 'candles';
  perform pg_catalog.set_config('timezone', v_zone, true);
end;
$$;
