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
