-- Supabase's database advisor (splinter: github.com/supabase/splinter, lints/*.sql), ported
-- lint by lint with the same conditions; each query returns one `finding` per object, named
-- as splinter's cache_key. The caller sets two settings first:
--   pgrst.db_schemas        the schemas PostgREST exposes (supabase/config.toml, api.schemas)
--   advisor.skipped_schemas splinter's list of platform schemas no lint reports on
-- Lints whose splinter list differs (0003 keeps realtime) say so.

-- name: unindexed_foreign_keys
-- lints/0001_unindexed_foreign_keys.sql
with foreign_keys as (
    select cl.relnamespace::regnamespace::text as schema_name, cl.relname as table_name, cl.oid as table_oid,
           ct.conname as fkey_name, ct.conkey as col_attnums
      from pg_catalog.pg_constraint ct
      join pg_catalog.pg_class cl on ct.conrelid = cl.oid
      left join pg_catalog.pg_depend d on d.objid = cl.oid and d.deptype = 'e'
     where ct.contype = 'f'
       and d.objid is null
       and cl.relnamespace::regnamespace::text not in ('pg_catalog', 'information_schema', 'auth', 'storage', 'vault', 'extensions')
), index_ as (
    select pi.indrelid as table_oid, indexrelid::regclass as index_,
           string_to_array(indkey::text, ' ')::smallint[] as col_attnums
      from pg_catalog.pg_index pi
     where indisvalid
)
select format('unindexed_foreign_keys_%s_%s_%s', fk.schema_name, fk.table_name, fk.fkey_name) as finding
  from foreign_keys fk
  left join index_ idx on fk.table_oid = idx.table_oid
                      and fk.col_attnums = idx.col_attnums[1:array_length(fk.col_attnums, 1)]
  left join pg_catalog.pg_depend dep on idx.table_oid = dep.objid and dep.deptype = 'e'
 where idx.index_ is null
   and fk.schema_name <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
   and dep.objid is null;

