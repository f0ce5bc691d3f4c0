-- API usage metering, per-key rate limits and the new API scopes.
-- * Every answered API call with a known key is recorded (key, user, endpoint, status,
--   latency, time) by public.api_record_calls, which the api function calls after it has
--   answered, several calls of one isolate batched into one insert. The raw rows live in
--   private.api_calls (append-only, keyed by id) until public.api_usage_rollup, run every
--   minute by the fleet, moves them into the per-minute and per-day rollups in one
--   statement (delete … returning feeding both upserts), so a row is counted once however
--   the rollups race. Nothing is recomputed on read.
-- * Owners read their usage through the security_invoker views api_usage_per_minute and
--   api_usage_per_day; the rollup tables are in the Realtime publication, so apps watch
--   them live. Who may see a key's usage is one function, private.api_usage_visible, used
--   by both tables' policies: the place to add organisation owners and admins.
-- * Billing: plans.api_credits_per_1000_calls prices API calls (null: free). Each key's
--   closed UTC day is charged once through the ledger, from the user's account to
--   system:usage, with a transfer id derived from the key and the day, so a retried
--   rollup never charges twice. A day is closed five minutes after its end.
-- * Rate limits: besides the per-user bucket, a plan may limit each key
--   (features.api_key_requests_per_minute). Both decisions are taken in api_authorize's
--   one call; a request refused by one bucket gives back what the other took.
-- * Scopes: portfolio:read, backtests:read and backtests:write join the list, kept in one
--   function (private.api_scopes) that the table's check and create_api_key share.

-- Tables and indexes --------------------------------------------------------------------

alter table public.plans add column api_credits_per_1000_calls numeric(20, 8)
  constraint plans_api_credits_per_1000_calls_not_negative check (api_credits_per_1000_calls >= 0);

create or replace function private.api_scopes() returns text[]
language sql immutable
set search_path = ''
as $$
  select array['backtests:read', 'backtests:write', 'bots:read', 'bots:write', 'portfolio:read', 'signals:write',
               'trades:read']::text[]
$$;
revoke all on function private.api_scopes() from public, anon, authenticated;

alter table public.api_keys drop constraint api_keys_scopes_known;
alter table public.api_keys add constraint api_keys_scopes_known
  check (cardinality(scopes) between 1 and 16 and scopes <@ private.api_scopes());

create table private.api_calls (
  id bigint generated always as identity primary key,
  key_id uuid not null,
  user_id uuid not null,
  endpoint text not null,
  status smallint not null,
  latency_ms integer not null,
  called_at timestamptz not null
);

