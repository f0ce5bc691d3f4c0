-- Demo data: plans and credit packs, three users on different plans (a provider and an admin among them),
-- strategies of every type, bots with closed trades, backtest results and an invoice.

insert into public.plans (name, description, price_monthly, price_yearly, max_bots, max_strategies,
                          ai_requests_per_month, backtest_minutes_per_month, priority_support,
                          custom_strategies, api_access, live_trading, features, sort_order)
values
  ('Free', 'Paper trading to get started', 0, 0, 2, 3, 10, 30, false, false, false, false,
   '{"credits_per_trade": 1, "credits_per_backtest_second": 0.1, "credits_per_ai_request": 5, "credits_per_1k_ai_tokens": 1, "ai_requests_per_minute": 3, "monthly_credits": 100, "max_optimization_sets": 500, "data_requests_per_month": 5}', 0),
  ('Pro', 'Live trading, custom strategies and more bots', 29, 290, 10, 25, 200, 600, false, true, true, true,
   '{"credits_per_trade": 0.5, "credits_per_backtest_second": 0.05, "credits_per_ai_request": 2, "credits_per_1k_ai_tokens": 0.5, "ai_requests_per_minute": 10, "monthly_credits": 2000, "max_optimization_sets": 5000, "data_requests_per_month": 100}', 1),
  ('Enterprise', 'Many bots, API access and priority support', 199, 1990, 100, 250, 5000, 6000, true, true, true, true,
   '{"credits_per_trade": 0.2, "credits_per_backtest_second": 0.02, "credits_per_ai_request": 1, "credits_per_1k_ai_tokens": 0.2, "ai_requests_per_minute": 30, "monthly_credits": 20000, "max_optimization_sets": 50000, "data_requests_per_month": 1000}', 2)
on conflict (name) do update set
  description = excluded.description, price_monthly = excluded.price_monthly, price_yearly = excluded.price_yearly,
  max_bots = excluded.max_bots, max_strategies = excluded.max_strategies,
  ai_requests_per_month = excluded.ai_requests_per_month, backtest_minutes_per_month = excluded.backtest_minutes_per_month,
  priority_support = excluded.priority_support, custom_strategies = excluded.custom_strategies,
  api_access = excluded.api_access, live_trading = excluded.live_trading, features = excluded.features,
  sort_order = excluded.sort_order;

-- Pro can be tried for 14 days; credits are also sold in packs.
update public.plans set trial_days = 14 where name = 'Pro';
insert into public.credit_packs (name, credits, price, currency, sort_order)
values ('1,000 credits', 1000, 10, 'USD', 0), ('5,000 credits', 5000, 45, 'USD', 1)
on conflict (name) do update set credits = excluded.credits, price = excluded.price, currency = excluded.currency,
  sort_order = excluded.sort_order;

insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values
  ('a11ce000-0000-4000-8000-000000000001', 'authenticated', 'authenticated', 'alice@example.com', now(),
   '{"provider": "email", "role": "provider"}', '{"full_name": "Alice Provider"}', now() - interval '60 days', now()),
  ('b0b00000-0000-4000-8000-000000000002', 'authenticated', 'authenticated', 'bob@example.com', now(),
   '{"provider": "email", "role": "user"}', '{"full_name": "Bob Trader"}', now() - interval '30 days', now()),
  ('ca201000-0000-4000-8000-000000000003', 'authenticated', 'authenticated', 'carol@example.com', now(),
   '{"provider": "email", "role": "admin"}', '{"full_name": "Carol Admin"}', now() - interval '90 days', now());

-- Alice is on Pro (paid by invoice), Carol on Enterprise, Bob stays on Free.
insert into public.invoices (id, user_id, plan_id, provider, provider_invoice_id, reference_id, amount, currency,
                             status, payment_method, payment_channel, description, customer_name, customer_email, paid_at)
select '1e7a0000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', p.id, 'stripe',
       'in_demo_alice_pro', 'TF-2026-0001', 29.00, 'USD', 'paid', 'card', 'visa', 'Pro plan, monthly',
       'Alice Provider', 'alice@example.com', now() - interval '3 days'
  from public.plans p where p.name = 'Pro';

