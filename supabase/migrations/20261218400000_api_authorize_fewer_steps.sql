-- api_authorize with less work per call (scripts/bench api), the same answers and the same
-- limiter. Counted with callgrind (instructions of the backend per call, over the
-- benchmark's 100,000 keys, each call in a transaction of its own with a usage record
-- carried), the call went from 1.12 to 0.99 million instructions:
-- * The carried usage records are inserted by the function itself, not through
--   private.api_calls_record: a nested function with settings cost a function call, a
--   search_path change and back, and its own plpgsql frame.
-- * The key's shape is checked by its length and prefix: the regular expression was 5 % of
--   a call's instructions. A key of the right length with other characters finds
--   no stored hash and is refused the same way, 401 'invalid API key'.
-- * The key's lookup also computes whether it is valid, whether its last use is due, its
--   role, its limits and its bucket: columns of a statement that runs anyway rather than
--   plpgsql expressions, each of which is prepared again in every transaction.
-- * The admitted answer is written as text and parsed once, rather than built from nested
--   jsonb_build_object calls and concatenations; the refusals keep their builders, which
--   plpgsql prepares only when one is returned.

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

create or replace function public.api_authorize(p_key text, p_scope text, p_ip inet default null, p_calls jsonb default null)
returns jsonb
language plpgsql security definer
set search_path = ''
set plan_cache_mode = 'force_generic_plan'
as $$
declare
  v_key record;
  v_now timestamptz;
  v_tat timestamptz;
  v_remaining integer;
  v_reset integer;
  v_retry integer;
  v_rate record;
  v_key_rate record;
  v_key_taken boolean := false;
  v_refused boolean := false;
  v_limit integer;
  v_t interval;
  v_ids jsonb;