-- name: auth_users_exposed
-- lints/0002_auth_users_exposed.sql
select distinct format('auth_users_exposed_%s_%s', n.nspname, c.relname) as finding
  from pg_catalog.pg_class auth_users_pg_class
  join pg_catalog.pg_namespace auth_users_pg_namespace
    on auth_users_pg_class.relnamespace = auth_users_pg_namespace.oid
   and auth_users_pg_class.relname = 'users'
   and auth_users_pg_namespace.nspname = 'auth'
  join pg_catalog.pg_depend d on d.refobjid = auth_users_pg_class.oid
  join pg_catalog.pg_rewrite r on r.oid = d.objid
  join pg_catalog.pg_class c on c.oid = r.ev_class
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  join pg_catalog.pg_class pg_class_auth_users on d.refobjid = pg_class_auth_users.oid
 where d.deptype = 'n'
   and (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
        or pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
   and n.nspname = any(array(select trim(unnest(string_to_array(current_setting('pgrst.db_schemas', 't'), ',')))))
   and (c.relkind in ('m')
        or (c.relkind = 'v'
            and not (lower(coalesce(c.reloptions::text, '{}'))::text[]
                     && array['security_invoker=1', 'security_invoker=true', 'security_invoker=yes', 'security_invoker=on']))
        or (c.relkind in ('v')
            and (lower(coalesce(c.reloptions::text, '{}'))::text[]
                 && array['security_invoker=1', 'security_invoker=true', 'security_invoker=yes', 'security_invoker=on'])
            and not pg_class_auth_users.relrowsecurity));

-- name: auth_rls_initplan
-- lints/0003_auth_rls_initplan.sql (its schema list keeps realtime, for realtime.messages)
with policies as (
    select nsp.nspname as schema_name, pb.tablename as table_name, pc.relrowsecurity as is_rls_active,
           polname as policy_name, qual, with_check
      from pg_catalog.pg_policy pa
      join pg_catalog.pg_class pc on pa.polrelid = pc.oid
      join pg_catalog.pg_namespace nsp on pc.relnamespace = nsp.oid
      join pg_catalog.pg_policies pb
        on pc.relname = pb.tablename and nsp.nspname = pb.schemaname and pa.polname = pb.policyname
)
select format('auth_rls_init_plan_%s_%s_%s', schema_name, table_name, policy_name) as finding
  from policies
 where is_rls_active
   and schema_name <> all (array_remove(string_to_array(current_setting('advisor.skipped_schemas'), ','), 'realtime'))
   and ((qual like '%auth.uid()%' and lower(qual) not like '%select auth.uid()%')
     or (qual like '%auth.jwt()%' and lower(qual) not like '%select auth.jwt()%')
     or (qual like '%auth.role()%' and lower(qual) not like '%select auth.role()%')
     or (qual like '%auth.email()%' and lower(qual) not like '%select auth.email()%')
     or (qual like '%current\_setting(%)%' and lower(qual) not like '%select current\_setting(%)%')
     or (with_check like '%auth.uid()%' and lower(with_check) not like '%select auth.uid()%')
     or (with_check like '%auth.jwt()%' and lower(with_check) not like '%select auth.jwt()%')
     or (with_check like '%auth.role()%' and lower(with_check) not like '%select auth.role()%')
     or (with_check like '%auth.email()%' and lower(with_check) not like '%select auth.email()%')
     or (with_check like '%current\_setting(%)%' and lower(with_check) not like '%select current\_setting(%)%'));

-- name: no_primary_key
-- lints/0004_no_primary_key.sql
select format('no_primary_key_%s_%s', pgns.nspname, pgc.relname) as finding
  from pg_catalog.pg_class pgc
  join pg_catalog.pg_namespace pgns on pgns.oid = pgc.relnamespace
  left join pg_catalog.pg_index pgi on pgi.indrelid = pgc.oid
  left join pg_catalog.pg_depend dep on pgc.oid = dep.objid and dep.deptype = 'e'
 where pgc.relkind = 'r'
   and pgns.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
   and dep.objid is null
 group by pgc.oid, pgns.nspname, pgc.relname
having max(coalesce(pgi.indisprimary, false)::int) = 0;

-- name: multiple_permissive_policies
-- lints/0006_multiple_permissive_policies.sql
select format('multiple_permissive_policies_%s_%s_%s_%s', n.nspname, c.relname, r.rolname, act.cmd) as finding
  from pg_catalog.pg_policy p
  join pg_catalog.pg_class c on p.polrelid = c.oid
  join pg_catalog.pg_namespace n on c.relnamespace = n.oid
  join pg_catalog.pg_roles r on p.polroles @> array[r.oid] or p.polroles = array[0::oid]
  left join pg_catalog.pg_depend dep on c.oid = dep.objid and dep.deptype = 'e',
  lateral (
    select x.cmd
      from unnest((select case p.polcmd
                            when 'r' then array['SELECT']
                            when 'a' then array['INSERT']
                            when 'w' then array['UPDATE']
                            when 'd' then array['DELETE']
                            when '*' then array['SELECT', 'INSERT', 'UPDATE', 'DELETE']
                            else array['ERROR']
                          end as actions)) x(cmd)
  ) act(cmd)
 where c.relkind = 'r'
   and p.polpermissive
   and n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
   and r.rolname not like 'pg_%'
   and r.rolname not like 'supabase%admin'
   and not r.rolbypassrls
   and dep.objid is null
 group by n.nspname, c.relname, r.rolname, act.cmd
having count(1) > 1;

-- name: policy_exists_rls_disabled
-- lints/0007_policy_exists_rls_disabled.sql
select format('policy_exists_rls_disabled_%s_%s', n.nspname, c.relname) as finding
  from pg_catalog.pg_policy p
  join pg_catalog.pg_class c on p.polrelid = c.oid
  join pg_catalog.pg_namespace n on c.relnamespace = n.oid
  left join pg_catalog.pg_depend dep on c.oid = dep.objid and dep.deptype = 'e'
 where c.relkind = 'r'
   and n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
   and not c.relrowsecurity
   and dep.objid is null
 group by n.nspname, c.relname;

-- name: rls_enabled_no_policy
-- lints/0008_rls_enabled_no_policy.sql
select format('rls_enabled_no_policy_%s_%s', n.nspname, c.relname) as finding
  from pg_catalog.pg_class c
  left join pg_catalog.pg_policy p on p.polrelid = c.oid
  join pg_catalog.pg_namespace n on c.relnamespace = n.oid
  left join pg_catalog.pg_depend dep on c.oid = dep.objid and dep.deptype = 'e'
 where c.relkind = 'r'
   and n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
   and c.relrowsecurity
   and p.polname is null
   and dep.objid is null
 group by n.nspname, c.relname;

-- name: duplicate_index
-- lints/0009_duplicate_index.sql
select format('duplicate_index_%s_%s_%s', n.nspname, c.relname, array_agg(pi.indexname order by pi.indexname)) as finding
  from pg_catalog.pg_indexes pi
  join pg_catalog.pg_namespace n on n.nspname = pi.schemaname
  join pg_catalog.pg_class c on pi.tablename = c.relname and n.oid = c.relnamespace
  left join pg_catalog.pg_depend dep on c.oid = dep.objid and dep.deptype = 'e'
 where c.relkind in ('r', 'm')
   and n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
   and dep.objid is null
 group by n.nspname, c.relkind, c.relname, replace(pi.indexdef, pi.indexname, '')
having count(*) > 1;

-- name: security_definer_view
-- lints/0010_security_definer_view.sql
select format('security_definer_view_%s_%s', n.nspname, c.relname) as finding
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  left join pg_catalog.pg_depend dep on c.oid = dep.objid and dep.deptype = 'e'
 where c.relkind = 'v'
   and (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
        or pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
   and substring(pg_catalog.version() from 'PostgreSQL ([0-9]+)') >= '15'
   and n.nspname = any(array(select trim(unnest(string_to_array(current_setting('pgrst.db_schemas', 't'), ',')))))
   and n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
   and dep.objid is null
   and not (lower(coalesce(c.reloptions::text, '{}'))::text[]
            && array['security_invoker=1', 'security_invoker=true', 'security_invoker=yes', 'security_invoker=on']);

-- name: function_search_path_mutable
-- lints/0011_function_search_path_mutable.sql (named by signature instead of md5(prosrc))
select format('function_search_path_mutable_%s_%s', n.nspname, p.oid::regprocedure) as finding
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on p.pronamespace = n.oid
  left join pg_catalog.pg_depend dep on p.oid = dep.objid and dep.deptype = 'e'
 where n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
   and dep.objid is null
   and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) as config where config like 'search_path=%');

