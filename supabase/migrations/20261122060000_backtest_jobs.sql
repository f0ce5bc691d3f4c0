-- Backtests from the app: a backtest_runs row inserted through PostgREST becomes a
-- 'backtest.run' job (one per run), and the fleet reports back through three functions:
-- start (queued -> running), progress (and whether the run was cancelled meanwhile),
-- and finish (the result row and the run's final status in one statement).

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
create trigger backtest_runs_enqueue after insert on public.backtest_runs
  for each row when (new.status = 'queued') execute function private.enqueue_backtest_run();

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