update public.subscriptions s
   set plan_id = p.id, invoice_id = case when s.user_id = 'a11ce000-0000-4000-8000-000000000001'
                                         then '1e7a0000-0000-4000-8000-000000000001'::uuid end,
       started_at = now() - interval '3 days', expires_at = now() + interval '27 days', auto_renew = true
  from public.plans p
 where (s.user_id, p.name) in (('a11ce000-0000-4000-8000-000000000001'::uuid, 'Pro'),
                               ('ca201000-0000-4000-8000-000000000003'::uuid, 'Enterprise'));

insert into public.strategies (id, user_id, name, description, strategy_type, engine, parameters, content,
                               is_public, is_verified, tags, category, risk_level, monthly_price)
values
  ('57a70000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', 'Trend Rider',
   'SMA crossover tuned on BTC-quoted majors', 'marketplace', 'sma_cross', '{"fast": 10, "slow": 30}', null,
   true, true, '{trend,sma}', 'trend', 'medium', 19.00),
  ('57a70000-0000-4000-8000-000000000002', 'a11ce000-0000-4000-8000-000000000001', 'Mean Revert (draft)',
   'Bollinger mean reversion, not yet verified', 'marketplace', 'bollinger', '{"period": 20, "std": 2}', null,
   true, false, '{mean-reversion}', 'mean_reversion', 'high', 9.00),
  ('57a70000-0000-4000-8000-000000000003', 'b0b00000-0000-4000-8000-000000000002', 'My RSI',
   'Buy oversold, sell overbought', 'custom', 'rsi', '{"period": 14, "oversold": 30, "overbought": 70}', null,
   false, false, '{rsi}', 'oscillator', 'low', 0),
  ('57a70000-0000-4000-8000-000000000004', 'ca201000-0000-4000-8000-000000000003', 'AI momentum',
   'Generated from a prompt: RSI below 35 with MACD turning up', 'ai_generated', 'rules', '{}',
   '{"entry_long": {"all": [{"left": {"indicator": "rsi", "period": 14}, "op": "<", "right": 35}, {"left": {"indicator": "macd_hist"}, "op": "crosses_above", "right": 0}]}, "exit_long": {"any": [{"left": {"indicator": "rsi", "period": 14}, "op": ">", "right": 65}]}}',
   false, false, '{ai,rsi,macd}', 'momentum', 'medium', 0);

insert into public.bots (id, user_id, strategy_id, name, exchange, trading_pair, timeframe, strategy, parameters, status,
                         initial_balance, stake_amount, stop_loss, take_profit, max_open_trades, is_paper_trade)
values
  ('b0700000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', '57a70000-0000-4000-8000-000000000001',
   'ETH trend', 'binance', 'ETH/BTC', '5m', 'sma_cross', '{"fast": 10, "slow": 30}', 'running', 1.0, 0.1, 3, 6, 1, true),
  ('b0700000-0000-4000-8000-000000000002', 'a11ce000-0000-4000-8000-000000000001', '57a70000-0000-4000-8000-000000000002',
   'LTC bands', 'binance', 'LTC/BTC', '5m', 'bollinger', '{"period": 20, "std": 2}', 'paused', 0.5, 0.05, 2, 4, 2, true),
  ('b0700000-0000-4000-8000-000000000003', 'b0b00000-0000-4000-8000-000000000002', '57a70000-0000-4000-8000-000000000003',
   'XLM RSI', 'binance', 'XLM/BTC', '5m', 'rsi', '{"period": 14, "oversold": 30, "overbought": 70}', 'running', 0.2, 0.02, 5, null, 1, true),
  ('b0700000-0000-4000-8000-000000000004', 'ca201000-0000-4000-8000-000000000003', '57a70000-0000-4000-8000-000000000004',
   'ADA momentum', 'binance', 'ADA/BTC', '5m', 'rules', '{}', 'stopped', 2.0, 0.2, null, null, 3, true);

-- Closed trades with deterministic outcomes, so statistics and performance have substance.
insert into public.trades (bot_id, user_id, exchange, trading_pair, side, direction, order_type, amount, price,
                           exit_price, fee, profit, profit_percentage, status, exit_reason, entry_time, exit_time,
                           is_paper_trade)