-- name: rls_disabled_in_public
-- lints/0013_rls_disabled_in_public.sql
select format('rls_disabled_in_public_%s_%s', n.nspname, c.relname) as finding
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on c.relnamespace = n.oid
 where c.relkind = 'r'
   and not c.relrowsecurity
   and (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
        or pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
   and n.nspname = any(array(select trim(unnest(string_to_array(current_setting('pgrst.db_schemas', 't'), ',')))))
   and n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','));

-- name: extension_in_public
-- lints/0014_extension_in_public.sql
select format('extension_in_public_%s', pe.extname) as finding
  from pg_catalog.pg_extension pe
 where pe.extname not in ('plpgsql')
   and pe.extnamespace::regnamespace::text = 'public';

-- name: rls_references_user_metadata
-- lints/0015_rls_references_user_metadata.sql
with policies as (
    select nsp.nspname as schema_name, pb.tablename as table_name, polname as policy_name, qual, with_check
      from pg_catalog.pg_policy pa
      join pg_catalog.pg_class pc on pa.polrelid = pc.oid
      join pg_catalog.pg_namespace nsp on pc.relnamespace = nsp.oid
      join pg_catalog.pg_policies pb
        on pc.relname = pb.tablename and nsp.nspname = pb.schemaname and pa.polname = pb.policyname
)
select format('rls_references_user_metadata_%s_%s_%s', schema_name, table_name, policy_name) as finding
  from policies
 where schema_name <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
   and (qual like '%auth.jwt()%user_metadata%'
        or qual like '%current_setting(%request.jwt.claims%)%user_metadata%'
        or with_check like '%auth.jwt()%user_metadata%'
        or with_check like '%current_setting(%request.jwt.claims%)%user_metadata%');

