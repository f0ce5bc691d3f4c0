-- Backtest runs in three modes, and a report for every finished run.
-- * backtest_runs.mode: 'backtest' (one strategy, one market, as before), 'optimize' (a
--   parameter grid ranked on the in-sample part and checked out of sample or walk-forward;
--   settings of the search in backtest_runs.optimization) or 'batch' (one strategy on each
--   of backtest_runs.trading_pairs; trading_pair is the first of them).
-- * An optimisation may evaluate at most plans.features.max_optimization_sets parameter
--   sets (default 500); the fleet checks the grid through backtest_run_check_grid, which
--   fails with the plan-limit error naming the plan that lifts it.
-- * backtest_run_finish also takes several results (a batch: one per market), the run's
--   summary (backtest_runs.summary) and the run's HTML report (backtest_reports, readable
--   by the run's owner only).
-- * A marketplace strategy's public figures leave optimisations out: their result is the
--   best set of a grid, not the strategy's published parameters.

-- Tables and indexes -----------------------------------------------------------------------

alter table public.backtest_runs
  add column mode text not null default 'backtest'
    constraint backtest_runs_mode_known check (mode in ('backtest', 'optimize', 'batch')),
  add column trading_pairs text[],
  add column optimization jsonb not null default '{}',
  add column summary jsonb,
  add constraint backtest_runs_batch_pairs check (
    (mode = 'batch') = (trading_pairs is not null)
    and (trading_pairs is null
         or (cardinality(trading_pairs) between 1 and 20 and trading_pair = trading_pairs[1]))),
  add constraint backtest_runs_optimization_object
    check (jsonb_typeof(optimization) = 'object' and pg_column_size(optimization) <= 16384);

create table public.backtest_reports (
  run_id uuid primary key references public.backtest_runs (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  html text not null,
  created_at timestamptz not null default now()
);

create index backtest_reports_user_id_idx on public.backtest_reports (user_id);

update public.plans
   set features = features || jsonb_build_object('max_optimization_sets',
                                                 case name when 'Free' then 500 when 'Pro' then 5000 else 50000 end)
 where name in ('Free', 'Pro', 'Enterprise');

-- Row level security and table grants ------------------------------------------------------

grant insert (mode, trading_pairs, optimization) on public.backtest_runs to authenticated;

revoke all on public.backtest_reports from anon, authenticated;
grant all on public.backtest_reports to service_role;
grant select on public.backtest_reports to authenticated;
alter table public.backtest_reports enable row level security;
create policy "Users can read their own backtest reports" on public.backtest_reports
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every backtest report" on public.backtest_reports
  for select to tradefleet_admin using (true);

-- Functions --------------------------------------------------------------------------------

-- A batch's trading_pair is its first market, so apps may send only trading_pairs.
create or replace function private.backtest_run_batch_market() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_pair text;
begin
  if new.mode = 'batch' and new.trading_pairs is not null then
    if cardinality(new.trading_pairs) not between 1 and 20 then
      raise exception 'a batch runs on 1 to 20 markets, not %', coalesce(cardinality(new.trading_pairs), 0)
        using errcode = 'check_violation', constraint = 'backtest_runs_batch_pairs';
    end if;
    foreach v_pair in array new.trading_pairs loop
      if v_pair is null or v_pair !~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$' then
        raise exception 'invalid trading pair % in trading_pairs (expected e.g. BTC/USDT)', coalesce(v_pair, 'null')
          using errcode = 'check_violation', constraint = 'backtest_runs_batch_pairs';
      end if;
    end loop;
    if (select count(distinct p) from unnest(new.trading_pairs) p) <> cardinality(new.trading_pairs) then
      raise exception 'trading_pairs names a market twice'
        using errcode = 'check_violation', constraint = 'backtest_runs_batch_pairs';
    end if;
    new.trading_pair := new.trading_pairs[1];
  end if;
  return new;
end;
$$;
revoke all on function private.backtest_run_batch_market() from public, anon, authenticated;

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
             and exists (select 1 from public.backtest_runs r
                          where r.id = br.run_id and r.parameters = st.parameters and r.mode <> 'optimize')
           where st.id in (coalesce(new.strategy_id, old.strategy_id), coalesce(old.strategy_id, new.strategy_id))
           group by st.id) f
   where s.id = f.id;
  return null;
