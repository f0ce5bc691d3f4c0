-- API keys owned by an organisation. A key belongs to a user (user_id) or to an
-- organisation (organisation_id), never both. Organisation owners and admins create, list
-- and revoke its keys; such a key acts as the organisation's paying owner (whose plan
-- grants api_access and sets the rate limit, counted per organisation) and carries the
-- claim organisation_id, which the restrictive policies below hold to that organisation's
-- bots and what they did. Organisation keys take the bot scopes only (bots:read,
-- bots:write, trades:read): publishing signals stays with a provider's own key.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

alter table public.api_keys alter column user_id drop not null;
alter table public.api_keys add column organisation_id uuid references public.organisations (id) on delete cascade;
alter table public.api_keys add constraint api_keys_one_owner check ((user_id is null) <> (organisation_id is null));
alter table public.api_keys add constraint api_keys_organisation_scopes
  check (organisation_id is null or scopes <@ array['bots:read', 'bots:write', 'trades:read']::text[]);
create index api_keys_organisation_id_idx on public.api_keys (organisation_id, created_at desc)
  where organisation_id is not null;

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

grant select (organisation_id) on public.api_keys to authenticated, service_role;
create policy "Organisation admins can read its API keys" on public.api_keys
  for select to authenticated using (organisation_id = any ((select private.organisation_ids('admin'))::uuid[]));

-- A request made with an organisation's key reaches that organisation's bots only.
create policy "Organisation API keys reach only its bots" on public.bots
  as restrictive for all to authenticated
  using (((select auth.jwt()) ->> 'organisation_id') is null
         or organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid)
  with check (((select auth.jwt()) ->> 'organisation_id') is null
              or organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid);
create policy "Organisation API keys reach only its strategies" on public.strategies
  as restrictive for all to authenticated
  using (((select auth.jwt()) ->> 'organisation_id') is null
         or organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid
         or (is_public and strategy_type = 'marketplace' and is_verified))
  with check (((select auth.jwt()) ->> 'organisation_id') is null
              or organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid);
create policy "Organisation API keys reach only its orders" on public.orders
  as restrictive for select to authenticated
  using (((select auth.jwt()) ->> 'organisation_id') is null
         or exists (select 1 from public.bots b
                     where b.id = bot_id and b.organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid));
create policy "Organisation API keys reach only its trades" on public.trades
  as restrictive for select to authenticated
  using (((select auth.jwt()) ->> 'organisation_id') is null
         or exists (select 1 from public.bots b
                     where b.id = bot_id and b.organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid));

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- Create a key for an organisation (its owners and admins): shown once, here.
create or replace function public.create_organisation_api_key(p_organisation_id uuid, p_name text, p_scopes text[],
                                                              p_expires_at timestamptz default null,
                                                              p_environment text default 'live')
returns table (id uuid, key text, prefix text, name text, environment text, scopes text[], expires_at timestamptz,
               created_at timestamptz)
language plpgsql security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_owner uuid;
  v_plan public.plans;
  v_key text;
  v_row public.api_keys;
begin
  perform private.organisation_caller();
  if p_name is null or char_length(btrim(p_name)) not between 1 and 100 then
    raise exception 'name must be 1 to 100 characters' using errcode = 'invalid_parameter_value';
  end if;
  if p_scopes is null or cardinality(p_scopes) not between 1 and 16 or array_position(p_scopes, null) is not null
     or not p_scopes <@ array['bots:read', 'bots:write', 'trades:read']::text[] then
    raise exception 'an organisation''s key takes one or more of bots:read, bots:write, trades:read'
      using errcode = 'invalid_parameter_value', constraint = 'api_keys_organisation_scopes';
  end if;
  if p_environment is null or p_environment not in ('live', 'test') then
    raise exception 'environment must be live or test' using errcode = 'invalid_parameter_value';
  end if;
  if p_expires_at is not null and (p_expires_at <= now() or p_expires_at > now() + interval '2 years'
                                   or not isfinite(p_expires_at)) then
    raise exception 'expires_at must be in the future and at most two years away' using errcode = 'invalid_parameter_value';
  end if;
  perform private.organisation_require(p_organisation_id, 'admin');
  perform pg_advisory_xact_lock(hashtextextended('api_keys:org:' || p_organisation_id::text, 0));
  select o.owner_id into v_owner from public.organisations o where o.id = p_organisation_id;
  v_plan := private.current_plan(v_owner);
  if not v_plan.api_access then
    perform private.raise_plan_limit(v_plan, 'api_access', 'does not include API access', null,
                                     'api_keys_plan_api_access');
  end if;
  if (select count(*) from public.api_keys k where k.organisation_id = p_organisation_id and k.revoked_at is null) >= 25 then
    raise exception 'at most 25 API keys may be active at once; revoke one first'
      using errcode = 'check_violation', constraint = 'api_keys_max_active';
  end if;
  v_key := 'tf_' || p_environment || '_'
           || translate(encode(extensions.gen_random_bytes(24), 'base64'), '+/', 'xy');
  insert into public.api_keys (organisation_id, name, environment, prefix, key_hash, scopes, expires_at)
  values (p_organisation_id, btrim(p_name), p_environment, left(v_key, 16), private.api_key_hash(v_key),
          array(select distinct s from unnest(p_scopes) s order by s), p_expires_at)
  returning * into v_row;
  return query select v_row.id, v_key, v_row.prefix, v_row.name, v_row.environment, v_row.scopes, v_row.expires_at,
                      v_row.created_at;
