-- The RLS matrix: for every table and view in public, what anon, two users, a provider,
-- an admin and the service role can select, insert, update and delete.
begin;

-- Cast: 1 alice (user), 2 bob (user), 3 pat (provider), 4 dana (admin).
select tests.create_user(1, 'alice@rls.test');
select tests.create_user(2, 'bob@rls.test');
select tests.create_user(3, 'pat@rls.test', 'provider');
select tests.create_user(4, 'dana@rls.test', 'admin');

-- One row of everything per user; the provider also has a verified marketplace strategy
-- with a signal, which alice subscribes to and reviews.
insert into public.plans (name, price_monthly, max_bots, max_strategies, backtest_minutes_per_month)
values ('Matrix', 1, 10, 10, 100);
update public.subscriptions set plan_id = (select id from public.plans where name = 'Matrix');

insert into public.invoices (id, user_id, amount) select tests.id('invoice', n), tests.id('user', n), 10 from generate_series(1, 4) n;
insert into public.exchange_credentials (id, user_id, exchange, sealed_secret, key_id)
select tests.id('cred', n), tests.id('user', n), 'binance', 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1' from generate_series(1, 4) n;
insert into public.strategies (id, user_id, name, strategy_type, engine, parameters)
select tests.id('strategy', n), tests.id('user', n), 'private ' || n, 'custom', 'sma_cross', '{"fast": 5, "slow": 20}'
  from generate_series(1, 4) n;
insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, is_verified, content)
values (tests.id('market', 3), tests.id('user', 3), 'public', 'marketplace', 'rules', true, true, '{"secret": "rules"}');
insert into public.bots (id, user_id, strategy_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
select tests.id('bot', n), tests.id('user', n), tests.id('strategy', n), 'bot ' || n, 'binance', 'ETH/BTC', '5m', 'sma_cross', 1, 0.1
  from generate_series(1, 4) n;
insert into public.bot_leases (bot_id, epoch, expires_at) select tests.id('bot', n), 1, now() + interval '1 minute' from generate_series(1, 4) n;
insert into public.orders (id, bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, lease_epoch)
select tests.id('order', n), tests.id('bot', n), tests.id('user', n), 'tf-' || n, 'binance', 'ETH/BTC', 'buy', 'market', 1, 1
  from generate_series(1, 4) n;
insert into public.trades (id, bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time)
select tests.id('trade', n), tests.id('bot', n), tests.id('user', n), 'binance', 'ETH/BTC', 'buy', 1, 0.1, now()
  from generate_series(1, 4) n;
insert into public.bot_logs (user_id, bot_id, log_level, message)
select tests.id('user', n), tests.id('bot', n), 'info', 'hello' from generate_series(1, 4) n;
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume)
values ('binance', 'ETH/BTC', '5m', '2018-01-10 05:00+00', 0.1, 0.11, 0.09, 0.1, 5);
insert into public.backtest_runs (id, user_id, strategy, trading_pair, timeframe)
select tests.id('run', n), tests.id('user', n), 'sma_cross', 'ETH/BTC', '5m' from generate_series(1, 4) n;
insert into public.backtest_results (id, run_id, strategy_id, user_id, trading_pair, timeframe, start_date, end_date,
                                     initial_balance, final_balance, total_return, total_return_percentage, max_drawdown,
                                     win_rate, total_trades, winning_trades, losing_trades, best_trade, worst_trade)
select tests.id('result', n), tests.id('run', n), tests.id('strategy', n), tests.id('user', n), 'ETH/BTC', '5m',
       '2018-01-10', '2018-01-20', 1, 1.1, 0.1, 10, 2, 50, 2, 1, 1, 0.2, -0.1
  from generate_series(1, 4) n;