create table public.api_usage_minutes (
  key_id uuid not null references public.api_keys (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  minute timestamptz not null,
  endpoint text not null,
  status smallint not null,
  calls integer not null,
  latency_ms_sum bigint not null,
  latency_ms_max integer not null,
  primary key (key_id, minute, endpoint, status)
);
create index api_usage_minutes_user_minute_idx on public.api_usage_minutes (user_id, minute desc);

create table public.api_usage_days (
  key_id uuid not null references public.api_keys (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  day date not null,
  calls bigint not null,
  errors bigint not null,
  latency_ms_sum bigint not null,
  billed_calls bigint,
  credits_charged numeric(24, 8),
  billed_at timestamptz,
  billing_error text,
  primary key (key_id, day)
);
create index api_usage_days_user_day_idx on public.api_usage_days (user_id, day desc);
create index api_usage_days_unbilled_idx on public.api_usage_days (day) where billed_at is null;

-- Row level security and grants ---------------------------------------------------------

revoke all on private.api_calls from public, anon, authenticated, service_role;
revoke all on public.api_usage_minutes, public.api_usage_days from anon, authenticated, service_role;
grant select on public.api_usage_minutes, public.api_usage_days to authenticated, service_role;
alter table public.api_usage_minutes enable row level security;
alter table public.api_usage_days enable row level security;

-- Whose usage the caller sees: their own keys'. Keys owned by an organisation extend this
-- one function (its owners and admins), and both policies follow.
create or replace function private.api_usage_visible(p_user_id uuid) returns boolean
language sql stable
set search_path = ''
as $$
  select p_user_id = (select auth.uid())
$$;
revoke all on function private.api_usage_visible(uuid) from public, anon;
grant execute on function private.api_usage_visible(uuid) to authenticated, service_role;

create policy "Owners can read their keys' usage per minute" on public.api_usage_minutes
  for select to authenticated using (private.api_usage_visible(user_id));
create policy "Owners can read their keys' usage per day" on public.api_usage_days
  for select to authenticated using (private.api_usage_visible(user_id));

-- Functions -----------------------------------------------------------------------------

create or replace view public.api_usage_per_minute with (security_invoker = true) as
select m.key_id, k.name as key_name, k.prefix as key_prefix, m.user_id, m.minute, m.endpoint, m.status, m.calls,
       round(m.latency_ms_sum::numeric / nullif(m.calls, 0), 1) as latency_ms_avg, m.latency_ms_max
  from public.api_usage_minutes m
  join public.api_keys k on k.id = m.key_id;

create or replace view public.api_usage_per_day with (security_invoker = true) as
select d.key_id, k.name as key_name, k.prefix as key_prefix, d.user_id, d.day, d.calls, d.errors,
       round(d.latency_ms_sum::numeric / nullif(d.calls, 0), 1) as latency_ms_avg, d.billed_calls, d.credits_charged,
       d.billed_at
  from public.api_usage_days d
  join public.api_keys k on k.id = d.key_id;

revoke all on public.api_usage_per_minute, public.api_usage_per_day from anon, authenticated, service_role;
grant select on public.api_usage_per_minute, public.api_usage_per_day to authenticated, service_role;

-- The api function's usage records: a JSON array of {key_id, user_id, endpoint, status,
-- latency_ms, at}, at most 1000. Commits without waiting for the WAL flush (a crash may
-- forget the last moments of usage, never a key or a charge).
create or replace function public.api_record_calls(p_calls jsonb) returns integer
language plpgsql security definer
set search_path = ''
as $$
declare
  v_n integer;
begin
  if not private.is_service() then
    raise exception 'only the service records API calls' using errcode = 'insufficient_privilege';
  end if;
  if p_calls is null or jsonb_typeof(p_calls) <> 'array' or jsonb_array_length(p_calls) > 1000 then
    raise exception 'calls must be a JSON array of at most 1000 calls' using errcode = 'invalid_parameter_value';
  end if;
  perform set_config('synchronous_commit', 'off', true);
  insert into private.api_calls (key_id, user_id, endpoint, status, latency_ms, called_at)
  select c.key_id, c.user_id, c.endpoint, c.status, greatest(c.latency_ms, 0), coalesce(c.at, now())
    from jsonb_to_recordset(p_calls) as c(key_id uuid, user_id uuid, endpoint text, status smallint, latency_ms integer,
                                         at timestamptz)
   where c.key_id is not null and c.user_id is not null and char_length(c.endpoint) between 1 and 100
     and c.status between 100 and 599 and c.latency_ms is not null;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
revoke all on function public.api_record_calls(jsonb) from public, anon, authenticated;
grant execute on function public.api_record_calls(jsonb) to service_role;

-- Charge one closed day of one key (a row of api_usage_days, locked by the caller).
create or replace function private.api_usage_bill_day(p_key_id uuid, p_day date) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_day public.api_usage_days;
  v_price numeric;
  v_amount numeric;
begin
  select * into v_day from public.api_usage_days d where d.key_id = p_key_id and d.day = p_day for update;
  if not found or v_day.billed_at is not null then
    return;
  end if;
  v_price := (private.current_plan(v_day.user_id)).api_credits_per_1000_calls;
  v_amount := round(coalesce(v_price, 0) * v_day.calls / 1000, 8);
  if v_amount > 0 then
    begin
      perform private.credit_apply_or_raise(
        md5('api_usage:' || p_key_id || ':' || p_day)::uuid,
        'transfer', private.credit_user_account(v_day.user_id), private.credit_system_account('system:usage'),
        v_amount, 'usage', null, null, 'api_usage', p_key_id || ':' || p_day,
        jsonb_build_object('usage', 'api_call', 'quantity', v_day.calls, 'credits_per_1000_calls', v_price,
                           'day', p_day));
    exception when others then
      update public.api_usage_days d set billing_error = sqlerrm where d.key_id = p_key_id and d.day = p_day;
      return;
    end;
  end if;
  update public.api_usage_days d
     set billed_calls = v_day.calls, credits_charged = v_amount, billed_at = now(), billing_error = null
   where d.key_id = p_key_id and d.day = p_day;
end;
$$;
revoke all on function private.api_usage_bill_day(uuid, date) from public, anon, authenticated, service_role;

-- The fleet's periodic step: move recorded calls into the rollups, drop the rate-limit
-- buckets that have drained, then charge the days that closed (at least five minutes ago).
-- Returns {"calls": n, "days_billed": n}.
create or replace function public.api_usage_rollup() returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_calls bigint;
  v_billed integer := 0;
  r record;
begin
  if not private.is_service() then
    raise exception 'only the service rolls up API usage' using errcode = 'insufficient_privilege';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('api_usage_rollup', 0));
  with moved as (
    delete from private.api_calls c
     where exists (select 1 from public.api_keys k where k.id = c.key_id)
    returning c.*
  ), minutes as (
    insert into public.api_usage_minutes as m (key_id, user_id, minute, endpoint, status, calls, latency_ms_sum,
                                               latency_ms_max)
    select key_id, user_id, date_trunc('minute', called_at), endpoint, status, count(*), sum(latency_ms), max(latency_ms)
      from moved group by 1, 2, 3, 4, 5
    on conflict (key_id, minute, endpoint, status) do update
      set calls = m.calls + excluded.calls, latency_ms_sum = m.latency_ms_sum + excluded.latency_ms_sum,
          latency_ms_max = greatest(m.latency_ms_max, excluded.latency_ms_max)
    returning 1
  ), days as (
    insert into public.api_usage_days as d (key_id, user_id, day, calls, errors, latency_ms_sum)
    select key_id, user_id, (called_at at time zone 'UTC')::date, count(*), count(*) filter (where status >= 400),
           sum(latency_ms)
      from moved group by 1, 2, 3
    on conflict (key_id, day) do update
      set calls = d.calls + excluded.calls, errors = d.errors + excluded.errors,
          latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum
    returning 1
  )
  select count(*) into v_calls from moved;
  -- Calls of keys deleted meanwhile have nothing to count against.
  delete from private.api_calls c where not exists (select 1 from public.api_keys k where k.id = c.key_id);
  -- A bucket whose theoretical arrival time has passed holds nothing a new one would not.
  delete from private.rate_limit_buckets b where b.tat < clock_timestamp();
  for r in
    select d.key_id, d.day from public.api_usage_days d
     where d.billed_at is null and d.day < ((now() - interval '5 minutes') at time zone 'UTC')::date
     order by d.day, d.key_id
     limit 5000
  loop
    perform private.api_usage_bill_day(r.key_id, r.day);
    v_billed := v_billed + 1;
  end loop;
  return jsonb_build_object('calls', v_calls, 'days_billed', v_billed);
