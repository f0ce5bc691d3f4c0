-- A faster api_authorize (scripts/bench api), with the same answers and the same limiter.
-- Profiled with pg_stat_statements (track = all) on the benchmark's 100,000 keys, its cost
-- was, in order: the key's last-use update (never a HOT update: the table's pages were full,
-- so every update wrote a new tuple on another page and an entry in each of its four
-- indexes), the key lookup (with the key hash computed by a definer function), the rate
-- limit (the GCRA upsert inside a definer function) and the plan (a definer function). So:
-- * api_keys keeps room on its pages (fillfactor 70): the last-use update, which changes
--   no indexed column, is a HOT update in place, writing no index entries.
-- * The key hash is computed inline in the key's lookup (the same HMAC as
--   private.api_key_hash, under the same secret), not by a definer function of its own.
-- * The bucket of the user or organisation is taken by the GCRA upsert inline, the same
--   statement as private.rate_limit_take; the key's own bucket, rarer, still goes through
--   it. A limit below 1 refuses as before.
-- * The api function's usage records of earlier calls may ride along (p_calls, the argument
--   of public.api_record_calls): in steady traffic a request then costs one round trip for
--   its key, limits and the usage record, where it took two. They are recorded whatever
--   this call answers (they are other calls' records); a malformed list is refused as
--   api_record_calls refuses it. api_record_calls and api_authorize share one insert
--   (private.api_calls_record).
-- The 100-racers-limit-10 tests (pgTAP api_keys, Deno api) are unchanged and still admit
-- exactly 10.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

alter table public.api_keys set (fillfactor = 70);

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- The api function's usage records (a JSON array of {key_id, user_id, endpoint, status,
-- latency_ms, at}, at most 1000), inserted; the count. Its callers are service-only.
create or replace function private.api_calls_record(p_calls jsonb) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_n integer;
begin
  if p_calls is null or jsonb_typeof(p_calls) <> 'array' or jsonb_array_length(p_calls) > 1000 then
    raise exception 'calls must be a JSON array of at most 1000 calls' using errcode = 'invalid_parameter_value';
  end if;
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
revoke all on function private.api_calls_record(jsonb) from public, anon, authenticated, service_role;

create or replace function public.api_record_calls(p_calls jsonb) returns integer
language plpgsql security definer
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'only the service records API calls' using errcode = 'insufficient_privilege';
  end if;
  perform set_config('synchronous_commit', 'off', true);
  return private.api_calls_record(p_calls);
end;
$$;
revoke all on function public.api_record_calls(jsonb) from public, anon, authenticated;
grant execute on function public.api_record_calls(jsonb) to service_role;

drop function public.api_authorize(text, text, inet);
create function public.api_authorize(p_key text, p_scope text, p_ip inet default null, p_calls jsonb default null)
returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_key record;
  v_plan public.plans;
  v_limit integer;
  v_key_limit integer;
  v_bucket text;
  v_now timestamptz;
  v_t interval;
  v_tat timestamptz;
  v_remaining integer;
  v_reset integer;
  v_retry integer;
  v_refused boolean;
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
  if p_calls is not null then
    perform private.api_calls_record(p_calls);
  end if;
  if p_key is null or p_key !~ '^tf_(live|test)_[A-Za-z0-9]{32}$' then
    return jsonb_build_object('status', 401, 'error', 'invalid API key');
  end if;
  -- The key, the user it acts as (an organisation's key: the paying owner) and their role,
  -- in one statement. The hash is private.api_key_hash's, inline.
  select k.id, coalesce(k.user_id, o.owner_id) as user_id, k.organisation_id, k.scopes,
         k.revoked_at, k.expires_at, k.last_used_at, k.last_used_ip,
         coalesce(u.raw_app_meta_data ->> 'role', 'user') as role
    into v_key
    from public.api_keys k
    left join public.organisations o on o.id = k.organisation_id
    left join auth.users u on u.id = coalesce(k.user_id, o.owner_id)
   where k.key_hash = extensions.hmac(convert_to(p_key, 'UTF8'),
                                      (select s.secret from private.api_key_secret s), 'sha256');
  if not found or v_key.revoked_at is not null or (v_key.expires_at is not null and v_key.expires_at <= now()) then
    return jsonb_build_object('status', 401, 'error', 'invalid API key');
  end if;
  v_ids := jsonb_build_object('key_id', v_key.id, 'user_id', v_key.user_id)
    || case when v_key.organisation_id is null then '{}'::jsonb
            else jsonb_build_object('organisation_id', v_key.organisation_id) end;
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
  v_bucket := case when v_key.organisation_id is null then 'api:user:' || v_key.user_id
                   else 'api:org:' || v_key.organisation_id end;
  if v_limit >= 1 then
    -- private.rate_limit_take's GCRA step, inline.
    v_now := clock_timestamp();
    v_t := interval '1 minute' / v_limit;
    insert into private.rate_limit_buckets as b (bucket, tat) values (v_bucket, v_now + v_t)
    on conflict (bucket) do update set tat = greatest(b.tat, v_now) + v_t
     where greatest(b.tat, v_now) + v_t <= v_now + interval '1 minute'
    returning b.tat into v_tat;
    v_refused := v_tat is null;
    if v_refused then
      select b.tat into v_tat from private.rate_limit_buckets b where b.bucket = v_bucket;
      v_retry := greatest(ceil(extract(epoch from (v_tat + v_t - interval '1 minute' - v_now))), 1)::integer;
    end if;
    v_remaining := greatest(floor(extract(epoch from (v_now + interval '1 minute' - v_tat)) / extract(epoch from v_t)), 0)::integer;
    v_reset := greatest(ceil(extract(epoch from (v_tat - v_now))), 0)::integer;
  else
    -- No allowance at all: refused, as private.rate_limit_take refuses it (writing nothing).
    select * into v_rate from private.rate_limit_take(v_bucket, v_limit, interval '1 minute');
    v_refused := true;
    v_remaining := v_rate.remaining;
    v_reset := v_rate.reset_seconds;
    v_retry := v_rate.retry_after_seconds;
  end if;
  if v_refused then
    if v_key_taken then
      perform private.rate_limit_give_back('api:key:' || v_key.id, v_key_limit, interval '1 minute');
    end if;
    return v_ids || jsonb_build_object(
      'status', 429, 'limit', v_limit, 'remaining', v_remaining, 'reset', v_reset, 'retry_after', v_retry,
      'error', format('rate limit reached: the %s plan allows %s API requests a minute (api_requests_per_minute)',
                      v_plan.name, v_limit));
  end if;
  v_headers := jsonb_build_object('limit', v_limit, 'remaining', v_remaining, 'reset', v_reset);
  if v_key_taken then
    if v_key_rate.remaining < v_remaining then
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
  return v_headers || jsonb_build_object(
    'status', 200, 'user_id', v_key.user_id, 'organisation_id', v_key.organisation_id,
    'key_id', v_key.id, 'scopes', to_jsonb(v_key.scopes),
    'claims', jsonb_build_object(
      'sub', v_key.user_id, 'role', 'authenticated', 'aud', 'authenticated', 'aal', 'aal1',
      'app_metadata', jsonb_build_object('role', case when v_key.role = 'provider' then 'provider' else 'user' end),
      'api_key_id', v_key.id)
      || case when v_key.organisation_id is null then '{}'::jsonb
              else jsonb_build_object('organisation_id', v_key.organisation_id) end);
end;
$$;

revoke all on function public.api_authorize(text, text, inet, jsonb) from public, anon, authenticated;
grant execute on function public.api_authorize(text, text, inet, jsonb) to service_role;
