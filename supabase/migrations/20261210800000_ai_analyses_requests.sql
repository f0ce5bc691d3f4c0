-- AI analyses requested by apps and written by the fleet (worker/ai).
--
-- * ai_analyses becomes a request row with a lifecycle: queued -> running -> completed or
--   failed (with a named error_code and a message). The worker fills the summary, the
--   findings (each with a severity), the suggestions, the platform-computed figures the
--   text rests on, the model, the prompt and completion tokens, the latency and the credits
--   charged. A 'portfolio' analysis type joins the known ones.
-- * request_ai_analysis: the app's one call. It checks the caller owns the bot, strategy or
--   backtest run, applies a per-user rate limit (plans.features.ai_requests_per_minute,
--   default 5), and inserts the row, which the plan's ai_requests_per_month trigger counts.
--   An insert enqueues one ai.analyze job.
-- * apply_ai_suggestion: applies a parameter suggestion to the caller's bot or strategy in
--   one call, under the caller's own grants and row level security.
-- * save_ai_strategy: saves the strategy the assistant generated as the caller's strategy.
-- * ai_token_price: the plan's credits per 1,000 tokens (plans.features.credits_per_1k_ai_tokens).
-- * A generated strategy's backtest reports back: when its result is stored, its metrics
--   join the analysis's figures (figures.backtest).
-- * ai_analyses is published to Realtime so apps see the row change.

-- Tables --------------------------------------------------------------------------------

alter table public.ai_analyses
  drop constraint ai_analyses_type_known,
  add constraint ai_analyses_type_known
    check (analysis_type in ('performance', 'risk', 'optimization', 'backtest', 'strategy_generation', 'portfolio')),
  add column backtest_run_id uuid references public.backtest_runs (id) on delete cascade,
  add column status text not null default 'queued'
    constraint ai_analyses_status_known check (status in ('queued', 'running', 'completed', 'failed')),
  add column error_code text,
  add column error text,
  add column summary text,
  add column findings jsonb not null default '[]'
    constraint ai_analyses_findings_array check (jsonb_typeof(findings) = 'array'),
  add column suggestions jsonb not null default '[]'
    constraint ai_analyses_suggestions_array check (jsonb_typeof(suggestions) = 'array'),
  add column figures jsonb not null default '{}'
    constraint ai_analyses_figures_object check (jsonb_typeof(figures) = 'object'),
  add column generated_strategy jsonb,
  add column result_backtest_run_id uuid references public.backtest_runs (id) on delete set null,
  add column saved_strategy_id uuid references public.strategies (id) on delete set null,
  add column prompt_tokens integer not null default 0 constraint ai_analyses_prompt_tokens_not_negative check (prompt_tokens >= 0),
  add column completion_tokens integer not null default 0 constraint ai_analyses_completion_tokens_not_negative check (completion_tokens >= 0),
  add column credits_charged numeric(24, 8) not null default 0 constraint ai_analyses_credits_not_negative check (credits_charged >= 0),
  add column started_at timestamptz,
  add column finished_at timestamptz,
  add column updated_at timestamptz not null default now(),
  add constraint ai_analyses_input_object
    check (jsonb_typeof(input_data) = 'object' and pg_column_size(input_data) <= 16384) not valid;

create index ai_analyses_backtest_run_id_idx on public.ai_analyses (backtest_run_id);
create index ai_analyses_result_backtest_run_id_idx on public.ai_analyses (result_backtest_run_id);
create index ai_analyses_saved_strategy_id_idx on public.ai_analyses (saved_strategy_id);

-- Functions -----------------------------------------------------------------------------

-- The plan's price of 1,000 tokens in credits; 0 when the plan does not set one.
create or replace function public.ai_token_price(p_user_id uuid) returns numeric
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'only the fleet prices AI tokens' using errcode = 'insufficient_privilege';
  end if;
  return coalesce(((private.current_plan(p_user_id)).features ->> 'credits_per_1k_ai_tokens')::numeric, 0);
end;
$$;
revoke all on function public.ai_token_price(uuid) from public, anon, authenticated;
grant execute on function public.ai_token_price(uuid) to service_role;

-- Request an analysis. p_type: performance or risk (of p_bot_id or p_strategy_id), backtest
-- (of p_backtest_run_id), portfolio, or strategy_generation (p_input.description and the
-- market to backtest on: trading_pair, timeframe, exchange, start_date, end_date).
create or replace function public.request_ai_analysis(p_type text, p_bot_id uuid default null,
                                                      p_strategy_id uuid default null,
                                                      p_backtest_run_id uuid default null,
                                                      p_input jsonb default '{}')
returns public.ai_analyses
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_plan public.plans;
  v_limit integer;
  v_take record;
  v_row public.ai_analyses;
