-- API keys and rate limits for the public API (the Edge Function `api`).
-- * A key is `tf_live_<32 characters>` or `tf_test_<32 characters>`, returned once by
--   create_api_key. The table keeps its first 16 characters (to show which key is which)
--   and an HMAC-SHA256 of the whole key under a server secret. That secret lives in
--   private.api_key_secret, which no role may read: only the security definer functions
--   below (owned by the migration owner) use it. A copy of the table without the secret
--   cannot test guesses offline.
-- * Keys belong to a user (user_id). An organisation owner can be added later as a
--   second owner column with a check that exactly one of the two is set; scopes,
--   rate limits and the lookup do not depend on the owner's kind.
-- * Nobody reads key_hash, not even the service role: authenticated and service_role hold
--   select on every other column, and keys change only through create_api_key and
--   revoke_api_key. Apps list the columns they read (`select=id,name,prefix,…`).
-- * api_authorize (service only) resolves a key to its user, its scopes and a rate-limit
--   decision in one call: unknown, malformed, revoked and expired keys all answer 401;
--   a missing scope or a plan without api_access answers 403; a request over the plan's
--   api_requests_per_minute (plans.features, default 60) answers 429. Only an admitted
--   request writes (the limiter's state and the key's last use).
-- * The limiter is GCRA: one row per bucket holding its theoretical arrival time, moved
--   by a single INSERT … ON CONFLICT DO UPDATE … WHERE, so concurrent requests serialise
--   on the row and never admit more than the limit.
-- * api_authorize's transaction commits asynchronously (synchronous_commit off): a crash may
--   forget the last moments of rate-limit state and last use, never a key or a grant.

-- Tables and indexes --------------------------------------------------------------------

create table private.api_key_secret (
  id boolean primary key default true constraint api_key_secret_one_row check (id),
  secret bytea not null default extensions.gen_random_bytes(32),
  created_at timestamptz not null default now()
);
insert into private.api_key_secret default values;

create table public.api_keys (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  name text not null constraint api_keys_name_length check (char_length(btrim(name)) between 1 and 100),
  environment text not null constraint api_keys_environment_known check (environment in ('live', 'test')),
  prefix text not null,
  key_hash bytea not null constraint api_keys_key_hash_unique unique,
  scopes text[] not null constraint api_keys_scopes_known check (
    cardinality(scopes) between 1 and 16
    and scopes <@ array['bots:read', 'bots:write', 'trades:read', 'signals:write']::text[]),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  last_used_ip inet,
  created_at timestamptz not null default now()
);

create index api_keys_user_id_idx on public.api_keys (user_id, created_at desc);

create table private.rate_limit_buckets (
  bucket text primary key,
  tat timestamptz not null
);

-- Row level security and grants ---------------------------------------------------------

revoke all on private.api_key_secret, private.rate_limit_buckets from public, anon, authenticated, service_role;
revoke all on public.api_keys from anon, authenticated, service_role;
grant select (id, user_id, name, environment, prefix, scopes, expires_at, revoked_at, last_used_at, last_used_ip,
              created_at)
  on public.api_keys to service_role;
grant select (id, user_id, name, environment, prefix, scopes, expires_at, revoked_at, last_used_at, last_used_ip,
              created_at)
  on public.api_keys to authenticated;
alter table public.api_keys enable row level security;
create policy "Users can read their own API keys" on public.api_keys
  for select to authenticated using (user_id = (select auth.uid()));

-- Functions -----------------------------------------------------------------------------

-- The keyed hash a key is stored and found by.
create or replace function private.api_key_hash(p_key text) returns bytea
language sql stable security definer
set search_path = ''
as $$
  select extensions.hmac(convert_to(p_key, 'UTF8'), s.secret, 'sha256') from private.api_key_secret s
$$;
revoke all on function private.api_key_hash(text) from public, anon, authenticated, service_role;