select b.id, b.user_id, b.exchange, b.trading_pair, 'buy', 'long', 'market',
       round(b.stake_amount / px.entry, 4), px.entry, px.exit,
       round(b.stake_amount * 0.002, 8),
       round(round(b.stake_amount / px.entry, 4) * (px.exit - px.entry) - b.stake_amount * 0.002, 8),
       round((px.exit / px.entry - 1) * 100, 4),
       'closed', case when px.exit > px.entry then 'take_profit' else 'stop_loss' end,
       now() - make_interval(hours => 6 * g.i + 3), now() - make_interval(hours => 6 * g.i),
       true
  from public.bots b
 cross join generate_series(1, 24) as g(i)
 cross join lateral (
   select base as entry,
          round(base * (1 + (((g.i * 37 + length(b.name) * 11) % 17) - 7) / 400.0), 8) as exit
     from (select case b.trading_pair when 'ETH/BTC' then 0.0951 when 'LTC/BTC' then 0.0157
                                      when 'XLM/BTC' then 0.0000381 else 0.0000301 end as base) base_price
 ) px
 where b.id <> 'b0700000-0000-4000-8000-000000000004';

insert into public.trades (bot_id, user_id, exchange, trading_pair, side, direction, order_type, amount, price, fee,
                           status, entry_time, is_paper_trade, stop_loss_price, take_profit_price)
values ('b0700000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', 'binance', 'ETH/BTC',
        'buy', 'long', 'market', 1.0515, 0.0951, 0.0002, 'open', now() - interval '40 minutes', true, 0.092247, 0.100806);

insert into public.backtest_results (strategy_id, user_id, trading_pair, timeframe, start_date, end_date,
                                     initial_balance, final_balance, total_return, total_return_percentage, max_drawdown,
                                     sharpe_ratio, sortino_ratio, win_rate, profit_factor, total_trades, winning_trades,
                                     losing_trades, best_trade, worst_trade, avg_trade, max_consecutive_wins,
                                     max_consecutive_losses, calmar_ratio)
values
  ('57a70000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', 'ETH/BTC', '5m',
   '2018-01-10', '2018-01-30', 1, 1.0842, 0.0842, 8.42, 4.10, 1.92, 2.71, 54.5, 1.61, 44, 24, 20, 0.0121, -0.0074, 0.0019, 5, 3, 2.05),
  ('57a70000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', 'LTC/BTC', '5m',
   '2018-01-10', '2018-01-30', 1, 1.0417, 0.0417, 4.17, 5.32, 0.98, 1.37, 51.2, 1.24, 41, 21, 20, 0.0098, -0.0081, 0.0010, 4, 4, 0.78),
  ('57a70000-0000-4000-8000-000000000003', 'b0b00000-0000-4000-8000-000000000002', 'XLM/BTC', '5m',
   '2018-01-10', '2018-01-30', 0.2, 0.1961, -0.0039, -1.95, 6.80, -0.31, -0.40, 47.1, 0.91, 17, 8, 9, 0.0011, -0.0014, -0.0002, 3, 4, -0.29);

insert into public.bot_logs (user_id, bot_id, log_level, message, source)
select b.user_id, b.id, 'info', 'bot created from the demo seed', 'seed' from public.bots b;

-- Starting credits: a monthly grant per user, through the ledger's own accounts.
with g as (
  select a.id as account_id, (pl.features ->> 'monthly_credits')::numeric as amount, a.user_id
    from public.credit_accounts a
    join public.subscriptions s on s.user_id = a.user_id and s.status = 'active'
    join public.plans pl on pl.id = s.plan_id
   where a.kind = 'user'
)
insert into public.credit_transfers (id, debit_account_id, credit_account_id, amount, kind, reference_type, reference_id)
select gen_random_uuid(), (select id from public.credit_accounts where code = 'system:grants'), g.account_id, g.amount,
       'grant', 'seed', g.user_id::text
  from g;
update public.credit_accounts a
   set credits_posted = a.credits_posted + t.amount
  from (select credit_account_id, sum(amount) amount from public.credit_transfers group by 1) t
 where a.id = t.credit_account_id;
update public.credit_accounts a
   set debits_posted = a.debits_posted + t.amount
  from (select debit_account_id, sum(amount) amount from public.credit_transfers group by 1) t
 where a.id = t.debit_account_id;