insert into public.ai_analyses (id, user_id, analysis_type, input_data)
select tests.id('ai', n), tests.id('user', n), 'risk', '{}' from generate_series(1, 4) n;
insert into public.signals (id, strategy_id, provider_id, pair, side, entry_price)
values (tests.id('signal', 3), tests.id('market', 3), tests.id('user', 3), 'ETH/BTC', 'long', 0.1);
insert into public.strategy_subscriptions (id, strategy_id, subscriber_id, status)
values (tests.id('sub', 1), tests.id('market', 3), tests.id('user', 1), 'active');
insert into public.reviews (id, strategy_id, user_id, rating) values (tests.id('review', 1), tests.id('market', 3), tests.id('user', 1), 5);
insert into public.notifications (id, user_id, kind, title)
select tests.id('note', n), tests.id('user', n), 'system', 'hi' from generate_series(1, 4) n;
insert into public.brokerage_connections (id, user_id, provider, provider_connection_id, sealed_user_secret, status)
select tests.id('conn', n), tests.id('user', n), 'snaptrade', 'auth-' || n, 'v1:k1:bm9uY2U=:c2VjcmV0', 'active' from generate_series(1, 4) n;
insert into public.brokerage_accounts (id, connection_id, user_id, provider_account_id)
select tests.id('acct', n), tests.id('conn', n), tests.id('user', n), 'acct-' || n from generate_series(1, 4) n;
insert into public.brokerage_positions (id, account_id, user_id, symbol, units)
select tests.id('pos', n), tests.id('acct', n), tests.id('user', n), 'AAPL', 10 from generate_series(1, 4) n;
insert into public.aggregated_holdings (id, user_id, symbol, total_units)
select tests.id('hold', n), tests.id('user', n), 'AAPL', 10 from generate_series(1, 4) n;
insert into public.sync_runs (id, user_id, trigger, created_at)
select tests.id('sync', n), tests.id('user', n), 'nightly', now() - interval '1 hour' from generate_series(1, 4) n;
insert into public.credit_transfers (id, debit_account_id, credit_account_id, amount, kind)
select tests.id('transfer', n), (select id from public.credit_accounts where code = 'system:grants'),
       (select id from public.credit_accounts where user_id = tests.id('user', n)), 1, 'grant'
  from generate_series(1, 4) n;
insert into public.webhook_events (provider, event_id, event_type, payload) values ('stripe', 'evt_1', 'invoice.paid', '{}');
insert into public.workers (id, name, host, pid, version) values (tests.id('worker', 1), 'w1', 'h', 1, '0');
insert into public.jobs (kind) values ('fleet.noop');
insert into public.symbol_prices (symbol, price, source, as_of) values ('AAPL', 190, 'alpaca', now());
insert into public.signal_executions (signal_id, subscription_id, subscriber_id, phase, status)
values (tests.id('signal', 3), tests.id('sub', 1), tests.id('user', 1), 'open', 'skipped');

