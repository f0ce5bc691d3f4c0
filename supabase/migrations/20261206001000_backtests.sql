-- Backtests: runs requested from the app and their results, the monthly compute quota,
-- the marketplace figures kept on strategies, and the functions the fleet reports back
-- through. Owned by worker.backtest.
--
-- A backtest_runs row inserted through PostgREST becomes a 'backtest.run' job (one per
-- run), and the fleet reports back through three functions: start (queued -> running),
-- progress (and whether the run was cancelled meanwhile), and finish (the result row and
-- the run's final status in one statement).

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.backtest_runs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  strategy_id uuid references public.strategies (id) on delete set null,
  strategy text not null constraint backtest_runs_strategy_known
    check (strategy in ('sma_cross', 'ema_cross', 'rsi', 'macd', 'rsi_macd', 'bollinger', 'rules')),
  parameters jsonb not null default '{}',
  exchange text not null default 'binance',
  trading_pair text not null constraint backtest_runs_trading_pair_format check (trading_pair ~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$'),
  timeframe text not null constraint backtest_runs_timeframe_supported check (timeframe in ('1m', '5m', '15m', '30m', '1h', '4h', '1d')),
  start_date timestamptz,
  end_date timestamptz,
  settings jsonb not null default '{}',
  status text not null default 'queued' constraint backtest_runs_status_known
    check (status in ('queued', 'running', 'completed', 'failed', 'cancelled')),
  progress numeric(5, 4) not null default 0 check (progress between 0 and 1),
  error text,
  compute_seconds numeric(12, 3),
  credits_charged numeric(24, 8),
  started_at timestamptz,
  finished_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint backtest_runs_period_ordered check (end_date is null or start_date is null or end_date > start_date)
);

create index backtest_runs_user_id_idx on public.backtest_runs (user_id, created_at desc);
create index backtest_runs_strategy_id_idx on public.backtest_runs (strategy_id);

create table public.backtest_results (
  id uuid primary key default gen_random_uuid(),
  run_id uuid references public.backtest_runs (id) on delete cascade,
  strategy_id uuid references public.strategies (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  trading_pair text not null,
  timeframe text not null,
  start_date timestamptz not null,
  end_date timestamptz not null,
  initial_balance numeric(20, 8) not null,
  final_balance numeric(20, 8) not null,
  total_return numeric(20, 8) not null,
  total_return_percentage numeric(12, 4) not null,
  max_drawdown numeric(12, 4) not null,
  sharpe_ratio numeric(12, 4),
  sortino_ratio numeric(12, 4),
  win_rate numeric(5, 2) not null,
  profit_factor numeric(12, 4),
  total_trades integer not null,
  winning_trades integer not null,
  losing_trades integer not null,
  best_trade numeric(20, 8) not null,
  worst_trade numeric(20, 8) not null,
  avg_trade numeric(20, 8),
  max_consecutive_wins integer not null default 0,
  max_consecutive_losses integer not null default 0,
  calmar_ratio numeric(12, 4),
  stats jsonb not null default '{}',
  trades jsonb not null default '[]',
  equity_curve jsonb not null default '[]',
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now()
);

create index backtest_results_run_id_idx on public.backtest_results (run_id);
create index backtest_results_strategy_id_idx on public.backtest_results (strategy_id);
create index backtest_results_user_id_idx on public.backtest_results (user_id, created_at desc);

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

revoke all on public.backtest_runs, public.backtest_results from anon, authenticated;
grant all on public.backtest_runs, public.backtest_results to service_role;
grant select on public.backtest_results, public.backtest_runs to authenticated;
grant insert (id, user_id, strategy_id, strategy, parameters, exchange, trading_pair, timeframe, start_date, end_date, settings)
  on public.backtest_runs to authenticated;
grant update (status) on public.backtest_runs to authenticated;
grant delete on public.backtest_runs to authenticated;
alter table public.backtest_runs enable row level security;
alter table public.backtest_results enable row level security;
create policy "Users can read their own backtest runs" on public.backtest_runs
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every backtest run" on public.backtest_runs
  for select to tradefleet_admin using (true);
create policy "Users can request their own backtest runs" on public.backtest_runs
  for insert to authenticated with check (
    user_id = (select auth.uid())
    and (strategy_id is null or exists (select 1 from public.strategies s where s.id = strategy_id))
  );

create policy "Users can cancel their own backtest runs" on public.backtest_runs
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy "Users can delete their own backtest runs" on public.backtest_runs
  for delete to authenticated using (user_id = (select auth.uid()));
create policy "Users can read their own backtest results" on public.backtest_results
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every backtest result" on public.backtest_results
  for select to tradefleet_admin using (true);

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

-- Marketplace figures kept on the strategy, so public readers never touch private results.
create or replace function private.refresh_strategy_backtest_figures() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.strategies s
     set backtest_count = f.n, avg_backtest_return = f.avg_return
    from (select st.id, count(br.id) n, coalesce(round(avg(br.total_return_percentage), 4), 0) avg_return
            from public.strategies st
            left join public.backtest_results br on br.strategy_id = st.id
           where st.id in (coalesce(new.strategy_id, old.strategy_id), coalesce(old.strategy_id, new.strategy_id))
           group by st.id) f
   where s.id = f.id;
  return null;
end;
$$;

revoke all on function private.refresh_strategy_backtest_figures() from public, anon, authenticated;

-- Backtest compute is limited by the plan's monthly minutes.
create or replace function private.validate_backtest_minutes() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_plan public.plans;
  v_used numeric;
begin
  v_plan := private.current_plan(new.user_id);
  select coalesce(sum(compute_seconds), 0) into v_used
    from public.backtest_runs
   where user_id = new.user_id and created_at >= date_trunc('month', now());
  if v_used >= v_plan.backtest_minutes_per_month * 60 then
    raise exception 'plan limit reached: the % plan allows % backtest minutes a month (backtest_minutes_per_month)',
      v_plan.name, v_plan.backtest_minutes_per_month
      using errcode = 'check_violation', constraint = 'backtest_runs_plan_backtest_minutes';
  end if;
  return new;
end;
$$;

revoke all on function private.validate_backtest_minutes() from public, anon, authenticated;

create or replace function private.guard_backtest_run_changes() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not private.is_service() and new.status <> old.status and new.status <> 'cancelled' then
    raise exception 'apps may only cancel a backtest run'
      using errcode = 'check_violation', constraint = 'backtest_runs_status_is_fleet_owned';
  end if;
  return new;
end;
$$;

revoke all on function private.guard_backtest_run_changes() from public, anon, authenticated;

-- One job per run: the idempotency key is the run id, so a replayed insert trigger (or a
-- manual re-enqueue) never runs the same backtest twice.
create or replace function private.enqueue_backtest_run() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform public.enqueue_job('backtest.run', jsonb_build_object('run_id', new.id), 'default', null, 0, 3,
                             'backtest.run:' || new.id::text);
  return null;
end;
$$;

revoke all on function private.enqueue_backtest_run() from public, anon, authenticated;

-- queued (or running, on a retried attempt) -> running. Returns the run, or no row when it
-- is not runnable any more (cancelled, finished, deleted).
create or replace function public.backtest_run_start(p_run_id uuid) returns setof public.backtest_runs
language sql
set search_path = ''
as $$
  update public.backtest_runs r
     set status = 'running', progress = 0, error = null, started_at = coalesce(r.started_at, now())
   where r.id = p_run_id and r.status in ('queued', 'running')
  returning r.*;
$$;

revoke execute on function public.backtest_run_start(uuid) from public, anon, authenticated;
grant execute on function public.backtest_run_start(uuid) to service_role;

-- Live progress (0..1, never backwards) through the row, which Realtime publishes. Returns
-- the run's status so the worker learns of a cancellation on its next report.
create or replace function public.backtest_run_progress(p_run_id uuid, p_progress numeric) returns text
language sql
set search_path = ''
as $$
  with moved as (
    update public.backtest_runs r
       set progress = greatest(r.progress, least(greatest(p_progress, 0), 1))
     where r.id = p_run_id and r.status = 'running'
    returning r.status
  )
  select coalesce((select status from moved), (select r.status from public.backtest_runs r where r.id = p_run_id));
$$;

revoke execute on function public.backtest_run_progress(uuid, numeric) from public, anon, authenticated;
grant execute on function public.backtest_run_progress(uuid, numeric) to service_role;

-- Finish a run in one statement.
--   p_status 'completed': p_result holds the backtest_results columns the worker computed
--     (figures, stats, trades, equity_curve, metadata); who, which market and which
--     strategy are taken from the run itself. Stored only while the run is still running.
--   p_status 'failed': p_error says why (shown to the user).
--   p_status 'cancelled': records what a cancelled run used.
-- Returns the result id for a completed run, else null. A run that is no longer running
-- (cancelled by its owner meanwhile) keeps its status; only its usage is recorded.
create or replace function public.backtest_run_finish(
  p_run_id uuid,
  p_status text,
  p_compute_seconds numeric,
  p_credits_charged numeric,
  p_result jsonb default null,
  p_error text default null
) returns uuid
language plpgsql
set search_path = ''
as $$
declare
  v_run public.backtest_runs;
  v_result_id uuid;
begin
  if p_status not in ('completed', 'failed', 'cancelled') then
    raise exception 'a run finishes completed, failed or cancelled, not %', p_status
      using errcode = 'invalid_parameter_value';
  end if;
  select * into v_run from public.backtest_runs r where r.id = p_run_id for update;
  if not found then
    return null;
  end if;
  if v_run.status <> 'running' then
    update public.backtest_runs r
       set compute_seconds = coalesce(p_compute_seconds, r.compute_seconds),
           credits_charged = coalesce(p_credits_charged, r.credits_charged),
           finished_at = coalesce(r.finished_at, now())
     where r.id = p_run_id;
    return null;
  end if;
  if p_status = 'completed' then
    if p_result is null then
      raise exception 'a completed run needs its result' using errcode = 'not_null_violation';
    end if;
    insert into public.backtest_results
    select (jsonb_populate_record(null::public.backtest_results,
              p_result || jsonb_build_object(
                'id', gen_random_uuid(), 'run_id', v_run.id, 'strategy_id', v_run.strategy_id,
                'user_id', v_run.user_id, 'trading_pair', v_run.trading_pair, 'timeframe', v_run.timeframe,
                'created_at', now()))).*
    returning id into v_result_id;
  end if;
  update public.backtest_runs r
     set status = p_status,
         progress = case when p_status = 'completed' then 1 else r.progress end,
         error = case when p_status = 'failed' then left(coalesce(p_error, 'failed'), 2000) end,
         compute_seconds = p_compute_seconds,
         credits_charged = p_credits_charged,
         finished_at = now()
   where r.id = p_run_id;
  return v_result_id;
end;
$$;

revoke execute on function public.backtest_run_finish(uuid, text, numeric, numeric, jsonb, text)
  from public, anon, authenticated;
grant execute on function public.backtest_run_finish(uuid, text, numeric, numeric, jsonb, text) to service_role;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger backtest_runs_updated_at before update on public.backtest_runs
  for each row execute function private.set_updated_at();
create trigger backtest_results_refresh_strategy after insert or delete or update of strategy_id, total_return_percentage
  on public.backtest_results for each row execute function private.refresh_strategy_backtest_figures();
create trigger backtest_runs_validate_minutes before insert on public.backtest_runs
  for each row execute function private.validate_backtest_minutes();
create trigger backtest_runs_guard_changes before update on public.backtest_runs
  for each row execute function private.guard_backtest_run_changes();
create trigger backtest_runs_enqueue after insert on public.backtest_runs
  for each row when (new.status = 'queued') execute function private.enqueue_backtest_run();

-- ======================================================================================
-- Realtime
-- ======================================================================================

alter publication supabase_realtime add table public.backtest_runs;