end;
$$;
revoke all on function public.api_usage_rollup() from public, anon, authenticated;
grant execute on function public.api_usage_rollup() to service_role;

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
     or not p_scopes <@ private.api_scopes() then
    raise exception 'scopes must be one or more of %', array_to_string(private.api_scopes(), ', ')
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

-- Give back one request taken from a GCRA bucket (the other bucket of the same request
-- refused it), so a refused request leaves the limiter as it found it.
create or replace function private.rate_limit_give_back(p_bucket text, p_limit integer, p_period interval) returns void
language sql
set search_path = ''
as $$
  update private.rate_limit_buckets b set tat = b.tat - p_period / greatest(p_limit, 1) where b.bucket = p_bucket
$$;
revoke all on function private.rate_limit_give_back(text, integer, interval) from public, anon, authenticated, service_role;

-- The api function's one call per request: key → user, scope, plan and rate limits (the
-- user's bucket, and the key's when the plan limits keys more tightly than users).
-- Returns a JSON object: status (200, 401, 403 or 429), error, for 200 the user id, the key
-- id and the JWT claims to act with (role authenticated; app_metadata.role 'provider' or
-- 'user': a key never carries admin powers), for 200 and 429 the rate-limit figures of the
-- tighter bucket (limit, remaining, reset, retry_after), and for 403 and 429 the key and
-- user ids the call is metered against.
create or replace function public.api_authorize(p_key text, p_scope text, p_ip inet default null) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_key public.api_keys;
  v_plan public.plans;
  v_role text;
  v_limit integer;
  v_key_limit integer;
  v_rate record;
  v_key_rate record;
  v_key_taken boolean := false;
  v_headers jsonb;
  v_ids jsonb;
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
  v_ids := jsonb_build_object('key_id', v_key.id, 'user_id', v_key.user_id);
  if p_scope is not null and not p_scope = any (v_key.scopes) then
    return v_ids || jsonb_build_object('status', 403, 'error', format('this API key lacks the scope %s', p_scope),
                                       'scope', p_scope);
  end if;
  v_plan := private.current_plan(v_key.user_id);
  if not v_plan.api_access then
    return v_ids || jsonb_build_object('status', 403, 'error',
      format('plan limit reached: the %s plan does not include API access (api_access)%s', v_plan.name,
             coalesce('; the ' || private.plan_lifting('api_access') || ' plan does', '')));
  end if;
  v_limit := coalesce((v_plan.features ->> 'api_requests_per_minute')::integer, 60);
  v_key_limit := (v_plan.features ->> 'api_key_requests_per_minute')::integer;
  if v_key_limit is not null and v_key_limit < v_limit then
    -- A key's bucket can only bind when it is smaller than the user's (every request of the
    -- key also takes from the user's), so it is kept only then.
    select * into v_key_rate from private.rate_limit_take('api:key:' || v_key.id, v_key_limit, interval '1 minute');
    if not v_key_rate.allowed then
      return v_ids || jsonb_build_object(
        'status', 429, 'limit', v_key_limit, 'remaining', v_key_rate.remaining, 'reset', v_key_rate.reset_seconds,
        'retry_after', v_key_rate.retry_after_seconds,
        'error', format('rate limit reached: the %s plan allows %s API requests a minute per key (api_key_requests_per_minute)',
                        v_plan.name, v_key_limit));
    end if;
    v_key_taken := true;
  end if;
  select * into v_rate from private.rate_limit_take('api:user:' || v_key.user_id, v_limit, interval '1 minute');
  if not v_rate.allowed then
    if v_key_taken then
      perform private.rate_limit_give_back('api:key:' || v_key.id, v_key_limit, interval '1 minute');
    end if;
    return v_ids || jsonb_build_object(
      'status', 429, 'limit', v_limit, 'remaining', v_rate.remaining, 'reset', v_rate.reset_seconds,
      'retry_after', v_rate.retry_after_seconds,
      'error', format('rate limit reached: the %s plan allows %s API requests a minute (api_requests_per_minute)',
                      v_plan.name, v_limit));
  end if;
  v_headers := jsonb_build_object('limit', v_limit, 'remaining', v_rate.remaining, 'reset', v_rate.reset_seconds);
  if v_key_taken then
    if v_key_rate.remaining < v_rate.remaining then
      v_headers := jsonb_build_object('limit', v_key_limit, 'remaining', v_key_rate.remaining,
                                      'reset', v_key_rate.reset_seconds);
    end if;
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

-- Realtime: owners watch their usage rows change as the rollup runs.
alter publication supabase_realtime add table public.api_usage_minutes, public.api_usage_days;