begin
  if v_uid is null or current_user = 'anon' then
    raise exception 'sign in to request an AI analysis' using errcode = 'insufficient_privilege';
  end if;
  if p_type is null or p_type not in ('performance', 'risk', 'backtest', 'portfolio', 'strategy_generation') then
    raise exception 'unknown analysis type %; expected performance, risk, backtest, portfolio or strategy_generation',
      coalesce(p_type, 'null') using errcode = 'invalid_parameter_value';
  end if;
  if p_input is null or jsonb_typeof(p_input) <> 'object' or pg_column_size(p_input) > 16384 then
    raise exception 'p_input must be a JSON object of at most 16 KiB' using errcode = 'invalid_parameter_value';
  end if;
  if p_type in ('performance', 'risk') and (p_bot_id is null) = (p_strategy_id is null) then
    raise exception 'a % analysis needs exactly one of p_bot_id and p_strategy_id', p_type
      using errcode = 'invalid_parameter_value';
  end if;
  if p_type = 'performance' and p_bot_id is null then
    raise exception 'a performance review is of a bot: pass p_bot_id' using errcode = 'invalid_parameter_value';
  end if;
  if p_type = 'backtest' and p_backtest_run_id is null then
    raise exception 'a backtest explanation needs p_backtest_run_id' using errcode = 'invalid_parameter_value';
  end if;
  if p_type = 'strategy_generation' and coalesce(btrim(p_input ->> 'description'), '') = '' then
    raise exception 'describe the strategy in p_input.description' using errcode = 'invalid_parameter_value';
  end if;
  if p_bot_id is not null and not exists (select 1 from public.bots b where b.id = p_bot_id and b.user_id = v_uid) then
    raise exception 'no bot of yours has id %', p_bot_id using errcode = 'insufficient_privilege';
  end if;
  if p_strategy_id is not null
     and not exists (select 1 from public.strategies s where s.id = p_strategy_id and s.user_id = v_uid) then
    raise exception 'no strategy of yours has id %', p_strategy_id using errcode = 'insufficient_privilege';
  end if;
  if p_backtest_run_id is not null
     and not exists (select 1 from public.backtest_runs r where r.id = p_backtest_run_id and r.user_id = v_uid) then
    raise exception 'no backtest run of yours has id %', p_backtest_run_id using errcode = 'insufficient_privilege';
  end if;

  v_plan := private.current_plan(v_uid);
  v_limit := coalesce((v_plan.features ->> 'ai_requests_per_minute')::integer, 5);
  select * into v_take from private.rate_limit_take('ai:' || v_uid::text, v_limit, interval '1 minute');
  if not v_take.allowed then
    raise exception 'rate limited: at most % AI requests a minute; try again in % seconds',
      v_limit, v_take.retry_after_seconds
      using errcode = 'PT429', hint = format('retry after %s seconds', v_take.retry_after_seconds);
  end if;

  insert into public.ai_analyses (user_id, bot_id, strategy_id, backtest_run_id, analysis_type, input_data)
  values (v_uid, p_bot_id, p_strategy_id, p_backtest_run_id, p_type, p_input)
  returning * into v_row;
  return v_row;
end;
$$;
revoke all on function public.request_ai_analysis(text, uuid, uuid, uuid, jsonb) from public, anon;
grant execute on function public.request_ai_analysis(text, uuid, uuid, uuid, jsonb) to authenticated, service_role;

-- Apply suggestion number p_index (from 0) of a completed analysis: its parameters are
-- merged into the bot's (or the strategy's) parameters, and its stop_loss / take_profit set
-- on the bot. Runs as the caller, so their grants and row level security decide.
create or replace function public.apply_ai_suggestion(p_analysis_id uuid, p_index integer default 0) returns jsonb
language plpgsql security invoker
set search_path = ''
as $$
declare
  v_row public.ai_analyses;
  v_s jsonb;
  v_params jsonb;
  v_n integer;
begin
  if (select auth.uid()) is null then
    raise exception 'sign in to apply a suggestion' using errcode = 'insufficient_privilege';
  end if;
  select * into v_row from public.ai_analyses a where a.id = p_analysis_id and a.user_id = (select auth.uid());
  if not found then
    raise exception 'no analysis of yours has id %', p_analysis_id using errcode = 'no_data_found';
  end if;
  if v_row.status <> 'completed' then
    raise exception 'the analysis is %, not completed', v_row.status using errcode = 'invalid_parameter_value';
  end if;
  v_s := v_row.suggestions -> coalesce(p_index, -1);
  if v_s is null or jsonb_typeof(v_s -> 'parameters') <> 'object' then
    raise exception 'suggestion % of analysis % has no parameters to apply', p_index, p_analysis_id
      using errcode = 'invalid_parameter_value';
  end if;
  v_params := v_s -> 'parameters';
  if v_s ->> 'target' = 'strategy' and v_row.strategy_id is not null then
    update public.strategies s set parameters = s.parameters || v_params where s.id = v_row.strategy_id;
    get diagnostics v_n = row_count;
  elsif v_row.bot_id is not null then
    update public.bots b
       set parameters = b.parameters || (v_params - 'stop_loss' - 'take_profit'),
           stop_loss = coalesce((v_params ->> 'stop_loss')::numeric, b.stop_loss),
           take_profit = coalesce((v_params ->> 'take_profit')::numeric, b.take_profit)
     where b.id = v_row.bot_id;
    get diagnostics v_n = row_count;
  else
    v_n := 0;
  end if;
  if v_n = 0 then
    raise exception 'the bot or strategy of analysis % no longer exists', p_analysis_id using errcode = 'no_data_found';
  end if;
  return jsonb_build_object('analysis_id', v_row.id, 'bot_id', v_row.bot_id, 'strategy_id',
                            case when v_s ->> 'target' = 'strategy' then v_row.strategy_id end,
                            'applied', v_params);
