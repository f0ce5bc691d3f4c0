-- api_authorize with both of its extensions: organisation keys (they act as the
-- organisation's paying owner, carry an organisation_id claim and share one bucket per
-- organisation) and the per-key bucket with the cheaper single lookup of key and role.

create or replace function public.api_authorize(p_key text, p_scope text, p_ip inet default null) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_key record;
  v_plan public.plans;
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
  -- An organisation's key acts as the organisation's paying owner, kept to its bots by the
  -- policies that read the organisation_id claim.
  select k.id, coalesce(k.user_id, o.owner_id) as user_id, k.organisation_id, k.scopes,
         k.revoked_at, k.expires_at, k.last_used_at, k.last_used_ip,
         coalesce(u.raw_app_meta_data ->> 'role', 'user') as role
    into v_key
    from public.api_keys k
    left join public.organisations o on o.id = k.organisation_id
    left join auth.users u on u.id = coalesce(k.user_id, o.owner_id)
   where k.key_hash = private.api_key_hash(p_key);
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
  select * into v_rate from private.rate_limit_take(
    case when v_key.organisation_id is null then 'api:user:' || v_key.user_id
         else 'api:org:' || v_key.organisation_id end,
    v_limit, interval '1 minute');
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

revoke all on function public.api_authorize(text, text, inet) from public, anon, authenticated;
grant execute on function public.api_authorize(text, text, inet) to service_role;
