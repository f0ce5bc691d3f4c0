-- Rate limits outside the public API: apps' expensive writes through PostgREST, per user,
-- and webhook deliveries, per source. Both use the GCRA buckets of private.rate_limit_take.
-- * public.db_pre_request is PostgREST's pre-request hook (pgrst.db_pre_request, set on the
--   authenticator role below). It costs two GUC reads unless the request is a POST of one
--   of the expensive writes: backtest runs, holdings refreshes (sync_runs), signals and
--   reviews. Those are limited per user and minute by the plan
--   (features.write_requests_per_minute.<table>, else the defaults below). Over the limit
--   it raises PostgREST's custom error (SQLSTATE PGRST): 429 with Retry-After and the
--   RateLimit-* headers, before the write runs. The hook runs with the request's role; the
--   limiter behind it (private.write_limit_take) is a definer function that can only
--   spend the caller's own allowance.
-- * public.webhook_rate_take (service only) admits one delivery from a source (provider and
--   address, or a TradingView token): the webhook functions answer 429 when refused.

-- Functions -----------------------------------------------------------------------------

create or replace function private.write_limit_default(p_table text) returns integer
language sql immutable
set search_path = ''
as $$
  select case p_table when 'backtest_runs' then 10 when 'sync_runs' then 2 when 'signals' then 60
                      when 'reviews' then 5 end
$$;
revoke all on function private.write_limit_default(text) from public, anon, authenticated, service_role;

-- One expensive write by the calling user to p_table: nothing when admitted; past the
-- limit, PostgREST's custom error for a 429. Definer (the buckets are private); a caller
-- can only spend their own allowance.
create or replace function private.write_limit_take(p_table text) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_user uuid := (select auth.uid());
  v_limit integer;
  v_rate record;
begin
  if p_table is null or p_table not in ('backtest_runs', 'sync_runs', 'signals', 'reviews') then
    return;
  end if;
  if v_user is null or private.is_service() then
    return;  -- anon cannot write these (RLS); the service is not limited
  end if;
  v_limit := coalesce((select ((p.features -> 'write_requests_per_minute') ->> p_table)::integer
                         from private.current_plan(v_user) p),
                      private.write_limit_default(p_table));
  select * into v_rate from private.rate_limit_take('write:' || p_table || ':' || v_user, v_limit, interval '1 minute');
  if not v_rate.allowed then
    raise sqlstate 'PGRST' using
      message = json_build_object(
        'code', 'TF429',
        'message', format('rate limit reached: at most %s requests a minute to %s (write_requests_per_minute.%s)',
                          v_limit, p_table, p_table),
        'details', null, 'hint', format('retry in %s s', v_rate.retry_after_seconds))::text,
      detail = json_build_object(
        'status', 429,
        'headers', json_build_object('Retry-After', v_rate.retry_after_seconds::text,
                                     'RateLimit-Limit', v_limit::text,
                                     'RateLimit-Remaining', v_rate.remaining::text,
                                     'RateLimit-Reset', v_rate.reset_seconds::text))::text;
  end if;
end;
$$;
revoke all on function private.write_limit_take(text) from public;
grant execute on function private.write_limit_take(text) to anon, authenticated, service_role;

-- PostgREST's pre-request hook, run with the request's role: two GUC reads, and the
-- limiter only for a POST to one of the expensive writes.
create or replace function public.db_pre_request() returns void
language plpgsql
set search_path = ''
as $$
declare
  v_table text;
begin
  if current_setting('request.method', true) is distinct from 'POST' then
    return;
  end if;
  v_table := substring(current_setting('request.path', true) from '^/(?:rest/v1/)?(backtest_runs|sync_runs|signals|reviews)/?$');
  if v_table is not null then
    perform private.write_limit_take(v_table);
  end if;
end;
$$;
revoke all on function public.db_pre_request() from public;
grant execute on function public.db_pre_request() to anon, authenticated, service_role;

-- One webhook delivery from p_source (at most 200 characters), p_per_minute a minute.
-- Returns {allowed, limit, remaining, reset, retry_after}.
create or replace function public.webhook_rate_take(p_source text, p_per_minute integer) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_rate record;
begin
  if not private.is_service() then
    raise exception 'only the service limits webhooks' using errcode = 'insufficient_privilege';
  end if;
  if p_source is null or char_length(p_source) not between 1 and 200 or p_per_minute is null
     or p_per_minute not between 1 and 1000000 then
    raise exception 'source must be 1 to 200 characters and the limit 1 to 1000000 a minute'
      using errcode = 'invalid_parameter_value';
  end if;
  perform set_config('synchronous_commit', 'off', true);
  select * into v_rate from private.rate_limit_take('webhook:' || p_source, p_per_minute, interval '1 minute');
  return jsonb_build_object('allowed', v_rate.allowed, 'limit', p_per_minute, 'remaining', v_rate.remaining,
                            'reset', v_rate.reset_seconds, 'retry_after', v_rate.retry_after_seconds);
end;
$$;
revoke all on function public.webhook_rate_take(text, integer) from public, anon, authenticated;
grant execute on function public.webhook_rate_take(text, integer) to service_role;

-- PostgREST runs the hook before every request (Supabase: the authenticator role's setting).
alter role authenticator set pgrst.db_pre_request = 'public.db_pre_request';
notify pgrst, 'reload config';
