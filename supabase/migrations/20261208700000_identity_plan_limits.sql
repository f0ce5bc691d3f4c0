-- Plan limits, enforced where they apply, with errors that name the limit and the plan
-- that lifts it:
-- * custom_strategies: apps create (or turn a strategy into) a 'custom' strategy only on a
--   plan that includes custom strategies;
-- * ai_requests_per_month: at most that many AI analyses per user and calendar month (UTC);
--   null means unlimited;
-- * max_bots, max_strategies, max_concurrent_backtests (plans.features) and
--   backtest_minutes_per_month keep their rules; their errors now also say which plan
--   lifts them;
-- * api_access is enforced by the api area (creating and using API keys).
-- The error text has the form
--   plan limit reached: the Free plan allows 2 bots (max_bots); the Pro plan allows 10
--   plan limit reached: the Free plan does not include custom strategies (custom_strategies); the Pro plan does
-- and ends with "no active plan allows more" when none does.

-- Functions -----------------------------------------------------------------------------

-- A plan's value of a limit: a column of plans, else a key of plans.features.
create or replace function private.plan_limit_value(p_plan public.plans, p_limit text) returns jsonb
language sql stable
set search_path = ''
as $$
  select coalesce(to_jsonb(p_plan) -> p_limit, p_plan.features -> p_limit)
$$;
revoke all on function private.plan_limit_value(public.plans, text) from public, anon, authenticated;

-- The cheapest active plan (sort order, then price) whose limit allows p_needed (a number
-- limit; null counts as unlimited) or includes the feature (a boolean limit); null if none.
create or replace function private.plan_lifting(p_limit text, p_needed numeric default null) returns text
language sql stable security definer
set search_path = ''
as $$
  select p.name
    from public.plans p
   where p.is_active
     and case jsonb_typeof(private.plan_limit_value(p, p_limit))
           when 'boolean' then (private.plan_limit_value(p, p_limit))::boolean
           when 'number' then (private.plan_limit_value(p, p_limit))::numeric >= coalesce(p_needed, 0)
           when 'null' then p_needed is not null
           else false
         end
   order by p.sort_order, p.price_monthly, p.name
   limit 1
$$;
revoke all on function private.plan_lifting(text, numeric) from public, anon, authenticated;
grant execute on function private.plan_lifting(text, numeric) to service_role;

-- Raise the plan-limit error: p_allows is what the current plan allows ("allows 2 bots",
-- "does not include custom strategies"); p_needed the amount that would be needed (null
-- for a feature).
create or replace function private.raise_plan_limit(p_plan public.plans, p_limit text, p_allows text,
                                                    p_needed numeric, p_constraint text,
                                                    p_errcode text default 'check_violation') returns void
language plpgsql stable
set search_path = ''
as $$
declare
  v_lift text := private.plan_lifting(p_limit, p_needed);
  v_value jsonb;
  v_tail text;