-- Example AI analyses of the demo bots, as the offline analyst wrote them from these trades
-- (completed rows: no job is queued for them).
insert into public.ai_analyses (id, user_id, bot_id, analysis_type, input_data, status, summary, findings, suggestions, figures, results, recommendations, confidence_score, model_used, prompt_tokens, completion_tokens, tokens_used, processing_time_ms, credits_charged)
values
  ('a1a10000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', 'b0700000-0000-4000-8000-000000000001', 'performance', '{}', 'completed', 'ETH trend (ETH/BTC 5m, sma_cross): 24 closed trades, win rate 50.00%, return -0.13%, max drawdown 0.36%.', '[{"detail": "Profit factor 0.91: losses outweigh gains.", "figure": "profit_factor", "severity": "high", "title": "Losing more than it wins"}, {"detail": "24 closed trades are too few to tell skill from luck.", "figure": "closed_trades", "severity": "low", "title": "Few trades"}, {"detail": "Fees are 32% of the gross profit.", "figure": "fees", "severity": "medium", "title": "Fees eat the gains"}]', '[{"detail": "Fewer, larger moves keep more of each gain after fees.", "title": "Trade a slower timeframe"}]', '{"avg_stop_distance_pct": 3.0, "closed_trades": 24, "current_balance": 0.99869992, "exchange": "binance", "fees": 0.0048, "gross_profit": 0.01499964, "id": "b0700000-0000-4000-8000-000000000001", "initial_balance": 1.0, "is_paper_trade": true, "leverage": 1.0, "losing_trades": 12, "max_consecutive_losses": 3, "max_drawdown_pct": 0.3595, "max_open_trades": 1, "name": "ETH trend", "open_trades": 1, "pair_share_pct": 66.6667, "parameters": {"fast": 10, "slow": 30}, "profit": -0.00130008, "profit_factor": 0.9065, "return_pct": -0.13, "stake_amount": 0.1, "stake_pct_of_balance": 10.0, "status": "running", "stop_loss_pct": 3.0, "strategy": "sma_cross", "take_profit_pct": 6.0, "timeframe": "5m", "trading_pair": "ETH/BTC", "win_rate": 50.0, "winning_trades": 12}', '{"findings": [{"detail": "Profit factor 0.91: losses outweigh gains.", "figure": "profit_factor", "severity": "high", "title": "Losing more than it wins"}, {"detail": "24 closed trades are too few to tell skill from luck.", "figure": "closed_trades", "severity": "low", "title": "Few trades"}, {"detail": "Fees are 32% of the gross profit.", "figure": "fees", "severity": "medium", "title": "Fees eat the gains"}], "suggestions": [{"detail": "Fewer, larger moves keep more of each gain after fees.", "parameters": null, "target": null, "title": "Trade a slower timeframe"}], "summary": "ETH trend (ETH/BTC 5m, sma_cross): 24 closed trades, win rate 50.00%, return -0.13%, max drawdown 0.36%."}', array['Trade a slower timeframe']::text[], 1.00, 'offline-analyst', 343, 165, 508, 0, 0E-8),
  ('a1a10000-0000-4000-8000-000000000002', 'a11ce000-0000-4000-8000-000000000001', 'b0700000-0000-4000-8000-000000000002', 'risk', '{}', 'completed', 'Risk of LTC bands: overall info; leverage 1x, stop-loss 2.00%, stake 10.00% of balance, max drawdown 0.36%.', '[{"detail": "No rule of the risk review fired.", "figure": null, "severity": "info", "title": "No risk flags"}]', '[]', '{"avg_stop_distance_pct": null, "closed_trades": 24, "current_balance": 0.49935, "exchange": "binance", "fees": 0.0024, "gross_profit": 0.0075, "id": "b0700000-0000-4000-8000-000000000002", "initial_balance": 0.5, "is_paper_trade": true, "leverage": 1.0, "losing_trades": 12, "max_consecutive_losses": 3, "max_drawdown_pct": 0.3595, "max_open_trades": 2, "name": "LTC bands", "open_trades": 0, "pair_share_pct": 33.3333, "parameters": {"period": 20, "std": 2}, "profit": -0.00065, "profit_factor": 0.9065, "return_pct": -0.13, "stake_amount": 0.05, "stake_pct_of_balance": 10.0, "status": "paused", "stop_loss_pct": 2.0, "strategy": "bollinger", "take_profit_pct": 4.0, "timeframe": "5m", "trading_pair": "LTC/BTC", "win_rate": 50.0, "winning_trades": 12}', '{"findings": [{"detail": "No rule of the risk review fired.", "figure": null, "severity": "info", "title": "No risk flags"}], "suggestions": [], "summary": "Risk of LTC bands: overall info; leverage 1x, stop-loss 2.00%, stake 10.00% of balance, max drawdown 0.36%."}', '{}', 1.00, 'offline-analyst', 344, 64, 408, 0, 0E-8),
  ('a1a10000-0000-4000-8000-000000000003', 'b0b00000-0000-4000-8000-000000000002', 'b0700000-0000-4000-8000-000000000003', 'performance', '{}', 'completed', 'XLM RSI (XLM/BTC 5m, rsi): 24 closed trades, win rate 54.17%, return 0.27%, max drawdown 0.36%.', '[{"detail": "24 closed trades are too few to tell skill from luck.", "figure": "closed_trades", "severity": "low", "title": "Few trades"}]', '[]', '{"avg_stop_distance_pct": null, "closed_trades": 24, "current_balance": 0.20054131, "exchange": "binance", "fees": 0.00096, "gross_profit": 0.00335958, "id": "b0700000-0000-4000-8000-000000000003", "initial_balance": 0.2, "is_paper_trade": true, "leverage": 1.0, "losing_trades": 11, "max_consecutive_losses": 3, "max_drawdown_pct": 0.3611, "max_open_trades": 1, "name": "XLM RSI", "open_trades": 0, "pair_share_pct": 100.0, "parameters": {"overbought": 70, "oversold": 30, "period": 14}, "profit": 0.00054131, "profit_factor": 1.2355, "return_pct": 0.2707, "stake_amount": 0.02, "stake_pct_of_balance": 10.0, "status": "running", "stop_loss_pct": 5.0, "strategy": "rsi", "take_profit_pct": null, "timeframe": "5m", "trading_pair": "XLM/BTC", "win_rate": 54.17, "winning_trades": 13}', '{"findings": [{"detail": "24 closed trades are too few to tell skill from luck.", "figure": "closed_trades", "severity": "low", "title": "Few trades"}], "suggestions": [], "summary": "XLM RSI (XLM/BTC 5m, rsi): 24 closed trades, win rate 54.17%, return 0.27%, max drawdown 0.36%."}', '{}', 1.00, 'offline-analyst', 348, 68, 416, 0, 0E-8),
  ('a1a10000-0000-4000-8000-000000000004', 'b0b00000-0000-4000-8000-000000000002', 'b0700000-0000-4000-8000-000000000003', 'risk', '{}', 'completed', 'Risk of XLM RSI: overall medium; leverage 1x, stop-loss 5.00%, stake 10.00% of balance, max drawdown 0.36%.', '[{"detail": "100.00% of your bots'' capital trades XLM/BTC.", "figure": "pair_share_pct", "severity": "medium", "title": "Concentrated on one market"}]', '[]', '{"avg_stop_distance_pct": null, "closed_trades": 24, "current_balance": 0.20054131, "exchange": "binance", "fees": 0.00096, "gross_profit": 0.00335958, "id": "b0700000-0000-4000-8000-000000000003", "initial_balance": 0.2, "is_paper_trade": true, "leverage": 1.0, "losing_trades": 11, "max_consecutive_losses": 3, "max_drawdown_pct": 0.3611, "max_open_trades": 1, "name": "XLM RSI", "open_trades": 0, "pair_share_pct": 100.0, "parameters": {"overbought": 70, "oversold": 30, "period": 14}, "profit": 0.00054131, "profit_factor": 1.2355, "return_pct": 0.2707, "stake_amount": 0.02, "stake_pct_of_balance": 10.0, "status": "running", "stop_loss_pct": 5.0, "strategy": "rsi", "take_profit_pct": null, "timeframe": "5m", "trading_pair": "XLM/BTC", "win_rate": 54.17, "winning_trades": 13}', '{"findings": [{"detail": "100.00% of your bots'' capital trades XLM/BTC.", "figure": "pair_share_pct", "severity": "medium", "title": "Concentrated on one market"}], "suggestions": [], "summary": "Risk of XLM RSI: overall medium; leverage 1x, stop-loss 5.00%, stake 10.00% of balance, max drawdown 0.36%."}', '{}', 1.00, 'offline-analyst', 351, 74, 425, 0, 0E-8);
