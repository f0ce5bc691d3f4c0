-- private.partition_history_table with typed array initialisers.
--
-- `supabase db lint` (plpgsql_check) warns on a text[] variable initialised with an untyped
-- '{}' ("target type is different type than source type"). The function is re-created with
-- '{}'::text[]; nothing else changes.

-- ======================================================================================
-- Functions
-- ======================================================================================
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
  v_views text[] := '{}'::text[];
  v_view_names text[] := '{}'::text[];
  v_funcs text[] := '{}'::text[];
  v_table_after text[] := '{}'::text[];
  v_dependents_after text[] := '{}'::text[];
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
