-- Backtests: quotas that count the work already queued, public figures that only the
-- author and the platform can move, and a finished run that stays finished.
-- * An app may have at most plans.features.max_concurrent_backtests (default 3) runs
--   queued or running at once, and each queued or running run counts one minute toward
--   the monthly minutes until it reports its real compute time.
-- * A marketplace strategy's backtest_count and avg_backtest_return count only results of
--   runs by its author or an admin, with the strategy's published parameters.
-- * Apps cancel only queued or running runs.

-- Tables --------------------------------------------------------------------------------

alter table public.backtest_runs
  add constraint backtest_runs_settings_object
    check (jsonb_typeof(settings) = 'object' and pg_column_size(settings) <= 16384) not valid,
  add constraint backtest_runs_parameters_object
    check (jsonb_typeof(parameters) = 'object' and pg_column_size(parameters) <= 16384) not valid;

-- Functions -----------------------------------------------------------------------------

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
    raise exception 'plan limit reached: the % plan runs % backtests at a time (max_concurrent_backtests)', v_plan.name, v_limit
      using errcode = 'check_violation', constraint = 'backtest_runs_plan_concurrency';
  end if;
  if v_used + 60 > v_plan.backtest_minutes_per_month * 60 then
    raise exception 'plan limit reached: the % plan allows % backtest minutes a month, counting queued and running runs (backtest_minutes_per_month)',
      v_plan.name, v_plan.backtest_minutes_per_month
      using errcode = 'check_violation', constraint = 'backtest_runs_plan_backtest_minutes';
  end if;
  return new;
end;
$$;
revoke all on function private.validate_backtest_queue() from public, anon, authenticated;

create or replace function private.guard_backtest_run_changes() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not private.is_service() and new.status <> old.status then
    if new.status <> 'cancelled' then
      raise exception 'apps may only cancel a backtest run'
        using errcode = 'check_violation', constraint = 'backtest_runs_status_is_fleet_owned';
    end if;
    if old.status not in ('queued', 'running') then
      raise exception 'a % backtest run can no longer be cancelled', old.status
        using errcode = 'check_violation', constraint = 'backtest_runs_cancel_unfinished';
    end if;
  end if;
  return new;
end;
$$;
revoke all on function private.guard_backtest_run_changes() from public, anon, authenticated;

create or replace function private.refresh_strategy_backtest_figures() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.strategies s
     set backtest_count = f.n, avg_backtest_return = f.avg_return
    from (select st.id, count(br.id) n, coalesce(round(avg(br.total_return_percentage), 4), 0) avg_return
            from public.strategies st
            left join public.backtest_results br
              on br.strategy_id = st.id
             and (br.user_id = st.user_id
                  or exists (select 1 from public.profiles p where p.id = br.user_id and p.role = 'admin'))
             and exists (select 1 from public.backtest_runs r where r.id = br.run_id and r.parameters = st.parameters)
           where st.id in (coalesce(new.strategy_id, old.strategy_id), coalesce(old.strategy_id, new.strategy_id))
           group by st.id) f
   where s.id = f.id;
  return null;
end;
$$;
revoke all on function private.refresh_strategy_backtest_figures() from public, anon, authenticated;

-- Triggers ------------------------------------------------------------------------------

create trigger backtest_runs_validate_queue before insert on public.backtest_runs
  for each row execute function private.validate_backtest_queue();
