-- Trading: sealed exchange keys, strategies, bots, orders, trades, logs, candles,
-- backtests and AI analyses, with the bot statistics and plan-limit triggers.

create table public.exchange_credentials (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  exchange text not null constraint exchange_credentials_exchange_format check (exchange ~ '^[a-z0-9]{2,32}$'),
  label text not null default 'default',
  -- AES-256-GCM envelope 'v1:<key id>:<nonce>:<ciphertext>'; readable by the service only.
  sealed_secret text not null,
  key_id text not null,
  api_key_hint text,
  is_testnet boolean not null default false,
  last_used_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint exchange_credentials_one_label_per_exchange unique (user_id, exchange, label)
);
create index exchange_credentials_user_id_idx on public.exchange_credentials (user_id);
create trigger exchange_credentials_updated_at before update on public.exchange_credentials
  for each row execute function private.set_updated_at();

create table public.strategies (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  name text not null constraint strategies_name_not_blank check (btrim(name) <> ''),
  description text,
  strategy_type text not null constraint strategies_type_known
    check (strategy_type in ('builtin', 'custom', 'ai_generated', 'marketplace')),
  -- The engine that runs it: a built-in name or 'rules' for declarative strategies.
  engine text not null default 'rules' constraint strategies_engine_known
    check (engine in ('sma_cross', 'ema_cross', 'rsi', 'macd', 'rsi_macd', 'bollinger', 'rules')),
  content text,
  parameters jsonb not null default '{}',
  performance jsonb not null default '{}',
  is_public boolean not null default false,
  is_verified boolean not null default false,
  backtest_results jsonb,
  backtest_count integer not null default 0,
  avg_backtest_return numeric(12, 4) not null default 0,
  tags text[] not null default '{}',
  category text,
  risk_level text constraint strategies_risk_level_known check (risk_level in ('low', 'medium', 'high')),
  monthly_price numeric(12, 2) not null default 0 constraint strategies_monthly_price_not_negative check (monthly_price >= 0),
  provider_share numeric(5, 4) not null default 0.80 constraint strategies_provider_share_fraction check (provider_share between 0 and 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index strategies_user_id_idx on public.strategies (user_id);
create index strategies_marketplace_idx on public.strategies (is_public, strategy_type, is_verified)
  where is_public and strategy_type = 'marketplace';
create trigger strategies_updated_at before update on public.strategies
  for each row execute function private.set_updated_at();

create table public.bots (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  strategy_id uuid references public.strategies (id) on delete set null,
  exchange_credential_id uuid references public.exchange_credentials (id) on delete set null,
  name text not null constraint bots_name_not_blank check (btrim(name) <> ''),
  exchange text not null constraint bots_exchange_supported
    check (exchange in ('binance', 'bybit', 'mexc', 'bitget', 'kraken', 'coinbase', 'okx', 'kucoin', 'gate')),
  trading_pair text not null constraint bots_trading_pair_format check (trading_pair ~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$'),
  timeframe text not null constraint bots_timeframe_supported check (timeframe in ('1m', '5m', '15m', '30m', '1h', '4h', '1d')),
  strategy text not null constraint bots_strategy_known
    check (strategy in ('sma_cross', 'ema_cross', 'rsi', 'macd', 'rsi_macd', 'bollinger', 'rules')),
  parameters jsonb not null default '{}',
  status text not null default 'stopped' constraint bots_status_known check (status in ('running', 'stopped', 'error', 'paused')),
  initial_balance numeric(20, 8) not null constraint bots_initial_balance_positive check (initial_balance > 0),
  current_balance numeric(20, 8) not null,
  total_trades integer not null default 0,
  winning_trades integer not null default 0,
  losing_trades integer not null default 0,
  profit numeric(20, 8) not null default 0,
  profit_percentage numeric(12, 4) not null default 0,
  max_open_trades integer not null default 1 constraint bots_max_open_trades_positive check (max_open_trades between 1 and 100),
  stake_amount numeric(20, 8) not null constraint bots_stake_amount_positive check (stake_amount > 0),
  stop_loss numeric(10, 4) constraint bots_stop_loss_percent check (stop_loss > 0 and stop_loss < 100),
  take_profit numeric(10, 4) constraint bots_take_profit_percent check (take_profit > 0),
  risk_percentage numeric(5, 2) not null default 2.0 constraint bots_risk_percentage_range check (risk_percentage > 0 and risk_percentage <= 100),
  daily_loss_limit numeric(20, 8) constraint bots_daily_loss_limit_positive check (daily_loss_limit > 0),
  leverage numeric(6, 2) not null default 1 constraint bots_leverage_range check (leverage >= 1 and leverage <= 125),
  allow_short boolean not null default false,
  is_paper_trade boolean not null default true,
  last_trade_at timestamptz,
  error_message text,
  status_reason text,
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint bots_live_needs_credentials check (is_paper_trade or exchange_credential_id is not null)
);
create index bots_user_id_idx on public.bots (user_id);
create index bots_strategy_id_idx on public.bots (strategy_id);
create index bots_exchange_credential_id_idx on public.bots (exchange_credential_id);
create index bots_status_idx on public.bots (status) where status = 'running';
create index bots_market_idx on public.bots (exchange, trading_pair, timeframe) where status = 'running';
create trigger bots_updated_at before update on public.bots
  for each row execute function private.set_updated_at();

create table public.orders (
  id uuid primary key default gen_random_uuid(),
  bot_id uuid not null references public.bots (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  -- Deterministic from the bot and its decision: a retried decision reuses it.
  client_order_id text not null constraint orders_client_order_id_unique unique,
  exchange_order_id text,
  exchange text not null,
  symbol text not null,
  side text not null constraint orders_side_known check (side in ('buy', 'sell')),
  order_type text not null constraint orders_type_known check (order_type in ('market', 'limit', 'stop', 'stop_limit')),
  amount numeric(28, 12) not null constraint orders_amount_positive check (amount > 0),
  price numeric(28, 12) constraint orders_price_positive check (price > 0),
  stop_price numeric(28, 12) constraint orders_stop_price_positive check (stop_price > 0),
  filled numeric(28, 12) not null default 0 check (filled >= 0),
  average_price numeric(28, 12),
  fee numeric(28, 12) not null default 0,
  fee_currency text,
  status text not null default 'pending' constraint orders_status_known
    check (status in ('pending', 'open', 'closed', 'canceled', 'rejected', 'expired')),
  reason text,
  is_paper_trade boolean not null default true,
  lease_epoch bigint not null,
  -- The signal this order copies: copy execution owns it; null for the bot's own orders.
  signal_id uuid,
  raw jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index orders_bot_id_idx on public.orders (bot_id, created_at desc);
create index orders_user_id_idx on public.orders (user_id, created_at desc);
create index orders_open_idx on public.orders (bot_id) where status in ('pending', 'open');
create trigger orders_updated_at before update on public.orders
  for each row execute function private.set_updated_at();

create table public.trades (
  id uuid primary key default gen_random_uuid(),
  bot_id uuid not null references public.bots (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  exchange text not null,
  trading_pair text not null,
  side text not null constraint trades_side_known check (side in ('buy', 'sell')),
  direction text not null default 'long' constraint trades_direction_known check (direction in ('long', 'short')),
  order_type text not null default 'market' constraint trades_order_type_known check (order_type in ('market', 'limit', 'stop', 'stop_limit')),
  amount numeric(28, 12) not null constraint trades_amount_positive check (amount > 0),
  price numeric(28, 12) not null constraint trades_price_positive check (price > 0),
  exit_price numeric(28, 12) constraint trades_exit_price_positive check (exit_price > 0),
  fee numeric(28, 12) not null default 0 check (fee >= 0),
  profit numeric(28, 12) not null default 0,
  profit_percentage numeric(12, 4) not null default 0,
  status text not null default 'open' constraint trades_status_known check (status in ('open', 'closed', 'cancelled')),
  exit_reason text,
  entry_time timestamptz not null,
  exit_time timestamptz,
  holding_duration interval generated always as (exit_time - entry_time) stored,
  entry_order_id uuid references public.orders (id) on delete set null,
  exit_order_id uuid references public.orders (id) on delete set null,
  exchange_order_id text,
  exchange_trade_id text,
  is_paper_trade boolean not null default true,
  signal_price numeric(28, 12),
  stop_loss_price numeric(28, 12),
  take_profit_price numeric(28, 12),
  lease_epoch bigint,
  -- The signal this trade copies: copy execution owns it; null for the bot's own trades.
  signal_id uuid,
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint trades_closed_has_exit check (status <> 'closed' or (exit_time is not null and exit_price is not null))
);
create index trades_bot_id_idx on public.trades (bot_id);
create index trades_user_entry_idx on public.trades (user_id, entry_time desc);
create index trades_entry_time_idx on public.trades (entry_time);
create index trades_entry_order_id_idx on public.trades (entry_order_id);
create index trades_exit_order_id_idx on public.trades (exit_order_id);
create index trades_open_idx on public.trades (bot_id) where status = 'open';
create trigger trades_updated_at before update on public.trades
  for each row execute function private.set_updated_at();

create table public.bot_logs (
  id bigint generated always as identity primary key,
  user_id uuid not null references public.profiles (id) on delete cascade,
  bot_id uuid references public.bots (id) on delete cascade,
  strategy_id uuid references public.strategies (id) on delete cascade,
  log_level text not null constraint bot_logs_level_known check (log_level in ('debug', 'info', 'warning', 'error')),
  message text not null,
  context jsonb not null default '{}',
  source text,
  created_at timestamptz not null default now()
);
create index bot_logs_bot_id_idx on public.bot_logs (bot_id, created_at desc);
create index bot_logs_user_id_idx on public.bot_logs (user_id, created_at desc);
create index bot_logs_strategy_id_idx on public.bot_logs (strategy_id);

create table public.candles (
  exchange text not null,
  symbol text not null,
  timeframe text not null,
  open_time timestamptz not null,
  open numeric(28, 12) not null,
  high numeric(28, 12) not null,
  low numeric(28, 12) not null,
  close numeric(28, 12) not null,
  volume numeric(32, 12) not null default 0,
  created_at timestamptz not null default now(),
  primary key (exchange, symbol, timeframe, open_time),
  constraint candles_high_low_consistent check (high >= low and high >= open and high >= close and low <= open and low <= close)
);

create table public.backtest_runs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
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
create trigger backtest_runs_updated_at before update on public.backtest_runs
  for each row execute function private.set_updated_at();

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

create table public.ai_analyses (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  bot_id uuid references public.bots (id) on delete cascade,
  strategy_id uuid references public.strategies (id) on delete cascade,
  analysis_type text not null constraint ai_analyses_type_known
    check (analysis_type in ('performance', 'risk', 'optimization', 'backtest', 'strategy_generation')),
  input_data jsonb not null,
  results jsonb not null default '{}',
  recommendations text[] not null default '{}',
  confidence_score numeric(3, 2) not null default 0 check (confidence_score between 0 and 1),
  model_used text,
  tokens_used integer not null default 0 check (tokens_used >= 0),
  processing_time_ms integer,
  created_at timestamptz not null default now()
);
create index ai_analyses_user_id_idx on public.ai_analyses (user_id, created_at desc);
create index ai_analyses_bot_id_idx on public.ai_analyses (bot_id);
create index ai_analyses_strategy_id_idx on public.ai_analyses (strategy_id);

-- ---------------------------------------------------------------------------
-- Defaults that let apps omit the owner column.
alter table public.strategies alter column user_id set default auth.uid();
alter table public.bots alter column user_id set default auth.uid();
alter table public.backtest_runs alter column user_id set default auth.uid();

-- ---------------------------------------------------------------------------
-- validate_bot_limits: the plan's max_bots (on bots) and max_strategies (on strategies),
-- with a clear error naming the limit, checked under a per-user lock so two concurrent
-- inserts cannot both squeeze under it.
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
    raise exception 'plan limit reached: the % plan allows % % (max_%)', v_plan.name, v_limit, tg_table_name, tg_table_name
      using errcode = 'check_violation', constraint = tg_table_name || '_plan_max_' || tg_table_name,
            hint = format('Upgrade the plan or delete one of your %s.', tg_table_name);
  end if;
  return new;
end;
$$;
revoke all on function private.validate_bot_limits() from public, anon, authenticated;
create trigger bots_validate_limits before insert on public.bots
  for each row execute function private.validate_bot_limits();
create trigger strategies_validate_limits before insert on public.strategies
  for each row execute function private.validate_bot_limits();

-- ---------------------------------------------------------------------------
-- What apps may and may not do to a bot row.
create or replace function private.guard_bot_changes() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    new.current_balance := new.initial_balance;
  end if;
  if not private.is_service() then
    if new.status = 'error' and (tg_op = 'INSERT' or old.status <> 'error') then
      raise exception 'only the fleet sets a bot to error'
        using errcode = 'check_violation', constraint = 'bots_status_error_is_fleet_owned';
    end if;
    -- Going live needs a session that passed two-factor authentication.
    if not new.is_paper_trade
       and (tg_op = 'INSERT' or old.is_paper_trade or (new.status = 'running' and old.status <> 'running'))
       and coalesce(auth.jwt() ->> 'aal', 'aal1') <> 'aal2' then
      raise exception 'live trading needs a session with two-factor authentication (aal2)'
        using errcode = 'insufficient_privilege', constraint = 'bots_live_requires_aal2';
    end if;
    if tg_op = 'UPDATE' and new.status = 'running' and old.status = 'error' then
      new.error_message := null;
    end if;
  end if;
  return new;
end;
$$;
revoke all on function private.guard_bot_changes() from public, anon, authenticated;
create trigger bots_guard_changes before insert or update on public.bots
  for each row execute function private.guard_bot_changes();

-- ---------------------------------------------------------------------------
-- update_bot_statistics: closed trades drive each bot's counters, profit and balance.
-- Statement-level with transition tables, so a batch of trades costs one update per bot.
create or replace function private.apply_bot_stat_deltas(
  p_bot uuid[], p_total bigint[], p_win bigint[], p_loss bigint[], p_profit numeric[], p_last timestamptz[]
) returns void
language sql
set search_path = ''
as $$
  update public.bots b
     set total_trades = b.total_trades + d.d_total,
         winning_trades = b.winning_trades + d.d_win,
         losing_trades = b.losing_trades + d.d_loss,
         profit = b.profit + d.d_profit,
         current_balance = b.initial_balance + b.profit + d.d_profit,
         profit_percentage = round((b.profit + d.d_profit) / b.initial_balance * 100, 4),
         last_trade_at = greatest(b.last_trade_at, d.last_at)
    from unnest(p_bot, p_total, p_win, p_loss, p_profit, p_last)
         as d(bot_id, d_total, d_win, d_loss, d_profit, last_at)
   where b.id = d.bot_id
$$;
revoke all on function private.apply_bot_stat_deltas(uuid[], bigint[], bigint[], bigint[], numeric[], timestamptz[]) from public, anon, authenticated;

-- Security definer: the counters are fleet-owned columns that no app role may write.
create or replace function public.update_bot_statistics() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- Each branch reads only the transition tables its event has.
  if tg_op = 'INSERT' then
    perform private.apply_bot_stat_deltas(array_agg(bot_id), array_agg(n), array_agg(w), array_agg(l), array_agg(p), array_agg(t))
      from (select bot_id, count(*) n, count(*) filter (where profit > 0) w, count(*) filter (where profit < 0) l,
                   sum(profit) p, max(coalesce(exit_time, entry_time)) t
              from new_rows where status = 'closed' group by bot_id) d;
  elsif tg_op = 'DELETE' then
    perform private.apply_bot_stat_deltas(array_agg(bot_id), array_agg(n), array_agg(w), array_agg(l), array_agg(p), array_agg(t))
      from (select bot_id, -count(*) n, -count(*) filter (where profit > 0) w, -count(*) filter (where profit < 0) l,
                   -sum(profit) p, null::timestamptz t
              from old_rows where status = 'closed' group by bot_id) d;
  else
    perform private.apply_bot_stat_deltas(array_agg(bot_id), array_agg(n), array_agg(w), array_agg(l), array_agg(p), array_agg(t))
      from (select bot_id, sum(s) n, sum(s * (profit > 0)::int) w, sum(s * (profit < 0)::int) l,
                   sum(s * profit) p, max(at) t
              from (select bot_id, 1 s, profit, coalesce(exit_time, entry_time) at from new_rows where status = 'closed'
                    union all
                    select bot_id, -1, profit, null from old_rows where status = 'closed') c
             group by bot_id) d;
  end if;
  return null;
end;
$$;
revoke all on function public.update_bot_statistics() from public, anon, authenticated;

create trigger trades_update_bot_statistics_insert after insert on public.trades
  referencing new table as new_rows for each statement execute function public.update_bot_statistics();
create trigger trades_update_bot_statistics_update after update on public.trades
  referencing old table as old_rows new table as new_rows for each statement execute function public.update_bot_statistics();
create trigger trades_update_bot_statistics_delete after delete on public.trades
  referencing old table as old_rows for each statement execute function public.update_bot_statistics();

-- ---------------------------------------------------------------------------
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
create trigger backtest_results_refresh_strategy after insert or delete or update of strategy_id, total_return_percentage
  on public.backtest_results for each row execute function private.refresh_strategy_backtest_figures();

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
create trigger backtest_runs_validate_minutes before insert on public.backtest_runs
  for each row execute function private.validate_backtest_minutes();

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
create trigger backtest_runs_guard_changes before update on public.backtest_runs
  for each row execute function private.guard_backtest_run_changes();

-- ---------------------------------------------------------------------------
-- get_user_trading_performance: the caller's own figures; admins and the service may
-- ask for any user. Security invoker, so RLS still decides which trades are visible.
create or replace function public.get_user_trading_performance(days_back integer default 30, user_uuid uuid default null)
returns table (
  user_id uuid,
  total_trades bigint,
  winning_trades bigint,
  losing_trades bigint,
  win_rate numeric,
  total_profit numeric,
  avg_profit numeric,
  best_trade numeric,
  worst_trade numeric,
  total_volume numeric,
  total_bots bigint,
  active_bots bigint
)
language plpgsql stable
set search_path = ''
as $$
declare
  v_user uuid := coalesce(user_uuid, auth.uid());
begin
  if v_user is null then
    raise exception 'get_user_trading_performance needs a signed-in user or user_uuid'
      using errcode = 'invalid_parameter_value';
  end if;
  if days_back is null or days_back < 1 or days_back > 3650 then
    raise exception 'days_back must be between 1 and 3650, got %', days_back using errcode = 'invalid_parameter_value';
  end if;
  if v_user is distinct from auth.uid() and not private.is_admin() and not private.is_service() then
    raise exception 'not allowed to read another user''s performance' using errcode = 'insufficient_privilege';
  end if;
  return query
  with t as (
    select tr.profit, tr.amount * tr.price as volume
      from public.trades tr
     where tr.user_id = v_user and tr.status = 'closed'
       and tr.entry_time >= now() - make_interval(days => days_back)
  ), b as (
    select count(*) as total_bots, count(*) filter (where bo.status = 'running') as active_bots
      from public.bots bo where bo.user_id = v_user
  )
  select v_user,
         count(t.*),
         count(*) filter (where t.profit > 0),
         count(*) filter (where t.profit < 0),
         case when count(t.*) > 0 then round(count(*) filter (where t.profit > 0)::numeric / count(t.*) * 100, 2) else 0 end,
         coalesce(sum(t.profit), 0),
         coalesce(round(avg(t.profit), 8), 0),
         coalesce(max(t.profit), 0),
         coalesce(min(t.profit), 0),
         coalesce(sum(t.volume), 0),
         (select b.total_bots from b),
         (select b.active_bots from b)
    from t;
end;
$$;
revoke all on function public.get_user_trading_performance(integer, uuid) from public, anon;
grant execute on function public.get_user_trading_performance(integer, uuid) to authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Grants: apps write only the columns they own; everything else belongs to the fleet.
-- Apps may choose ids themselves, so a retried create is idempotent.
revoke all on public.exchange_credentials, public.strategies, public.bots, public.orders, public.trades,
  public.bot_logs, public.candles, public.backtest_runs, public.backtest_results, public.ai_analyses
  from anon, authenticated;
grant all on public.exchange_credentials, public.strategies, public.bots, public.orders, public.trades,
  public.bot_logs, public.candles, public.backtest_runs, public.backtest_results, public.ai_analyses
  to service_role;

grant select (id, user_id, exchange, label, key_id, api_key_hint, is_testnet, last_used_at, created_at, updated_at)
  on public.exchange_credentials to authenticated;
grant update (label) on public.exchange_credentials to authenticated;
grant delete on public.exchange_credentials to authenticated;

grant select (id, user_id, name, description, strategy_type, engine, performance, is_public, is_verified,
              backtest_count, avg_backtest_return, tags, category, risk_level, monthly_price, provider_share,
              created_at, updated_at)
  on public.strategies to anon;
grant select on public.strategies to authenticated;
grant insert (id, user_id, name, description, strategy_type, engine, content, parameters, is_public, tags, category,
              risk_level, monthly_price)
  on public.strategies to authenticated;
grant update (name, description, strategy_type, engine, content, parameters, is_public, tags, category, risk_level,
              monthly_price)
  on public.strategies to authenticated;
grant delete on public.strategies to authenticated;

grant select on public.bots to authenticated;
grant insert (id, user_id, strategy_id, exchange_credential_id, name, exchange, trading_pair, timeframe, strategy,
              parameters, status, initial_balance, max_open_trades, stake_amount, stop_loss, take_profit,
              risk_percentage, daily_loss_limit, leverage, allow_short, is_paper_trade, metadata)
  on public.bots to authenticated;
grant update (strategy_id, exchange_credential_id, name, exchange, trading_pair, timeframe, strategy, parameters,
              status, max_open_trades, stake_amount, stop_loss, take_profit, risk_percentage, daily_loss_limit,
              leverage, allow_short, is_paper_trade, metadata)
  on public.bots to authenticated;
grant delete on public.bots to authenticated;

grant select on public.orders, public.trades, public.bot_logs, public.candles, public.backtest_results,
  public.ai_analyses, public.backtest_runs to authenticated;
grant insert (id, user_id, strategy_id, strategy, parameters, exchange, trading_pair, timeframe, start_date, end_date, settings)
  on public.backtest_runs to authenticated;
grant update (status) on public.backtest_runs to authenticated;
grant delete on public.backtest_runs to authenticated;

-- ---------------------------------------------------------------------------
alter table public.exchange_credentials enable row level security;
alter table public.strategies enable row level security;
alter table public.bots enable row level security;
alter table public.orders enable row level security;
alter table public.trades enable row level security;
alter table public.bot_logs enable row level security;
alter table public.candles enable row level security;
alter table public.backtest_runs enable row level security;
alter table public.backtest_results enable row level security;
alter table public.ai_analyses enable row level security;

create policy "Users can read their own exchange credentials" on public.exchange_credentials
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Users can rename their own exchange credentials" on public.exchange_credentials
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy "Users can delete their own exchange credentials" on public.exchange_credentials
  for delete to authenticated using (user_id = (select auth.uid()));

create policy "Users can read their own strategies" on public.strategies
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Anyone can read verified marketplace strategies" on public.strategies
  for select to anon, authenticated using (is_public and strategy_type = 'marketplace' and is_verified);
create policy "Admins can read every strategy" on public.strategies
  for select to tradefleet_admin using (true);
create policy "Users can create their own strategies" on public.strategies
  for insert to authenticated with check (
    user_id = (select auth.uid())
    and strategy_type <> 'builtin'
    and (strategy_type <> 'marketplace' or (select private.app_role()) in ('provider', 'admin'))
  );
create policy "Users can update their own strategies" on public.strategies
  for update to authenticated using (user_id = (select auth.uid())) with check (
    user_id = (select auth.uid())
    and strategy_type <> 'builtin'
    and (strategy_type <> 'marketplace' or (select private.app_role()) in ('provider', 'admin'))
  );
create policy "Users can delete their own strategies" on public.strategies
  for delete to authenticated using (user_id = (select auth.uid()));

create policy "Users can read their own bots" on public.bots
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every bot" on public.bots
  for select to tradefleet_admin using (true);
-- A bot may only use a strategy and a key the user can see (their own, or the marketplace's).
create policy "Users can create their own bots" on public.bots
  for insert to authenticated with check (
    user_id = (select auth.uid())
    and (strategy_id is null or exists (select 1 from public.strategies s where s.id = strategy_id))
    and (exchange_credential_id is null
         or exists (select 1 from public.exchange_credentials c where c.id = exchange_credential_id and c.user_id = (select auth.uid())))
  );
create policy "Users can update their own bots" on public.bots
  for update to authenticated using (user_id = (select auth.uid())) with check (
    user_id = (select auth.uid())
    and (strategy_id is null or exists (select 1 from public.strategies s where s.id = strategy_id))
    and (exchange_credential_id is null
         or exists (select 1 from public.exchange_credentials c where c.id = exchange_credential_id and c.user_id = (select auth.uid())))
  );
create policy "Users can delete their own bots" on public.bots
  for delete to authenticated using (user_id = (select auth.uid()));

create policy "Users can read their own orders" on public.orders
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every order" on public.orders
  for select to tradefleet_admin using (true);
create policy "Users can read their own trades" on public.trades
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every trade" on public.trades
  for select to tradefleet_admin using (true);
create policy "Users can read their own bot logs" on public.bot_logs
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every bot log" on public.bot_logs
  for select to tradefleet_admin using (true);

create policy "Signed-in users can read market candles" on public.candles
  for select to authenticated using (true);

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

create policy "Users can read their own AI analyses" on public.ai_analyses
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every AI analysis" on public.ai_analyses
  for select to tradefleet_admin using (true);