end;
$$;
revoke all on function public.apply_ai_suggestion(uuid, integer) from public, anon;
grant execute on function public.apply_ai_suggestion(uuid, integer) to authenticated;

-- Save the strategy a completed strategy_generation analysis produced as the caller's own
-- 'ai_generated' rules strategy (plan limits apply: this inserts as the caller).
create or replace function public.save_ai_strategy(p_analysis_id uuid, p_name text default null) returns uuid
language plpgsql security invoker
set search_path = ''
as $$
declare
  v_row public.ai_analyses;
  v_id uuid;
begin
  if (select auth.uid()) is null then
    raise exception 'sign in to save a strategy' using errcode = 'insufficient_privilege';
  end if;
  select * into v_row from public.ai_analyses a where a.id = p_analysis_id and a.user_id = (select auth.uid());
  if not found then
    raise exception 'no analysis of yours has id %', p_analysis_id using errcode = 'no_data_found';
  end if;
  if v_row.analysis_type <> 'strategy_generation' or v_row.status <> 'completed' or v_row.generated_strategy is null then
    raise exception 'analysis % has no generated strategy to save', p_analysis_id using errcode = 'invalid_parameter_value';
  end if;
  if v_row.saved_strategy_id is not null then
    return v_row.saved_strategy_id;
  end if;
  insert into public.strategies (user_id, name, description, strategy_type, engine, content, tags)
  values ((select auth.uid()),
          coalesce(nullif(btrim(p_name), ''), v_row.generated_strategy ->> 'name', 'Assistant strategy'),
          left(v_row.input_data ->> 'description', 4000), 'ai_generated', 'rules',
          (v_row.generated_strategy -> 'rules')::text, array['assistant'])
  returning id into v_id;
  perform private.ai_link_saved_strategy(v_row.id, v_id);
  return v_id;
end;
$$;
revoke all on function public.save_ai_strategy(uuid, text) from public, anon;
grant execute on function public.save_ai_strategy(uuid, text) to authenticated;

-- Remember which strategy an analysis was saved as (apps cannot update ai_analyses).
create or replace function private.ai_link_saved_strategy(p_analysis_id uuid, p_strategy_id uuid) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.ai_analyses a set saved_strategy_id = p_strategy_id, updated_at = now()
   where a.id = p_analysis_id and a.user_id = (select auth.uid())
     and exists (select 1 from public.strategies s where s.id = p_strategy_id and s.user_id = (select auth.uid()));
end;
$$;
revoke all on function private.ai_link_saved_strategy(uuid, uuid) from public, anon, authenticated;
grant execute on function private.ai_link_saved_strategy(uuid, uuid) to authenticated;

-- One ai.analyze job per queued row (the idempotency key is the row id).
create or replace function private.enqueue_ai_analysis() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.status = 'queued' then
    perform public.enqueue_job('ai.analyze', jsonb_build_object('analysis_id', new.id), 'default', null, 0, 3,
                               'ai.analyze:' || new.id::text);
  end if;
  return null;
end;
$$;
revoke all on function private.enqueue_ai_analysis() from public, anon, authenticated;

-- The metrics of a generated strategy's backtest, added to its analysis's figures.
create or replace function private.ai_backtest_reported() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.ai_analyses a
     set figures = a.figures || jsonb_build_object('backtest', jsonb_build_object(
           'result_id', new.id, 'total_trades', new.total_trades, 'win_rate', new.win_rate,
           'total_return_pct', new.total_return_percentage, 'max_drawdown_pct', new.max_drawdown,
           'sharpe_ratio', new.sharpe_ratio, 'profit_factor', new.profit_factor))
   where a.result_backtest_run_id = new.run_id;
  return null;
end;
$$;
revoke all on function private.ai_backtest_reported() from public, anon, authenticated;

-- Triggers ------------------------------------------------------------------------------

create trigger ai_analyses_enqueue after insert on public.ai_analyses
  for each row execute function private.enqueue_ai_analysis();
create trigger ai_analyses_updated_at before update on public.ai_analyses
  for each row execute function private.set_updated_at();
create trigger backtest_results_ai_analyses after insert on public.backtest_results
  for each row when (new.run_id is not null) execute function private.ai_backtest_reported();

-- Realtime ------------------------------------------------------------------------------

alter publication supabase_realtime add table public.ai_analyses;