-- Create a key for the calling user: shown once, here, and never again.
create or replace function public.create_api_key(p_name text, p_scopes text[], p_expires_at timestamptz default null,
                                                 p_environment text default 'live')
returns table (id uuid, key text, prefix text, name text, environment text, scopes text[], expires_at timestamptz,
               created_at timestamptz)
language plpgsql security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_user uuid := (select auth.uid());
  v_plan public.plans;
  v_key text;
  v_row public.api_keys;
begin
  if v_user is null or private.is_service() then
    raise exception 'API keys are created by a signed-in user'
      using errcode = 'insufficient_privilege';
  end if;
  if p_name is null or char_length(btrim(p_name)) not between 1 and 100 then
    raise exception 'name must be 1 to 100 characters' using errcode = 'invalid_parameter_value';
  end if;
  if p_scopes is null or cardinality(p_scopes) not between 1 and 16 or array_position(p_scopes, null) is not null
     or not p_scopes <@ array['bots:read', 'bots:write', 'trades:read', 'signals:write']::text[] then
    raise exception 'scopes must be one or more of bots:read, bots:write, trades:read, signals:write'
      using errcode = 'invalid_parameter_value';
  end if;
  if p_environment is null or p_environment not in ('live', 'test') then
    raise exception 'environment must be live or test' using errcode = 'invalid_parameter_value';
  end if;
  if p_expires_at is not null and (p_expires_at <= now() or p_expires_at > now() + interval '2 years'
                                   or not isfinite(p_expires_at)) then
    raise exception 'expires_at must be in the future and at most two years away' using errcode = 'invalid_parameter_value';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('api_keys:' || v_user::text, 0));
  v_plan := private.current_plan(v_user);
  if not v_plan.api_access then
    perform private.raise_plan_limit(v_plan, 'api_access', 'does not include API access', null,
                                     'api_keys_plan_api_access');
  end if;
  if (select count(*) from public.api_keys k where k.user_id = v_user and k.revoked_at is null) >= 25 then
    raise exception 'at most 25 API keys may be active at once; revoke one first'
      using errcode = 'check_violation', constraint = 'api_keys_max_active';
  end if;
  v_key := 'tf_' || p_environment || '_'
           || translate(encode(extensions.gen_random_bytes(24), 'base64'), '+/', 'xy');
  insert into public.api_keys (user_id, name, environment, prefix, key_hash, scopes, expires_at)
  values (v_user, btrim(p_name), p_environment, left(v_key, 16), private.api_key_hash(v_key),
          array(select distinct s from unnest(p_scopes) s order by s), p_expires_at)
  returning * into v_row;
  return query select v_row.id, v_key, v_row.prefix, v_row.name, v_row.environment, v_row.scopes, v_row.expires_at,
                      v_row.created_at;
end;
$$;
revoke all on function public.create_api_key(text, text[], timestamptz, text) from public, anon;
grant execute on function public.create_api_key(text, text[], timestamptz, text) to authenticated;

-- Revoke one of the caller's keys (or, for the service, anyone's). Revoking twice keeps
-- the first time.
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
       where k.id = p_id and (v_service or k.user_id = v_user)
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