end;
$$;
revoke all on function public.create_organisation_api_key(uuid, text, text[], timestamptz, text) from public, anon;
grant execute on function public.create_organisation_api_key(uuid, text, text[], timestamptz, text) to authenticated;

-- Revoke one of the caller's keys, one of their organisation's (owners and admins), or,
-- for the service, anyone's. Revoking twice keeps the first time.
create or replace function public.revoke_api_key(p_id uuid)
returns table (id uuid, revoked_at timestamptz)
language plpgsql security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_user uuid := (select auth.uid());
  v_service boolean := private.is_service();
begin
  if not v_service and v_user is null then
    raise exception 'API keys are revoked by a signed-in user' using errcode = 'insufficient_privilege';
  end if;
  return query
    with changed as (
      update public.api_keys k set revoked_at = coalesce(k.revoked_at, now())
       where k.id = p_id
         and (v_service or k.user_id = v_user or k.organisation_id = any (private.organisation_ids('admin')))
      returning k.id, k.revoked_at
    )
    select c.id, c.revoked_at from changed c;
  if not found then
    raise exception 'no such API key' using errcode = 'no_data_found';
  end if;
end;
$$;
revoke all on function public.revoke_api_key(uuid) from public, anon;
grant execute on function public.revoke_api_key(uuid) to authenticated, service_role;

-- The api function's one call per request, as before; an organisation's key resolves to
-- its paying owner (plan, credits) with the claim organisation_id, limited per organisation.
create or replace function public.api_authorize(p_key text, p_scope text, p_ip inet default null) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_key public.api_keys;
  v_user uuid;
  v_plan public.plans;
  v_role text;
  v_limit integer;
  v_rate record;
  v_headers jsonb;
  v_claims jsonb;
begin
  if not private.is_service() then
    raise exception 'only the service resolves API keys' using errcode = 'insufficient_privilege';
  end if;
  perform set_config('synchronous_commit', 'off', true);
  if p_key is null or p_key !~ '^tf_(live|test)_[A-Za-z0-9]{32}$' then
    return jsonb_build_object('status', 401, 'error', 'invalid API key');
  end if;
  select * into v_key from public.api_keys k where k.key_hash = private.api_key_hash(p_key);
  if not found or v_key.revoked_at is not null or (v_key.expires_at is not null and v_key.expires_at <= now()) then
    return jsonb_build_object('status', 401, 'error', 'invalid API key');
  end if;
  if p_scope is not null and not p_scope = any (v_key.scopes) then
    return jsonb_build_object('status', 403, 'error', format('this API key lacks the scope %s', p_scope),
                              'scope', p_scope);
  end if;
  v_user := coalesce(v_key.user_id, (select o.owner_id from public.organisations o where o.id = v_key.organisation_id));
  v_plan := private.current_plan(v_user);
  if not v_plan.api_access then
    return jsonb_build_object('status', 403, 'error',
      format('plan limit reached: the %s plan does not include API access (api_access)%s', v_plan.name,
             coalesce('; the ' || private.plan_lifting('api_access') || ' plan does', '')));
  end if;
  v_limit := coalesce((v_plan.features ->> 'api_requests_per_minute')::integer, 60);
  select * into v_rate from private.rate_limit_take(
    case when v_key.organisation_id is null then 'api:user:' || v_user else 'api:org:' || v_key.organisation_id end,
    v_limit, interval '1 minute');
  v_headers := jsonb_build_object('limit', v_limit, 'remaining', v_rate.remaining, 'reset', v_rate.reset_seconds);
  if not v_rate.allowed then
    return v_headers || jsonb_build_object('status', 429, 'retry_after', v_rate.retry_after_seconds,
      'error', format('rate limit reached: the %s plan allows %s API requests a minute (api_requests_per_minute)',
                      v_plan.name, v_limit));
  end if;
  if v_key.last_used_at is null or v_key.last_used_at < now() - interval '1 minute'
     or v_key.last_used_ip is distinct from p_ip then
    update public.api_keys k set last_used_at = now(), last_used_ip = p_ip where k.id = v_key.id;
  end if;
  select coalesce(u.raw_app_meta_data ->> 'role', 'user') into v_role from auth.users u where u.id = v_user;
  v_claims := jsonb_build_object(
    'sub', v_user, 'role', 'authenticated', 'aud', 'authenticated', 'aal', 'aal1',
    'app_metadata', jsonb_build_object('role', case when v_role = 'provider' then 'provider' else 'user' end),
    'api_key_id', v_key.id);
  if v_key.organisation_id is not null then
    v_claims := v_claims || jsonb_build_object('organisation_id', v_key.organisation_id);
  end if;
  return v_headers || jsonb_build_object(
    'status', 200, 'user_id', v_user, 'organisation_id', v_key.organisation_id, 'key_id', v_key.id,
    'scopes', to_jsonb(v_key.scopes), 'claims', v_claims);
end;
$$;
revoke all on function public.api_authorize(text, text, inet) from public, anon, authenticated;
grant execute on function public.api_authorize(text, text, inet) to service_role;