-- name: materialized_view_in_api
-- lints/0016_materialized_view_in_api.sql
select format('materialized_view_in_api_%s_%s', n.nspname, c.relname) as finding
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  left join pg_catalog.pg_depend dep on c.oid = dep.objid and dep.deptype = 'e'
 where c.relkind = 'm'
   and (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
        or pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
   and n.nspname = any(array(select trim(unnest(string_to_array(current_setting('pgrst.db_schemas', 't'), ',')))))
   and n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
   and dep.objid is null;

-- name: foreign_table_in_api
-- lints/0017_foreign_table_in_api.sql
select format('foreign_table_in_api_%s_%s', n.nspname, c.relname) as finding
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  left join pg_catalog.pg_depend dep on c.oid = dep.objid and dep.deptype = 'e'
 where c.relkind = 'f'
   and (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
        or pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
   and n.nspname = any(array(select trim(unnest(string_to_array(current_setting('pgrst.db_schemas', 't'), ',')))))
   and n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
   and dep.objid is null;

-- name: sensitive_columns_exposed
-- lints/0023_sensitive_columns_exposed.sql
with sensitive_patterns as (
    select unnest(array[
        'password', 'passwd', 'pwd', 'passphrase',
        'secret', 'secret_key', 'private_key', 'api_key', 'apikey',
        'auth_key', 'token', 'jwt', 'access_token', 'refresh_token',
        'oauth_token', 'session_token', 'bearer_token', 'auth_code',
        'session_id', 'session_key', 'session_secret',
        'recovery_code', 'backup_code', 'verification_code',
        'otp', 'two_factor', '2fa_secret', '2fa_code',
        'ssn', 'social_security', 'social_security_number',
        'driver_license', 'drivers_license', 'license_number',
        'passport_number', 'passport_id', 'national_id', 'tax_id',
        'credit_card', 'card_number', 'cvv', 'cvc', 'cvn',
        'bank_account', 'account_number', 'routing_number',
        'iban', 'swift_code', 'bic',
        'health_record', 'medical_record', 'patient_id',
        'insurance_number', 'health_insurance', 'medical_insurance',
        'treatment',
        'mac_address', 'macaddr', 'imei', 'device_uuid',
        'pgp_key', 'gpg_key', 'ssh_key', 'certificate',
        'license_key', 'activation_key',
        'facial_recognition'
    ]) as pattern
), exposed_tables as (
    select n.nspname as schema_name, c.relname as table_name, c.oid as table_oid
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on c.relnamespace = n.oid
     where c.relkind = 'r'
       and (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
            or pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
       and n.nspname = any(array(select trim(unnest(string_to_array(current_setting('pgrst.db_schemas', 't'), ',')))))
       and n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
       and not c.relrowsecurity
), sensitive_columns as (
    select et.schema_name, et.table_name, a.attname as column_name
      from exposed_tables et
      join pg_catalog.pg_attribute a on a.attrelid = et.table_oid and a.attnum > 0 and not a.attisdropped
     cross join sensitive_patterns sp
     where replace(lower(a.attname), '-', '_') = sp.pattern
)
select format('sensitive_columns_exposed_%s_%s', schema_name, table_name) as finding
  from sensitive_columns
 group by schema_name, table_name;

-- name: rls_policy_always_true
-- lints/0024_rls_policy_always_true.sql
with policies as (
    select nsp.nspname as schema_name, pb.tablename as table_name, pc.relrowsecurity as is_rls_active,
           pa.polname as policy_name, pa.polpermissive as is_permissive, pa.polroles as role_oids,
           case pa.polcmd when 'r' then 'SELECT' when 'a' then 'INSERT' when 'w' then 'UPDATE'
                          when 'd' then 'DELETE' when '*' then 'ALL' end as command,
           pb.qual, pb.with_check,
           replace(replace(replace(lower(coalesce(pb.qual, '')), ' ', ''), E'\n', ''), E'\t', '') as normalized_qual,
           replace(replace(replace(lower(coalesce(pb.with_check, '')), ' ', ''), E'\n', ''), E'\t', '') as normalized_with_check
      from pg_catalog.pg_policy pa
      join pg_catalog.pg_class pc on pa.polrelid = pc.oid
      join pg_catalog.pg_namespace nsp on pc.relnamespace = nsp.oid
      join pg_catalog.pg_policies pb
        on pc.relname = pb.tablename and nsp.nspname = pb.schemaname and pa.polname = pb.policyname
     where pc.relkind = 'r'
       and nsp.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','))
), permissive_patterns as (
    select p.*,
           (command in ('UPDATE', 'DELETE', 'ALL')
            and (normalized_qual in ('true', '(true)', '1=1', '(1=1)') or (qual is null and is_permissive)))
             as has_permissive_using,
           (normalized_with_check in ('true', '(true)', '1=1', '(1=1)')
            or (with_check is null and is_permissive and command = 'INSERT')
            or (with_check is null and is_permissive and command in ('UPDATE', 'ALL')
                and normalized_qual in ('true', '(true)', '1=1', '(1=1)')))
             as has_permissive_with_check
      from policies p
     where is_rls_active
       and is_permissive
       and (role_oids = array[0::oid]
            or exists (select 1 from unnest(role_oids) as r where r::regrole::text in ('anon', 'authenticated')))
)
select format('rls_policy_always_true_%s_%s_%s', schema_name, table_name, policy_name) as finding
  from permissive_patterns
 where has_permissive_using or has_permissive_with_check;

-- name: anon_security_definer_function_executable
-- lints/0028_anon_security_definer_function_executable.sql
select format('anon_security_definer_function_executable_%s_%s_%s', n.nspname, p.proname,
              pg_catalog.pg_get_function_identity_arguments(p.oid)) as finding
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on p.pronamespace = n.oid
 where p.prosecdef = true
   and pg_catalog.has_function_privilege('anon', p.oid, 'EXECUTE')
   and n.nspname = any(array(select trim(unnest(string_to_array(current_setting('pgrst.db_schemas', 't'), ',')))))
   and n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','));

-- name: authenticated_security_definer_function_executable
-- lints/0029_authenticated_security_definer_function_executable.sql
select format('authenticated_security_definer_function_executable_%s_%s_%s', n.nspname, p.proname,
              pg_catalog.pg_get_function_identity_arguments(p.oid)) as finding
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on p.pronamespace = n.oid
 where p.prosecdef = true
   and pg_catalog.has_function_privilege('authenticated', p.oid, 'EXECUTE')
   and n.nspname = any(array(select trim(unnest(string_to_array(current_setting('pgrst.db_schemas', 't'), ',')))))
   and n.nspname <> all (string_to_array(current_setting('advisor.skipped_schemas'), ','));
