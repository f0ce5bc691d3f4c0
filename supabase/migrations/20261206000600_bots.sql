-- Bots: sealed exchange credentials, strategies, bots, orders, trades, bot logs, the
-- shared market candles (fetched once per market by worker.bots.market_data and read by
-- backtests too) and AI analyses of bots and strategies; plan limits, bot statistics,
-- lease fencing of orders and trades, and what the bot runner needs from the database.
-- Owned by worker.bots.
--
-- - bots.last_candle_at: open time of the last candle whose decisions were persisted; a
--   worker that takes a bot over resumes from the candle after it (exactly-once decisions).
-- - A notification on every bots.status change wakes the runners at once (lease sync).
-- - public.bot_apply_steps: persists a batch of decisions (orders, trades, logs,
--   notifications, bot state) in one transaction. Steps whose lease epoch is no longer the
--   bot's are skipped and returned, never written (the fencing trigger stays the last word).
-- - public.bot_trade_prices: credits per trade of each user's current plan.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

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

create table public.strategies (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
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

create table public.bots (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
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
  last_candle_at timestamptz,
  constraint bots_live_needs_credentials check (is_paper_trade or exchange_credential_id is not null)
);

create index bots_user_id_idx on public.bots (user_id);
create index bots_strategy_id_idx on public.bots (strategy_id);
create index bots_exchange_credential_id_idx on public.bots (exchange_credential_id);
create index bots_status_idx on public.bots (status) where status = 'running';
create index bots_market_idx on public.bots (exchange, trading_pair, timeframe) where status = 'running';

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
-- A lease belongs to its bot (the fleet's bot_leases is created before the bots).
alter table public.bot_leases
  add constraint bot_leases_bot_id_fkey foreign key (bot_id) references public.bots (id) on delete cascade;
comment on column public.bots.last_candle_at is
  'Open time of the last candle whose decisions the fleet persisted (fleet-owned).';

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

-- Grants: apps write only the columns they own; everything else belongs to the fleet.
-- Apps may choose ids themselves, so a retried create is idempotent.
revoke all on public.exchange_credentials, public.strategies, public.bots, public.orders, public.trades, public.bot_logs, public.candles, public.ai_analyses from anon, authenticated;
grant all on public.exchange_credentials, public.strategies, public.bots, public.orders, public.trades, public.bot_logs, public.candles, public.ai_analyses to service_role;
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
grant select on public.orders, public.trades, public.bot_logs, public.candles, public.ai_analyses to authenticated;
alter table public.exchange_credentials enable row level security;
alter table public.strategies enable row level security;
alter table public.bots enable row level security;
alter table public.orders enable row level security;
alter table public.trades enable row level security;
alter table public.bot_logs enable row level security;
alter table public.candles enable row level security;
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
create policy "Users can read their own AI analyses" on public.ai_analyses
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every AI analysis" on public.ai_analyses
  for select to tradefleet_admin using (true);

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

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

-- Fencing: an order or trade written for a bot must carry the bot's current lease epoch.
-- A worker that lost its lease (paused, partitioned, killed and replaced) cannot write.
create or replace function private.check_lease_epoch() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_epoch bigint;
begin
  if new.lease_epoch is null then
    return new;
  end if;
  select l.epoch into v_epoch from public.bot_leases l where l.bot_id = new.bot_id;
  if v_epoch is distinct from new.lease_epoch then
    raise exception 'stale lease epoch % for bot % (current %)', new.lease_epoch, new.bot_id, v_epoch
      using errcode = 'serialization_failure', constraint = 'bot_leases_fencing';
  end if;
  return new;
end;
$$;

revoke all on function private.check_lease_epoch() from public, anon, authenticated;

create or replace view public.bot_performance_summary
with (security_invoker = true) as
select b.id, b.user_id, b.strategy_id, b.exchange_credential_id, b.name, b.exchange, b.trading_pair,
       b.timeframe, b.strategy, b.parameters, b.status, b.initial_balance, b.current_balance, b.total_trades,
       b.winning_trades, b.losing_trades, b.profit, b.profit_percentage, b.max_open_trades, b.stake_amount,
       b.stop_loss, b.take_profit, b.risk_percentage, b.daily_loss_limit, b.leverage, b.allow_short,
       b.is_paper_trade, b.last_trade_at, b.error_message, b.status_reason, b.metadata, b.created_at,
       b.updated_at,
       case when b.total_trades > 0
            then round(b.winning_trades::numeric / b.total_trades * 100, 2)
            else 0 end as win_rate_percentage,
       p.email as user_email,
       p.full_name as user_name
  from public.bots b
  join public.profiles p on p.id = b.user_id;

revoke all on public.bot_performance_summary from anon, authenticated;
grant select on public.bot_performance_summary to authenticated, service_role;

create or replace function private.notify_bot_status() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('tradefleet_bots', json_build_object('id', new.id, 'status', new.status)::text);
  return null;
end;
$$;

revoke all on function private.notify_bot_status() from public, anon, authenticated;

-- p_steps: [{bot_id, epoch, candle_at, status?, status_reason?, error_message?}]
-- p_orders: [{id, bot_id, user_id, client_order_id, exchange_order_id, exchange, symbol, side,
--             order_type, amount, price, stop_price, filled, average_price, fee, fee_currency,
--             status, reason, is_paper_trade, lease_epoch}]
-- p_trades: [{id, bot_id, user_id, exchange, trading_pair, side, direction, order_type, amount,
--             price, exit_price, fee, profit, profit_percentage, status, exit_reason, entry_time,
--             exit_time, entry_order_id, exit_order_id, is_paper_trade, stop_loss_price,
--             take_profit_price, lease_epoch, metadata}]
-- p_logs: [{bot_id, user_id, log_level, message, context}]
-- p_notes: [{user_id, kind, title, body, data}]
-- Returns the bot ids whose steps were skipped because their epoch is stale.
create or replace function public.bot_apply_steps(
  p_steps jsonb,
  p_orders jsonb default '[]',
  p_trades jsonb default '[]',
  p_logs jsonb default '[]',
  p_notes jsonb default '[]'
) returns table (stale_bot_id uuid)
language plpgsql
set search_path = ''
as $$
declare
  v_ok uuid[];
begin
  -- Lock the leases of the batch: a takeover (epoch + 1) waits until this commits.
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join jsonb_to_recordset(p_steps) as s(bot_id uuid, epoch bigint)
              on s.bot_id = l.bot_id and s.epoch = l.epoch
           order by l.bot_id
             for share of l) x;

  insert into public.orders as o (id, bot_id, user_id, client_order_id, exchange_order_id, exchange, symbol, side,
                                  order_type, amount, price, stop_price, filled, average_price, fee, fee_currency,
                                  status, reason, is_paper_trade, lease_epoch, signal_id)
  select r.id, r.bot_id, r.user_id, r.client_order_id, r.exchange_order_id, r.exchange, r.symbol, r.side,
         r.order_type, r.amount, r.price, r.stop_price, coalesce(r.filled, 0), r.average_price, coalesce(r.fee, 0),
         r.fee_currency, r.status, r.reason, coalesce(r.is_paper_trade, true), r.lease_epoch, r.signal_id
    from jsonb_to_recordset(p_orders) as r(id uuid, bot_id uuid, user_id uuid, client_order_id text,
         exchange_order_id text, exchange text, symbol text, side text, order_type text, amount numeric,
         price numeric, stop_price numeric, filled numeric, average_price numeric, fee numeric, fee_currency text,
         status text, reason text, is_paper_trade boolean, lease_epoch bigint, signal_id uuid)
   where r.bot_id = any (v_ok)
  on conflict (client_order_id) do update
     set exchange_order_id = coalesce(excluded.exchange_order_id, o.exchange_order_id),
         filled = excluded.filled,
         average_price = coalesce(excluded.average_price, o.average_price),
         fee = excluded.fee,
         fee_currency = coalesce(excluded.fee_currency, o.fee_currency),
         status = excluded.status,
         lease_epoch = excluded.lease_epoch;

  insert into public.trades as t (id, bot_id, user_id, exchange, trading_pair, side, direction, order_type, amount,
                                  price, exit_price, fee, profit, profit_percentage, status, exit_reason, entry_time,
                                  exit_time, entry_order_id, exit_order_id, is_paper_trade, stop_loss_price,
                                  take_profit_price, lease_epoch, metadata, signal_id)
  select r.id, r.bot_id, r.user_id, r.exchange, r.trading_pair, r.side, r.direction, r.order_type, r.amount,
         r.price, r.exit_price, r.fee, coalesce(r.profit, 0), coalesce(r.profit_percentage, 0), r.status,
         r.exit_reason, r.entry_time, r.exit_time, r.entry_order_id, r.exit_order_id,
         coalesce(r.is_paper_trade, true), r.stop_loss_price, r.take_profit_price, r.lease_epoch,
         coalesce(r.metadata, '{}'), r.signal_id
    from jsonb_to_recordset(p_trades) as r(id uuid, bot_id uuid, user_id uuid, exchange text, trading_pair text,
         side text, direction text, order_type text, amount numeric, price numeric, exit_price numeric, fee numeric,
         profit numeric, profit_percentage numeric, status text, exit_reason text, entry_time timestamptz,
         exit_time timestamptz, entry_order_id uuid, exit_order_id uuid, is_paper_trade boolean,
         stop_loss_price numeric, take_profit_price numeric, lease_epoch bigint, metadata jsonb, signal_id uuid)
   where r.bot_id = any (v_ok)
  on conflict (id) do update
     set exit_price = excluded.exit_price,
         fee = excluded.fee,
         profit = excluded.profit,
         profit_percentage = excluded.profit_percentage,
         status = excluded.status,
         exit_reason = excluded.exit_reason,
         exit_time = excluded.exit_time,
         exit_order_id = excluded.exit_order_id,
         lease_epoch = excluded.lease_epoch,
         metadata = t.metadata || excluded.metadata;

  insert into public.bot_logs (bot_id, user_id, log_level, message, context, source)
  select r.bot_id, r.user_id, r.log_level, r.message, coalesce(r.context, '{}'), 'bot'
    from jsonb_to_recordset(p_logs) as r(bot_id uuid, user_id uuid, log_level text, message text, context jsonb)
   where r.bot_id = any (v_ok);

  insert into public.notifications (user_id, kind, title, body, data)
  select r.user_id, r.kind, r.title, r.body, coalesce(r.data, '{}')
    from jsonb_to_recordset(p_notes) as r(user_id uuid, bot_id uuid, kind text, title text, body text, data jsonb)
   where r.bot_id = any (v_ok);

  update public.bots b
     set last_candle_at = greatest(b.last_candle_at, s.candle_at),
         status = coalesce(s.status, b.status),
         status_reason = case when s.status is not null then s.status_reason else b.status_reason end,
         error_message = case when s.status = 'error' then s.error_message else b.error_message end
    from jsonb_to_recordset(p_steps) as s(bot_id uuid, candle_at timestamptz, status text, status_reason text,
                                          error_message text)
   where b.id = s.bot_id and b.id = any (v_ok)
     and (s.status is not null or b.last_candle_at is distinct from greatest(b.last_candle_at, s.candle_at));

  return query
    select s.bot_id from jsonb_to_recordset(p_steps) as s(bot_id uuid) where not (s.bot_id = any (v_ok));
end;
$$;

revoke execute on function public.bot_apply_steps(jsonb, jsonb, jsonb, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.bot_apply_steps(jsonb, jsonb, jsonb, jsonb, jsonb) to service_role;

-- What the plan of each user allows a bot: credits per trade (plans.features.credits_per_trade),
-- the user's credit account, and whether live trading is included.
create or replace function public.bot_trade_prices(p_user_ids uuid[])
returns table (user_id uuid, credits_per_trade numeric, account_id uuid, live_trading boolean)
language sql
stable
security definer
set search_path = ''
as $$
  select u.id,
         coalesce((p.features ->> 'credits_per_trade')::numeric, 0),
         (select a.id from public.credit_accounts a where a.user_id = u.id and a.kind = 'user'),
         p.live_trading
    from unnest(p_user_ids) as u(id)
   cross join lateral private.current_plan(u.id) p
$$;

revoke execute on function public.bot_trade_prices(uuid[]) from public, anon, authenticated;
grant execute on function public.bot_trade_prices(uuid[]) to service_role;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger exchange_credentials_updated_at before update on public.exchange_credentials
  for each row execute function private.set_updated_at();
create trigger strategies_updated_at before update on public.strategies
  for each row execute function private.set_updated_at();
create trigger bots_updated_at before update on public.bots
  for each row execute function private.set_updated_at();
create trigger orders_updated_at before update on public.orders
  for each row execute function private.set_updated_at();
create trigger trades_updated_at before update on public.trades
  for each row execute function private.set_updated_at();
create trigger bots_validate_limits before insert on public.bots
  for each row execute function private.validate_bot_limits();
create trigger strategies_validate_limits before insert on public.strategies
  for each row execute function private.validate_bot_limits();
create trigger bots_guard_changes before insert or update on public.bots
  for each row execute function private.guard_bot_changes();
create trigger trades_update_bot_statistics_insert after insert on public.trades
  referencing new table as new_rows for each statement execute function public.update_bot_statistics();
create trigger trades_update_bot_statistics_update after update on public.trades
  referencing old table as old_rows new table as new_rows for each statement execute function public.update_bot_statistics();
create trigger trades_update_bot_statistics_delete after delete on public.trades
  referencing old table as old_rows for each statement execute function public.update_bot_statistics();
create trigger orders_check_lease_epoch before insert or update on public.orders
  for each row execute function private.check_lease_epoch();
create trigger trades_check_lease_epoch before insert or update on public.trades
  for each row execute function private.check_lease_epoch();
create trigger bots_notify_status_insert after insert on public.bots
  for each row execute function private.notify_bot_status();
create trigger bots_notify_status_update after update of status on public.bots
  for each row when (old.status is distinct from new.status) execute function private.notify_bot_status();

-- ======================================================================================
-- Realtime
-- ======================================================================================

alter publication supabase_realtime add table public.bots, public.orders, public.trades, public.bot_logs;
