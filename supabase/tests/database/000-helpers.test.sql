set client_min_messages = warning;
-- Test helpers shared by every pgTAP file (kept, like supabase_test_helpers, in schema tests).
-- This file commits on purpose: the other files call these helpers inside their own
-- begin … rollback.

create extension if not exists pgtap with schema extensions;
drop function if exists tests.claims_for(uuid, text);
create schema if not exists tests;
grant usage on schema tests to anon, authenticated, tradefleet_admin, service_role;

-- Deterministic ids for fixtures: tests.id('bot', 2) is the same uuid in every file.
create or replace function tests.id(p_kind text, p_n integer) returns uuid
language sql immutable
as $$ select md5(p_kind || ':' || p_n)::uuid $$;

-- Sign a user up the way Supabase Auth does.
create or replace function tests.create_user(p_n integer, p_email text, p_role text default 'user')
returns uuid
language plpgsql
as $$
begin
  insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data,
                          created_at, updated_at)
  values (tests.id('user', p_n), 'authenticated', 'authenticated', p_email, now(),
          jsonb_build_object('provider', 'email', 'role', p_role),
          jsonb_build_object('full_name', initcap(split_part(p_email, '@', 1))), now(), now());
  return tests.id('user', p_n);
end;
$$;

-- The claims Supabase Auth puts in a user's JWT, passed through the project's custom
-- access token hook as Auth does.
create or replace function tests.claims_for(p_user uuid, p_aal text default 'aal1') returns jsonb
language sql stable
as $$
  select public.custom_access_token_hook(jsonb_build_object('user_id', u.id, 'claims', jsonb_build_object(
    'sub', u.id, 'role', 'authenticated', 'aud', 'authenticated', 'email', u.email,
    'app_metadata', u.raw_app_meta_data, 'user_metadata', u.raw_user_meta_data,
    'aal', p_aal, 'is_anonymous', false))) -> 'claims'
  from auth.users u where u.id = p_user
$$;

-- Become a requester as PostgREST does: role plus request.jwt.claims, local to the transaction.
create or replace function tests.authenticate_as(p_actor text, p_aal text default 'aal1') returns void
language plpgsql
as $$
declare
  v_claims jsonb;
begin
  perform tests.clear_authentication();
  if p_actor = 'anon' then
    perform set_config('request.jwt.claims', '{"role": "anon"}', true);
    perform set_config('role', 'anon', true);
  elsif p_actor = 'service_role' then
    perform set_config('request.jwt.claims', '{"role": "service_role"}', true);
    perform set_config('role', 'service_role', true);
  else
    v_claims := tests.claims_for((select id from auth.users where email = p_actor), p_aal);
    perform set_config('request.jwt.claims', v_claims::text, true);
    perform set_config('role', v_claims ->> 'role', true);
  end if;
end;
$$;

create or replace function tests.clear_authentication() returns void
language plpgsql
as $$
begin
  perform set_config('role', 'none', true);
  perform set_config('request.jwt.claims', '', true);
end;
$$;

-- Run one statement as an actor and undo it: 'rows=N' (rows seen or changed) or
-- 'denied' (insufficient privilege, including RLS check failures) or 'error=<sqlstate>'.
create or replace function tests.try_as(p_actor text, p_sql text, p_aal text default 'aal1') returns text
language plpgsql
as $$
declare
  v_rows bigint;
  v_result text;
begin
  begin
    perform tests.authenticate_as(p_actor, p_aal);
    if lower(ltrim(p_sql)) like 'select%' then
      execute format('select count(*) from (%s) q', p_sql) into v_rows;
    else
      execute p_sql;
      get diagnostics v_rows = row_count;
    end if;
    v_result := 'rows=' || v_rows;
    raise exception using errcode = 'TFUND', message = v_result;
  exception
    when sqlstate 'TFUND' then v_result := sqlerrm;
    when insufficient_privilege then v_result := 'denied';
    when others then v_result := 'error=' || sqlstate;
  end;
  perform tests.clear_authentication();
  return v_result;
end;
$$;

grant execute on all functions in schema tests to anon, authenticated, tradefleet_admin, service_role;

select plan(1);
select has_function('tests', 'try_as', array['text', 'text', 'text'], 'test helpers are installed');
select * from finish();