-- expected: anon | alice | bob | provider(pat) | admin(dana) | service_role
create temp table matrix (label text, statement text, expected text[]) on commit drop;
insert into matrix values
  -- identity & billing
  ('profiles: select', 'select * from profiles', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('profiles: update own name', $$update profiles set full_name = 'x' where id = tests.id('user', 1)$$, '{denied,rows=1,rows=0,rows=0,rows=0,rows=1}'),
  ('profiles: update role', $$update profiles set role = 'admin' where id = tests.id('user', 1)$$, '{denied,denied,denied,denied,denied,rows=1}'),
  -- A user with ledger history cannot vanish: transfers are kept.
  ('profiles: delete', $$delete from profiles where id = tests.id('user', 2)$$, '{denied,denied,denied,denied,denied,error=23503}'),
  ('plans: select', 'select * from plans', '{rows=2,rows=2,rows=2,rows=2,rows=2,rows=2}'),
  ('plans: insert', $$insert into plans (name, price_monthly, max_bots, max_strategies) values ('Evil', 0, 999, 999)$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('plans: update', $$update plans set max_bots = 999$$, '{denied,denied,denied,denied,denied,rows=2}'),
  ('invoices: select', 'select * from invoices', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('invoices: mark paid', $$update invoices set status = 'paid'$$, '{denied,denied,denied,denied,denied,rows=4}'),
  ('invoices: insert', $$insert into invoices (user_id, amount) values (tests.id('user', 1), 1)$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('subscriptions: select', 'select * from subscriptions', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('subscriptions: change plan', $$update subscriptions set plan_id = plan_id$$, '{denied,denied,denied,denied,denied,rows=4}'),
  ('subscriptions: own auto-renew', $$update subscriptions set auto_renew = false where user_id = tests.id('user', 1)$$, '{denied,rows=1,rows=0,rows=0,rows=0,rows=1}'),
  -- credits
  ('credit_accounts: select', 'select * from credit_accounts', '{denied,rows=1,rows=1,rows=1,rows=9,rows=9}'),
  ('credit_accounts: top up', $$update credit_accounts set credits_posted = 1e6$$, '{denied,denied,denied,denied,denied,rows=9}'),
  ('credit_transfers: select', 'select * from credit_transfers', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('credit_transfers: insert', $$insert into credit_transfers (id, debit_account_id, credit_account_id, amount, kind) values (gen_random_uuid(), (select id from credit_accounts where user_id = tests.id('user', 2)), (select id from credit_accounts where user_id = tests.id('user', 1)), 1, 'correction')$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('credit_transfers: delete', $$delete from credit_transfers$$, '{denied,denied,denied,denied,denied,error=23001}'),
  -- trading
  ('exchange_credentials: select public columns', 'select id, exchange, label, api_key_hint from exchange_credentials', '{denied,rows=1,rows=1,rows=1,rows=1,rows=4}'),
  ('exchange_credentials: select ciphertext', 'select sealed_secret from exchange_credentials', '{denied,denied,denied,denied,denied,rows=4}'),
  ('exchange_credentials: insert', $$insert into exchange_credentials (user_id, exchange, label, sealed_secret, key_id) values (tests.id('user', 1), 'bybit', 'x', 'x', 'k')$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('exchange_credentials: rename own', $$update exchange_credentials set label = 'main' where id = tests.id('cred', 1)$$, '{denied,rows=1,rows=0,rows=0,rows=0,rows=1}'),
  ('exchange_credentials: delete bob''s', $$delete from exchange_credentials where id = tests.id('cred', 2)$$, '{denied,rows=0,rows=1,rows=0,rows=0,rows=1}'),
  ('strategies: select public columns', 'select id, name, engine from strategies', '{rows=1,rows=2,rows=2,rows=2,rows=5,rows=5}'),
  ('strategies: select content', 'select content from strategies', '{denied,denied,denied,denied,rows=5,rows=5}'),
  ('strategies: insert own', $$insert into strategies (name, strategy_type, engine) values ('new', 'custom', 'rsi')$$, '{denied,rows=1,rows=1,rows=1,rows=1,error=23502}'),
  ('strategies: insert marketplace', $$insert into strategies (name, strategy_type, engine) values ('mkt', 'marketplace', 'rsi')$$, '{denied,denied,denied,rows=1,rows=1,error=23502}'),
  ('strategies: verify own', $$update strategies set is_verified = true where id = tests.id('strategy', 1)$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('strategies: update bob''s', $$update strategies set name = 'mine' where id = tests.id('strategy', 2)$$, '{denied,rows=0,rows=1,rows=0,rows=0,rows=1}'),
  ('strategies: delete the public one', $$delete from strategies where id = tests.id('market', 3)$$, '{denied,rows=0,rows=0,rows=1,rows=0,rows=1}'),
  ('bots: select', 'select * from bots', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('bots: insert own', $$insert into bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount) values ('n', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1)$$, '{denied,rows=1,rows=1,rows=1,rows=1,error=23502}'),
  ('bots: insert for bob', $$insert into bots (user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount) values (tests.id('user', 2), 'n', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1)$$, '{denied,denied,rows=1,denied,denied,rows=1}'),
  ('bots: use bob''s private strategy', $$update bots set strategy_id = tests.id('strategy', 2) where id = tests.id('bot', 1)$$, '{denied,denied,rows=0,rows=0,rows=0,rows=1}'),
  ('bots: start own', $$update bots set status = 'running' where id = tests.id('bot', 1)$$, '{denied,rows=1,rows=0,rows=0,rows=0,rows=1}'),
  ('bots: write statistics', $$update bots set profit = 1 where id = tests.id('bot', 1)$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('bots: delete bob''s', $$delete from bots where id = tests.id('bot', 2)$$, '{denied,rows=0,rows=1,rows=0,rows=0,rows=1}'),
  ('orders: select', 'select * from orders', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('orders: insert', $$insert into orders (bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, lease_epoch) values (tests.id('bot', 1), tests.id('user', 1), 'x', 'binance', 'ETH/BTC', 'buy', 'market', 1, 1)$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('orders: cancel', $$update orders set status = 'canceled'$$, '{denied,denied,denied,denied,denied,rows=4}'),
  ('trades: select', 'select * from trades', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('trades: fake profit', $$update trades set profit = 100$$, '{denied,denied,denied,denied,denied,rows=4}'),
  ('trades: delete', $$delete from trades$$, '{denied,denied,denied,denied,denied,rows=4}'),
  ('bot_logs: select', 'select * from bot_logs', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('bot_logs: insert', $$insert into bot_logs (user_id, log_level, message) values (tests.id('user', 1), 'info', 'x')$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('candles: select', 'select * from candles', '{denied,rows=1,rows=1,rows=1,rows=1,rows=1}'),
  ('candles: insert', $$insert into candles (exchange, symbol, timeframe, open_time, open, high, low, close) values ('binance', 'ETH/BTC', '5m', now(), 1, 1, 1, 1)$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('backtest_runs: select', 'select * from backtest_runs', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('backtest_runs: request own', $$insert into backtest_runs (strategy, trading_pair, timeframe) values ('sma_cross', 'ETH/BTC', '5m')$$, '{denied,rows=1,rows=1,rows=1,rows=1,error=23502}'),
  ('backtest_runs: cancel own', $$update backtest_runs set status = 'cancelled' where id = tests.id('run', 1)$$, '{denied,rows=1,rows=0,rows=0,rows=0,rows=1}'),
  ('backtest_runs: complete own', $$update backtest_runs set status = 'completed' where id = tests.id('run', 1)$$, '{denied,error=23514,rows=0,rows=0,rows=0,rows=1}'),
  ('backtest_runs: set own progress', $$update backtest_runs set progress = 1 where id = tests.id('run', 1)$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('backtest_results: select', 'select * from backtest_results', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('backtest_results: forge', $$update backtest_results set total_return_percentage = 999$$, '{denied,denied,denied,denied,denied,rows=4}'),
  ('ai_analyses: select', 'select * from ai_analyses', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('ai_analyses: insert', $$insert into ai_analyses (user_id, analysis_type, input_data) values (tests.id('user', 1), 'risk', '{}')$$, '{denied,denied,denied,denied,denied,rows=1}'),
  -- marketplace
  ('signals: select', 'select * from signals', '{denied,rows=1,rows=0,rows=1,rows=1,rows=1}'),
  ('signals: publish on own strategy', $$insert into signals (strategy_id, pair, side) values (tests.id('market', 3), 'ETH/BTC', 'long')$$, '{denied,denied,denied,rows=1,denied,error=23502}'),
  ('signals: publish on someone else''s', $$insert into signals (strategy_id, pair, side) values (tests.id('strategy', 1), 'ETH/BTC', 'long')$$, '{denied,denied,denied,denied,denied,error=23502}'),
  ('signals: close', $$update signals set status = 'closed', exit_price = 0.2$$, '{denied,rows=0,rows=0,error=23514,rows=0,rows=1}'),
  ('strategy_subscriptions: select', 'select * from strategy_subscriptions', '{denied,rows=1,rows=0,rows=1,rows=1,rows=1}'),
  ('strategy_subscriptions: self-activate', $$insert into strategy_subscriptions (strategy_id) values (tests.id('market', 3))$$, '{denied,denied,denied,denied,denied,error=23502}'),
  ('strategy_subscriptions: opt in to auto-execution', $$update strategy_subscriptions set auto_execute = true, bot_id = tests.id('bot', 1)$$, '{denied,rows=1,rows=0,rows=0,rows=0,rows=1}'),
  ('strategy_subscriptions: price', $$update strategy_subscriptions set price = 0$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('reviews: select', 'select * from reviews', '{denied,rows=1,rows=1,rows=1,rows=1,rows=1}'),
  ('reviews: bob reviews without subscribing', $$insert into reviews (strategy_id, rating) values (tests.id('market', 3), 1)$$, '{denied,error=23505,denied,denied,denied,error=23502}'),
  ('reviews: edit alice''s', $$update reviews set rating = 1 where id = tests.id('review', 1)$$, '{denied,rows=1,rows=0,rows=0,rows=0,rows=1}'),
  ('notifications: select', 'select * from notifications', '{denied,rows=1,rows=1,rows=1,rows=1,rows=4}'),
  ('notifications: mark alice''s read', $$update notifications set read_at = now() where id = tests.id('note', 1)$$, '{denied,rows=1,rows=0,rows=0,rows=0,rows=1}'),
  ('notifications: insert', $$insert into notifications (user_id, kind, title) values (tests.id('user', 2), 'system', 'phish')$$, '{denied,denied,denied,denied,denied,rows=1}'),
  -- brokerage
  ('brokerage_connections: select public columns', 'select id, status from brokerage_connections', '{denied,rows=1,rows=1,rows=1,rows=1,rows=4}'),
  ('brokerage_connections: select secret', 'select sealed_user_secret from brokerage_connections', '{denied,denied,denied,denied,denied,rows=4}'),
  ('brokerage_connections: insert', $$insert into brokerage_connections (user_id, provider) values (tests.id('user', 1), 'snaptrade')$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('brokerage_connections: unlink bob''s', $$delete from brokerage_connections where id = tests.id('conn', 2)$$, '{denied,rows=0,rows=1,rows=0,rows=0,rows=1}'),
  ('brokerage_accounts: select', 'select * from brokerage_accounts', '{denied,rows=1,rows=1,rows=1,rows=1,rows=4}'),
  ('brokerage_accounts: update', $$update brokerage_accounts set cash = 1e9$$, '{denied,denied,denied,denied,denied,rows=4}'),
  ('brokerage_positions: select', 'select * from brokerage_positions', '{denied,rows=1,rows=1,rows=1,rows=1,rows=4}'),
  ('brokerage_positions: insert', $$insert into brokerage_positions (account_id, user_id, symbol, units) values (tests.id('acct', 1), tests.id('user', 1), 'TSLA', 1)$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('aggregated_holdings: select', 'select * from aggregated_holdings', '{denied,rows=1,rows=1,rows=1,rows=1,rows=4}'),
  ('aggregated_holdings: update', $$update aggregated_holdings set total_units = 0$$, '{denied,denied,denied,denied,denied,rows=4}'),
  ('sync_runs: select', 'select * from sync_runs', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('sync_runs: request a refresh', $$insert into sync_runs default values$$, '{denied,rows=1,rows=1,rows=1,rows=1,error=23502}'),
  ('sync_runs: refresh for bob''s connection', $$insert into sync_runs (connection_id) values (tests.id('conn', 2))$$, '{denied,denied,rows=1,denied,denied,error=23502}'),
  ('sync_runs: mark completed', $$update sync_runs set status = 'completed'$$, '{denied,denied,denied,denied,denied,rows=4}'),
  -- platform
  ('webhook_events: select', 'select * from webhook_events', '{denied,rows=0,rows=0,rows=0,rows=1,rows=1}'),
  ('webhook_events: insert', $$insert into webhook_events (provider, event_id, event_type, payload) values ('stripe', 'evt_x', 'x', '{}')$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('jobs: select', $$select * from jobs where kind = 'fleet.noop'$$, '{denied,rows=0,rows=0,rows=0,rows=1,rows=1}'),
  ('jobs: insert', $$insert into jobs (kind) values ('fleet.noop')$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('workers: select', 'select * from workers', '{denied,rows=0,rows=0,rows=0,rows=1,rows=1}'),
  ('workers: update', $$update workers set status = 'dead'$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('bot_leases: select', 'select * from bot_leases', '{denied,rows=0,rows=0,rows=0,rows=4,rows=4}'),
  ('bot_leases: steal', $$update bot_leases set epoch = epoch + 1$$, '{denied,denied,denied,denied,denied,rows=4}'),
  -- views
  ('bot_performance_summary: select', 'select * from bot_performance_summary', '{denied,rows=1,rows=1,rows=1,rows=4,rows=4}'),
  ('strategy_marketplace: select', 'select * from strategy_marketplace', '{rows=1,rows=1,rows=1,rows=1,rows=1,rows=1}'),
  ('credit_balances: select', 'select * from credit_balances', '{denied,rows=1,rows=1,rows=1,rows=9,rows=9}'),
  ('credit_statement: select', 'select * from credit_statement', '{denied,rows=1,rows=1,rows=1,rows=8,rows=8}'),
  ('fleet_health: select', 'select * from fleet_health', '{denied,rows=0,rows=0,rows=0,rows=1,rows=1}'),
  ('job_queue_stats: select', $$select * from job_queue_stats where kind = 'fleet.noop'$$, '{denied,rows=0,rows=0,rows=0,rows=1,rows=1}'),
  ('portfolio_holdings: select', 'select * from portfolio_holdings', '{denied,rows=1,rows=1,rows=1,rows=1,rows=4}'),
  ('portfolio_value: select', 'select * from portfolio_value', '{denied,rows=1,rows=1,rows=1,rows=1,rows=4}'),
  ('symbol_prices: select', 'select * from symbol_prices', '{denied,rows=1,rows=1,rows=1,rows=1,rows=1}'),
  ('symbol_prices: insert', $$insert into symbol_prices (symbol, price, source, as_of) values ('ZZZ', 1, 'alpaca', now())$$, '{denied,denied,denied,denied,denied,rows=1}'),
  ('signal_executions: select', 'select * from signal_executions', '{denied,rows=1,rows=0,rows=0,rows=1,rows=1}'),
  ('signal_executions: insert', $$insert into signal_executions (signal_id, subscription_id, subscriber_id, phase, status) values (tests.id('signal', 3), tests.id('sub', 1), tests.id('user', 1), 'close', 'skipped')$$, '{denied,denied,denied,denied,denied,rows=1}');

select plan((select count(*)::int * 6 from matrix) + 2);

select is(tests.try_as(a.actor, m.statement), m.expected[a.i], m.label || ' as ' || a.actor)
  from matrix m
 cross join (values (1, 'anon'), (2, 'alice@rls.test'), (3, 'bob@rls.test'), (4, 'pat@rls.test'),
                    (5, 'dana@rls.test'), (6, 'service_role')) as a(i, actor);

-- Every table in public is in the matrix.
select is(
  (select array_agg(c.relname::text order by c.relname)
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p', 'v')
      and c.relname not in (select split_part(label, ':', 1) from matrix)),
  null,
  'every table and view in public is covered by the RLS matrix'
);
select is(
  (select array_agg(c.relname::text) from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity),
  null,
  'every table in public has RLS enabled'
);

select * from finish();
rollback;
