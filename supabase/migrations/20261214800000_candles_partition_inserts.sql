-- Candle downloads write straight into the month's partition of public.candles. A download
-- (worker/data/download.py, acting as service_role) stages a batch in a temporary table,
-- then inserts each month's candles into that month's partition: no routing through the
-- parent, and no conflict check when the market has no candle in that range yet; the
-- batch's newest candle still goes through public.candles, whose statement trigger
-- publishes a market's latest candle. service_role already writes candles through the
-- parent; it gets insert (only) on the month partitions of candles, existing and new. Users
-- still reach partitions only through the parent. create_history_partition keeps the
-- rule of 20261214600000: a step that `<table>_kept` covers gets no partition.

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
  if p_table = 'candles' then
    execute pg_catalog.format('grant insert on table partitions.%I to service_role', v_name);
  end if;
  return true;
end;
$$;

revoke all on function private.create_history_partition(text, timestamptz) from public, anon, authenticated;

do $$
declare
  v_part regclass;
begin
  for v_part in
    select i.inhrelid::regclass from pg_catalog.pg_inherits i
     where i.inhparent = 'public.candles'::regclass
       and i.inhrelid <> 'partitions.candles_default'::regclass
  loop
    execute pg_catalog.format('grant insert on table %s to service_role', v_part);
  end loop;
end;
$$;