begin
  if v_lift is null or v_lift = p_plan.name then
    v_tail := 'no active plan allows more';
  else
    select private.plan_limit_value(p, p_limit) into v_value from public.plans p where p.name = v_lift;
    v_tail := format('the %s plan %s', v_lift,
                     case jsonb_typeof(v_value) when 'boolean' then 'does'
                                                when 'null' then 'has no limit'
                                                else 'allows ' || (v_value #>> '{}') end);
  end if;
  raise exception 'plan limit reached: the % plan % (%); %', p_plan.name, p_allows, p_limit, v_tail
    using errcode = p_errcode, constraint = p_constraint,
          hint = case when v_lift is not null and v_lift <> p_plan.name then format('Upgrade to the %s plan.', v_lift)
                      else 'No active plan allows more.' end;
end;
$$;
revoke all on function private.raise_plan_limit(public.plans, text, text, numeric, text, text) from public, anon, authenticated;

-- max_bots and max_strategies, as before, naming the plan that lifts them.
create or replace function private.validate_bot_limits() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_plan public.plans;
  v_limit integer;
  v_count integer;
begin
  perform pg_advisory_xact_lock(hashtextextended(tg_table_name || ':' || new.user_id::text, 0));
  v_plan := private.current_plan(new.user_id);
  if tg_table_name = 'bots' then
    v_limit := v_plan.max_bots;
    select count(*) into v_count from public.bots where user_id = new.user_id;
  else
    v_limit := v_plan.max_strategies;
    select count(*) into v_count from public.strategies where user_id = new.user_id;
  end if;
  if v_count >= v_limit then
    perform private.raise_plan_limit(v_plan, 'max_' || tg_table_name, format('allows %s %s', v_limit, tg_table_name),
                                     v_count + 1, tg_table_name || '_plan_max_' || tg_table_name);
  end if;
  return new;
end;
$$;
revoke all on function private.validate_bot_limits() from public, anon, authenticated;

-- custom_strategies: what apps may write; the platform (service) is not held to it.
create or replace function private.validate_custom_strategy() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_plan public.plans;
begin
  if private.is_service() or new.strategy_type <> 'custom'
     or (tg_op = 'UPDATE' and old.strategy_type = 'custom') then
    return new;
  end if;
  v_plan := private.current_plan(new.user_id);
  if not v_plan.custom_strategies then
    perform private.raise_plan_limit(v_plan, 'custom_strategies', 'does not include custom strategies', null,
                                     'strategies_plan_custom_strategies');
  end if;
  return new;
end;
$$;
revoke all on function private.validate_custom_strategy() from public, anon, authenticated;

-- ai_requests_per_month: AI analyses per user and calendar month (UTC), whoever writes them.
create or replace function private.validate_ai_requests() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_plan public.plans;
  v_count integer;
begin
  perform pg_advisory_xact_lock(hashtextextended('ai_analyses:' || new.user_id::text, 0));
  v_plan := private.current_plan(new.user_id);
  if v_plan.ai_requests_per_month is null then
    return new;
  end if;
  select count(*) into v_count from public.ai_analyses a
   where a.user_id = new.user_id
     and a.created_at >= date_trunc('month', now() at time zone 'UTC') at time zone 'UTC';
  if v_count >= v_plan.ai_requests_per_month then
    perform private.raise_plan_limit(v_plan, 'ai_requests_per_month',
                                     format('allows %s AI requests a month', v_plan.ai_requests_per_month),
                                     v_count + 1, 'ai_analyses_plan_ai_requests_per_month');
  end if;
  return new;
end;
$$;
revoke all on function private.validate_ai_requests() from public, anon, authenticated;

-- Backtest quotas, as before, naming the plan that lifts them.
create or replace function private.validate_backtest_queue() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_plan public.plans;
  v_limit integer;
  v_pending integer;
  v_used numeric;
begin
  if private.is_service() then
    return new;
  end if;
  perform pg_advisory_xact_lock(hashtextextended('backtest_runs:' || new.user_id::text, 0));
  v_plan := private.current_plan(new.user_id);
  v_limit := coalesce((v_plan.features ->> 'max_concurrent_backtests')::integer, 3);
  select count(*) filter (where r.status in ('queued', 'running')),
         coalesce(sum(case when r.status in ('queued', 'running') then greatest(coalesce(r.compute_seconds, 0), 60)
                           else coalesce(r.compute_seconds, 0) end)
                  filter (where r.created_at >= date_trunc('month', now())), 0)
    into v_pending, v_used
    from public.backtest_runs r
   where r.user_id = new.user_id;
  if v_pending >= v_limit then
    perform private.raise_plan_limit(v_plan, 'max_concurrent_backtests',
                                     format('runs %s backtests at a time', v_limit), v_pending + 1,
                                     'backtest_runs_plan_concurrency');
  end if;
  if v_used + 60 > v_plan.backtest_minutes_per_month * 60 then
    perform private.raise_plan_limit(v_plan, 'backtest_minutes_per_month',
                                     format('allows %s backtest minutes a month, counting queued and running runs',
                                            v_plan.backtest_minutes_per_month),
                                     ceil((v_used + 60) / 60), 'backtest_runs_plan_backtest_minutes');
  end if;
  return new;
end;
$$;
revoke all on function private.validate_backtest_queue() from public, anon, authenticated;

-- Triggers ------------------------------------------------------------------------------

create trigger strategies_plan_custom_strategies before insert or update of strategy_type on public.strategies
  for each row execute function private.validate_custom_strategy();
create trigger ai_analyses_plan_ai_requests before insert on public.ai_analyses
  for each row execute function private.validate_ai_requests();