begin
  -- private.is_service(), inline (a SQL function with settings is planned again at every call).
  if current_user in ('anon', 'authenticated', 'tradefleet_admin')
     or coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', 'service_role')
        <> 'service_role' then
    raise exception 'only the service resolves API keys' using errcode = 'insufficient_privilege';
  end if;
  -- What this call writes (the limiter, the key's last use, the carried usage records) may
  -- be lost in a crash without harm, so its transaction commits without waiting for the WAL
  -- flush: that wait is most of a request's cost. Call it as a statement of its own, as the
  -- api function does.
  perform set_config('synchronous_commit', 'off', true);
  if p_calls is not null then
    -- private.api_calls_record, inline (a nested function with settings costs a call).
    if jsonb_typeof(p_calls) <> 'array' or jsonb_array_length(p_calls) > 1000 then
      raise exception 'calls must be a JSON array of at most 1000 calls' using errcode = 'invalid_parameter_value';
    end if;
    insert into private.api_calls (key_id, user_id, endpoint, status, latency_ms, called_at)
    select c.key_id, c.user_id, c.endpoint, c.status, greatest(c.latency_ms, 0), coalesce(c.at, now())
      from jsonb_to_recordset(p_calls) as c(key_id uuid, user_id uuid, endpoint text, status smallint,
                                           latency_ms integer, at timestamptz)
     where c.key_id is not null and c.user_id is not null and char_length(c.endpoint) between 1 and 100
       and c.status between 100 and 599 and c.latency_ms is not null;
  end if;
  -- A key is tf_live_ or tf_test_ and 32 characters; anything else cannot match a stored
  -- hash, so only the length and the prefix are checked before hashing (a regular
  -- expression was 5 % of a call's instructions).
  if p_key is null or length(p_key) <> 40 or left(p_key, 8) not in ('tf_live_', 'tf_test_') then
    return '{"status": 401, "error": "invalid API key"}'::jsonb;
  end if;
  -- The key, the user it acts as (an organisation's key: the paying owner), their role,
  -- their plan (private.current_plan's rule) and what the limiter needs, in one statement.
  -- The hash is private.api_key_hash's, inline.
  select k.id, coalesce(k.user_id, o.owner_id) as user_id, k.organisation_id, k.scopes,
         k.revoked_at is null and (k.expires_at is null or k.expires_at > now()) as valid,
         k.last_used_at is null or k.last_used_at < now() - interval '1 minute'
           or k.last_used_ip is distinct from p_ip as use_due,
         case when u.raw_app_meta_data ->> 'role' = 'provider' then 'provider' else 'user' end as role,
         p.name as plan_name, coalesce(p.api_access, false) as api_access,
         coalesce((p.features ->> 'api_requests_per_minute')::integer, 60) as lim,
         (p.features ->> 'api_key_requests_per_minute')::integer as key_lim,
         case when k.organisation_id is null then 'api:user:' || coalesce(k.user_id, o.owner_id)
              else 'api:org:' || k.organisation_id end as bucket
    into v_key
    from public.api_keys k
    left join public.organisations o on o.id = k.organisation_id
    left join auth.users u on u.id = coalesce(k.user_id, o.owner_id)
    left join lateral (
      select p.name, p.api_access, p.features from public.plans p
       where p.id = coalesce((select s.plan_id from public.subscriptions s
                               where s.user_id = coalesce(k.user_id, o.owner_id) and s.status in ('active', 'trial')
                                 and s.expires_at > now()
                               limit 1),
                             (select f.id from public.plans f where f.name = 'Free'))
       limit 1) p on true
   where k.key_hash = extensions.hmac(convert_to(p_key, 'UTF8'),
                                      (select s.secret from private.api_key_secret s), 'sha256');
  if not found or not v_key.valid then
    return '{"status": 401, "error": "invalid API key"}'::jsonb;
  end if;
  if p_scope is not null and not p_scope = any (v_key.scopes) then
    v_ids := jsonb_build_object('key_id', v_key.id, 'user_id', v_key.user_id)
      || case when v_key.organisation_id is null then '{}'::jsonb
              else jsonb_build_object('organisation_id', v_key.organisation_id) end;
    return v_ids || jsonb_build_object('status', 403, 'error', format('this API key lacks the scope %s', p_scope),
                                       'scope', p_scope);
  end if;
  if not v_key.api_access then
    v_ids := jsonb_build_object('key_id', v_key.id, 'user_id', v_key.user_id)
      || case when v_key.organisation_id is null then '{}'::jsonb
              else jsonb_build_object('organisation_id', v_key.organisation_id) end;
    return v_ids || jsonb_build_object('status', 403, 'error',
           format('plan limit reached: the %s plan does not include API access (api_access)%s', v_key.plan_name,
                  coalesce('; the ' || private.plan_lifting('api_access') || ' plan does', '')));
  end if;
  if v_key.key_lim is not null and v_key.key_lim < v_key.lim then
    -- A key's bucket can only bind when it is smaller than the user's (every request of the
    -- key also takes from the user's), so it is kept only then.
    select * into v_key_rate from private.rate_limit_take('api:key:' || v_key.id, v_key.key_lim, interval '1 minute');
    if not v_key_rate.allowed then
      v_ids := jsonb_build_object('key_id', v_key.id, 'user_id', v_key.user_id)
        || case when v_key.organisation_id is null then '{}'::jsonb
                else jsonb_build_object('organisation_id', v_key.organisation_id) end;
      return v_ids || jsonb_build_object(
        'status', 429, 'limit', v_key.key_lim, 'remaining', v_key_rate.remaining, 'reset', v_key_rate.reset_seconds,
        'retry_after', v_key_rate.retry_after_seconds,
        'error', format('rate limit reached: the %s plan allows %s API requests a minute per key (api_key_requests_per_minute)',
                        v_key.plan_name, v_key.key_lim));
    end if;
    v_key_taken := true;
  end if;
  v_limit := v_key.lim;
  if v_limit >= 1 then
    -- private.rate_limit_take's GCRA step, inline: the bucket's row updated in place when the
    -- request fits, the insert … on conflict only for a new bucket or a refusal.
    v_now := clock_timestamp();
    v_t := interval '1 minute' / v_limit;
    update private.rate_limit_buckets b set tat = greatest(b.tat, v_now) + v_t
     where b.bucket = v_key.bucket and greatest(b.tat, v_now) + v_t <= v_now + interval '1 minute'
    returning b.tat into v_tat;
    if not found then
      insert into private.rate_limit_buckets as b (bucket, tat) values (v_key.bucket, v_now + v_t)
      on conflict (bucket) do update set tat = greatest(b.tat, v_now) + v_t
       where greatest(b.tat, v_now) + v_t <= v_now + interval '1 minute'
      returning b.tat into v_tat;
      if v_tat is null then
        v_refused := true;
        select b.tat into v_tat from private.rate_limit_buckets b where b.bucket = v_key.bucket;
        v_retry := greatest(ceil(extract(epoch from (v_tat + v_t - interval '1 minute' - v_now))), 1)::integer;
      end if;
    end if;
    v_remaining := greatest(floor(extract(epoch from (v_now + interval '1 minute' - v_tat)) / extract(epoch from v_t)), 0)::integer;
    v_reset := greatest(ceil(extract(epoch from (v_tat - v_now))), 0)::integer;
  else
    -- No allowance at all: refused, as private.rate_limit_take refuses it (writing nothing).
    select * into v_rate from private.rate_limit_take(v_key.bucket, v_limit, interval '1 minute');
    v_refused := true;
    v_retry := v_rate.retry_after_seconds;
    v_remaining := v_rate.remaining;
    v_reset := v_rate.reset_seconds;
  end if;
  if v_refused then
    if v_key_taken then
      perform private.rate_limit_give_back('api:key:' || v_key.id, v_key.key_lim, interval '1 minute');
    end if;
    v_ids := jsonb_build_object('key_id', v_key.id, 'user_id', v_key.user_id)
      || case when v_key.organisation_id is null then '{}'::jsonb
              else jsonb_build_object('organisation_id', v_key.organisation_id) end;
    return v_ids || jsonb_build_object(
      'status', 429, 'limit', v_limit, 'remaining', v_remaining, 'reset', v_reset, 'retry_after', v_retry,
      'error', format('rate limit reached: the %s plan allows %s API requests a minute (api_requests_per_minute)',
                      v_key.plan_name, v_limit));
  end if;
  if v_key_taken then
    if v_key_rate.remaining < v_remaining then
      v_limit := v_key.key_lim;
      v_remaining := v_key_rate.remaining;
      v_reset := v_key_rate.reset_seconds;
    end if;
  end if;
  -- The last use to the minute (and any change of address): a busy key is not rewritten on
  -- every request.
  if v_key.use_due then
    update public.api_keys k set last_used_at = now(), last_used_ip = p_ip where k.id = v_key.id;
  end if;
  -- The answer as text, parsed once: cheaper than building it with jsonb_build_object.
  return format('{"status": 200, "limit": %s, "remaining": %s, "reset": %s, "user_id": "%s", "organisation_id": %s,'
                ' "key_id": "%s", "scopes": %s, "claims": {"sub": "%s", "role": "authenticated", "aud": "authenticated",'
                ' "aal": "aal1", "app_metadata": {"role": "%s"}, "api_key_id": "%s"%s}}',
                v_limit, v_remaining, v_reset, v_key.user_id, coalesce('"' || v_key.organisation_id || '"', 'null'),
                v_key.id, to_json(v_key.scopes), v_key.user_id, v_key.role, v_key.id,
                coalesce(', "organisation_id": "' || v_key.organisation_id || '"', ''))::jsonb;
end;
$$;

revoke all on function public.api_authorize(text, text, inet, jsonb) from public, anon, authenticated;
grant execute on function public.api_authorize(text, text, inet, jsonb) to service_role;