end;
$$;
revoke all on function private.refresh_strategy_backtest_figures() from public, anon, authenticated;

-- The fleet asks before it evaluates an optimisation's grid of p_sets parameter sets.
-- Returns the plan's limit; raises the plan-limit error when the grid is larger.
create or replace function public.backtest_run_check_grid(p_run_id uuid, p_sets integer) returns integer
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_user uuid;
  v_plan public.plans;
  v_limit integer;
begin
  select r.user_id into v_user from public.backtest_runs r where r.id = p_run_id;
  if v_user is null then
    raise exception 'no backtest run has id %', p_run_id using errcode = 'no_data_found';
  end if;
  v_plan := private.current_plan(v_user);
  v_limit := coalesce((v_plan.features ->> 'max_optimization_sets')::integer, 500);
  if p_sets > v_limit then
    perform private.raise_plan_limit(v_plan, 'max_optimization_sets',
                                     format('allows %s parameter sets per optimisation', v_limit),
                                     p_sets, 'backtest_runs_plan_optimization_sets');
  end if;
  return v_limit;
end;
$$;
revoke execute on function public.backtest_run_check_grid(uuid, integer) from public, anon, authenticated;
grant execute on function public.backtest_run_check_grid(uuid, integer) to service_role;

-- Finish a run in one statement.
--   p_status 'completed': p_result holds the backtest_results columns the worker computed
--     (figures, stats, trades, equity_curve, metadata), or under 'results' an array of
--     them (a batch: each names its trading_pair); who, which strategy and (unless a
--     result names it) which market are taken from the run. Optional keys: 'summary'
--     (stored on the run) and 'report_html' (the run's report). Stored only while the run
--     is still running.
--   p_status 'failed': p_error says why (shown to the user).
--   p_status 'cancelled': records what a cancelled run used.
-- Returns the (first) result id for a completed run, else null. A run that is no longer
-- running (cancelled by its owner meanwhile) keeps its status; only its usage is recorded.
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
  v_results jsonb;
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
    if p_result is null or jsonb_typeof(p_result) <> 'object' then
      raise exception 'a completed run needs its result' using errcode = 'not_null_violation';
    end if;
    v_results := case when p_result ? 'results' then p_result -> 'results'
                      else jsonb_build_array(p_result - 'summary' - 'report_html') end;
    if jsonb_typeof(v_results) <> 'array' or jsonb_array_length(v_results) = 0 then
      raise exception 'a completed run needs at least one result' using errcode = 'not_null_violation';
    end if;
    with stored as (
      insert into public.backtest_results
      select (jsonb_populate_record(null::public.backtest_results,
                e.value || jsonb_build_object(
                  'id', gen_random_uuid(), 'run_id', v_run.id, 'strategy_id', v_run.strategy_id,
                  'user_id', v_run.user_id,
                  'trading_pair', coalesce(e.value ->> 'trading_pair', v_run.trading_pair),
                  'timeframe', v_run.timeframe, 'created_at', now()))).*
        from jsonb_array_elements(v_results) with ordinality e(value, n)
       order by e.n
      returning id, trading_pair
    )
    select s.id into v_result_id from stored s
     order by s.trading_pair = v_run.trading_pair desc limit 1;
    if p_result ? 'report_html' then
      insert into public.backtest_reports (run_id, user_id, html)
      values (v_run.id, v_run.user_id, p_result ->> 'report_html')
      on conflict (run_id) do update set html = excluded.html, created_at = now();
    end if;
  end if;
  update public.backtest_runs r
     set status = p_status,
         progress = case when p_status = 'completed' then 1 else r.progress end,
         error = case when p_status = 'failed' then left(coalesce(p_error, 'failed'), 2000) end,
         summary = case when p_status = 'completed' then p_result -> 'summary' else r.summary end,
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

-- Triggers ---------------------------------------------------------------------------------

create trigger backtest_runs_batch_market before insert on public.backtest_runs
  for each row execute function private.backtest_run_batch_market();