-- GCRA: admit one request into `p_bucket`, which allows p_limit requests per p_period.
-- Returns (allowed, remaining, reset_seconds, retry_after_seconds). A refused request
-- changes nothing.
create or replace function private.rate_limit_take(p_bucket text, p_limit integer, p_period interval,
                                                   out allowed boolean, out remaining integer,
                                                   out reset_seconds integer, out retry_after_seconds integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_t interval := p_period / greatest(p_limit, 1);
  v_tat timestamptz;
begin
  if p_limit is null or p_limit < 1 then
    allowed := false; remaining := 0; reset_seconds := ceil(extract(epoch from p_period))::integer;
    retry_after_seconds := reset_seconds;
    return;
  end if;
  insert into private.rate_limit_buckets as b (bucket, tat) values (p_bucket, v_now + v_t)
  on conflict (bucket) do update set tat = greatest(b.tat, v_now) + v_t
   where greatest(b.tat, v_now) + v_t <= v_now + p_period
  returning b.tat into v_tat;
  allowed := v_tat is not null;
  if not allowed then
    select b.tat into v_tat from private.rate_limit_buckets b where b.bucket = p_bucket;
    retry_after_seconds := greatest(ceil(extract(epoch from (v_tat + v_t - p_period - v_now))), 1)::integer;
  end if;
  remaining := greatest(floor(extract(epoch from (v_now + p_period - v_tat)) / extract(epoch from v_t)), 0)::integer;
  reset_seconds := greatest(ceil(extract(epoch from (v_tat - v_now))), 0)::integer;
end;
$$;
revoke all on function private.rate_limit_take(text, integer, interval) from public, anon, authenticated, service_role;

-- The api function's one call per request: key → user, scope, plan and rate limit.
-- Returns a JSON object: status (200, 401, 403 or 429), error, and for 200 the user id,
-- the key id, the JWT claims to act with (role authenticated; app_metadata.role is
-- 'provider' or 'user': a key never carries admin powers), and for 200 and 429 the
-- rate-limit figures limit, remaining, reset and retry_after.
create or replace function public.api_authorize(p_key text, p_scope text, p_ip inet default null) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_key public.api_keys;
  v_plan public.plans;
  v_role text;
  v_limit integer;
  v_rate record;
  v_headers jsonb;
begin
  if not private.is_service() then
    raise exception 'only the service resolves API keys' using errcode = 'insufficient_privilege';
  end if;
  -- What this call writes (the limiter, the key's last use) may be lost in a crash without
  -- harm, so its transaction commits without waiting for the WAL flush: that wait is most of
  -- a request's cost. Call it as a statement of its own, as the api function does.
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
  v_plan := private.current_plan(v_key.user_id);
  if not v_plan.api_access then
    return jsonb_build_object('status', 403, 'error',
      format('plan limit reached: the %s plan does not include API access (api_access)%s', v_plan.name,
             coalesce('; the ' || private.plan_lifting('api_access') || ' plan does', '')));
  end if;
  v_limit := coalesce((v_plan.features ->> 'api_requests_per_minute')::integer, 60);
  select * into v_rate from private.rate_limit_take('api:user:' || v_key.user_id, v_limit, interval '1 minute');
  v_headers := jsonb_build_object('limit', v_limit, 'remaining', v_rate.remaining, 'reset', v_rate.reset_seconds);
  if not v_rate.allowed then
    return v_headers || jsonb_build_object('status', 429, 'retry_after', v_rate.retry_after_seconds,
      'error', format('rate limit reached: the %s plan allows %s API requests a minute (api_requests_per_minute)',
                      v_plan.name, v_limit));
  end if;
  -- The last use to the minute (and any change of address): a busy key is not rewritten on
  -- every request.
  if v_key.last_used_at is null or v_key.last_used_at < now() - interval '1 minute'
     or v_key.last_used_ip is distinct from p_ip then
    update public.api_keys k set last_used_at = now(), last_used_ip = p_ip where k.id = v_key.id;
  end if;
  select coalesce(u.raw_app_meta_data ->> 'role', 'user') into v_role from auth.users u where u.id = v_key.user_id;
  return v_headers || jsonb_build_object(
    'status', 200, 'user_id', v_key.user_id, 'key_id', v_key.id, 'scopes', to_jsonb(v_key.scopes),
    'claims', jsonb_build_object(
      'sub', v_key.user_id, 'role', 'authenticated', 'aud', 'authenticated', 'aal', 'aal1',
      'app_metadata', jsonb_build_object('role', case when v_role = 'provider' then 'provider' else 'user' end),
      'api_key_id', v_key.id));
end;
$$;
revoke all on function public.api_authorize(text, text, inet) from public, anon, authenticated;
grant execute on function public.api_authorize(text, text, inet) to service_role;
