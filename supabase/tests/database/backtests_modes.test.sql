-- Backtest modes: a batch names its markets, an optimisation's grid is held to the plan,
-- a finish stores several results, the summary and the report, which only the run's owner
-- reads; optimisations stay out of a marketplace strategy's public figures.
begin;
select plan(14);

select tests.create_user(1, 'ann@modes.test');
select tests.create_user(2, 'ben@modes.test');
select tests.create_user(3, 'pia@modes.test', 'provider');

-- Requests -----------------------------------------------------------------------------------------
select is(tests.try_as('ann@modes.test', format($$insert into public.backtest_runs (id, mode, strategy, trading_pairs, timeframe)
          values (%L, 'batch', 'rsi', '{ETH/BTC,LTC/BTC}', '5m')$$, tests.id('run', 1))), 'rows=1', 'a user requests a batch');
select tests.authenticate_as('ann@modes.test');
insert into public.backtest_runs (id, mode, strategy, trading_pairs, timeframe)
values (tests.id('run', 1), 'batch', 'rsi', '{ETH/BTC,LTC/BTC}', '5m');
insert into public.backtest_runs (id, mode, strategy, trading_pair, timeframe, optimization)
values (tests.id('run', 2), 'optimize', 'sma_cross', 'ETH/BTC', '5m', '{"ranges": {"fast": [5, 8]}}');
select tests.clear_authentication();
select is((select trading_pair from public.backtest_runs where id = tests.id('run', 1)), 'ETH/BTC',
          'a batch''s trading_pair is its first market');
select is(tests.try_as('ann@modes.test', $$insert into public.backtest_runs (mode, strategy, trading_pairs, timeframe)
          values ('batch', 'rsi', '{ETH/BTC,ETH/BTC}', '5m')$$), 'error=23514', 'a batch names each market once');
select is(tests.try_as('ann@modes.test', $$insert into public.backtest_runs (mode, strategy, trading_pair, timeframe)
          values ('batch', 'rsi', 'ETH/BTC', '5m')$$), 'error=23514', 'a batch needs its markets');
select is(tests.try_as('ann@modes.test', $$insert into public.backtest_runs (mode, strategy, trading_pair, timeframe)
          values ('sweep', 'rsi', 'ETH/BTC', '5m')$$), 'error=23514', 'an unknown mode is refused');

-- The plan's grid limit (Free: 500 sets) ----------------------------------------------------------------
select is(public.backtest_run_check_grid(tests.id('run', 2), 500), 500, 'a grid within the plan''s limit');
select throws_like(format('select public.backtest_run_check_grid(%L, 501)', tests.id('run', 2)),
                   'plan limit reached: the Free plan allows 500 parameter sets per optimisation (max_optimization_sets)%',
                   'a larger grid is the plan-limit error');
select is(tests.try_as('ann@modes.test', format('select * from public.backtest_run_check_grid(%L, 1)', tests.id('run', 2))), 'denied',
          'only the fleet checks grids');

-- A batch finishes with a result per market, its summary and its report -----------------------------
select public.backtest_run_start(tests.id('run', 1));
select isnt(public.backtest_run_finish(tests.id('run', 1), 'completed', 3, 0.3, jsonb_build_object(
              'results', (select jsonb_agg(jsonb_build_object(
                  'trading_pair', p, 'start_date', '2018-01-12', 'end_date', '2018-01-20', 'initial_balance', 1,
                  'final_balance', 1.1, 'total_return', 0.1, 'total_return_percentage', 10, 'max_drawdown', 2, 'win_rate', 50,
                  'total_trades', 2, 'winning_trades', 1, 'losing_trades', 1, 'best_trade', 0.2, 'worst_trade', -0.1,
                  'max_consecutive_wins', 1, 'max_consecutive_losses', 1, 'stats', '{}'::jsonb, 'trades', '[]'::jsonb,
                  'equity_curve', '[]'::jsonb, 'metadata', '{}'::jsonb))
                  from unnest(array['ETH/BTC', 'LTC/BTC']) p),
              'summary', '{"mean_return_percentage": 10}'::jsonb, 'report_html', '<!doctype html><p>batch</p>')), null,
            'a batch stores its results');
select results_eq(format($$select trading_pair, user_id from public.backtest_results where run_id = %L order by 1$$, tests.id('run', 1)),
                  format($$values ('ETH/BTC'::text, %L::uuid), ('LTC/BTC', %L::uuid)$$, tests.id('user', 1), tests.id('user', 1)),
                  'one result per market, the run owner''s');
select is((select summary ->> 'mean_return_percentage' from public.backtest_runs where id = tests.id('run', 1)), '10',
          'the summary is on the run');
select is(tests.try_as('ann@modes.test', format('select html from public.backtest_reports where run_id = %L', tests.id('run', 1))),
          'rows=1', 'the owner reads the report');
select is(tests.try_as('ben@modes.test', format('select html from public.backtest_reports where run_id = %L', tests.id('run', 1))),
          'rows=0', 'nobody else does');

-- Marketplace figures leave optimisations out -----------------------------------------------------------
insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, is_verified)
values (tests.id('strategy', 1), tests.id('user', 3), 'Edge', 'marketplace', 'rsi', true, true);
insert into public.backtest_runs (id, user_id, strategy_id, mode, strategy, trading_pair, timeframe, parameters)
values (tests.id('run', 11), tests.id('user', 3), tests.id('strategy', 1), 'backtest', 'rsi', 'BTC/USDT', '1h', '{}'),
       (tests.id('run', 12), tests.id('user', 3), tests.id('strategy', 1), 'optimize', 'rsi', 'BTC/USDT', '1h', '{}');
insert into public.backtest_results (user_id, strategy_id, run_id, trading_pair, timeframe, start_date, end_date, initial_balance,
                                     final_balance, total_return, total_return_percentage, max_drawdown, win_rate, total_trades,
                                     winning_trades, losing_trades, best_trade, worst_trade)
select tests.id('user', 3), tests.id('strategy', 1), tests.id('run', 10 + i::int), 'BTC/USDT', '1h', '2026-01-01', '2026-02-01',
       100, 100 + r, r, r, 1, 50, 2, 1, 1, 1, -1
  from unnest(array[10, 90]) with ordinality as t(r, i);
select results_eq(format('select backtest_count, avg_backtest_return from public.strategies where id = %L', tests.id('strategy', 1)),
                  'values (1, 10::numeric)', 'an optimisation''s best set does not count as the published parameters');

select * from finish();
rollback;
