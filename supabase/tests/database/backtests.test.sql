-- Backtests: a run requested through PostgREST becomes one job; the fleet starts it, reports
-- progress and finishes it with its result; apps may only cancel; the plan's monthly
-- compute minutes cap new runs; marketplace figures follow the results.
begin;
select plan(25);

select tests.create_user(1, 'ann@backtests.test');
select tests.create_user(2, 'ben@backtests.test');
select tests.create_user(3, 'pia@backtests.test', 'provider');

-- Request ------------------------------------------------------------------------------------------
select is(tests.try_as('ann@backtests.test', format($$insert into public.backtest_runs (id, strategy, trading_pair, timeframe)
          values (%L, 'rsi', 'BTC/USDT', '1h')$$, tests.id('run', 1))), 'rows=1', 'a user requests a backtest');
select tests.authenticate_as('ann@backtests.test');
insert into public.backtest_runs (id, strategy, trading_pair, timeframe) values (tests.id('run', 1), 'rsi', 'BTC/USDT', '1h');
insert into public.backtest_runs (id, strategy, trading_pair, timeframe) values (tests.id('run', 2), 'sma_cross', 'ETH/USDT', '4h');
select tests.clear_authentication();
select is((select (user_id, status)::text from public.backtest_runs where id = tests.id('run', 1)),
          (select (tests.id('user', 1), 'queued')::text), 'the run is the caller''s, queued');
select results_eq(format($$select kind, payload, max_attempts from public.jobs where idempotency_key = 'backtest.run:%s'$$, tests.id('run', 1)),
                  format($$values ('backtest.run'::text, '{"run_id": "%s"}'::jsonb, 3)$$, tests.id('run', 1)),
                  'each requested run becomes one backtest.run job');
select is(tests.try_as('ben@backtests.test', 'select * from public.backtest_runs'), 'rows=0', 'others do not see it');
select is(tests.try_as('ann@backtests.test', format($$update public.backtest_runs set status = 'completed' where id = %L$$,
          tests.id('run', 1))), 'error=23514', 'apps cannot complete a run');
select is(tests.try_as('ann@backtests.test', format($$update public.backtest_runs set status = 'cancelled' where id = %L$$,
          tests.id('run', 2))), 'rows=1', 'but may cancel theirs');
select is(tests.try_as('ben@backtests.test', format($$update public.backtest_runs set status = 'cancelled' where id = %L$$,
          tests.id('run', 1))), 'rows=0', 'nobody cancels another user''s run');
select is(tests.try_as('ann@backtests.test', format('select public.backtest_run_start(%L)', tests.id('run', 1))), 'denied',
          'only the fleet runs backtests');

-- The fleet reports back ---------------------------------------------------------------------------
select is((select status from public.backtest_run_start(tests.id('run', 1))), 'running', 'the fleet starts a queued run');
select ok((select started_at is not null from public.backtest_runs where id = tests.id('run', 1)), '... and stamps its start');
select is(public.backtest_run_progress(tests.id('run', 1), 0.5), 'running', 'progress is reported');
select is(public.backtest_run_progress(tests.id('run', 1), 0.2), 'running', 'a late, lower report');
select is((select progress from public.backtest_runs where id = tests.id('run', 1)), 0.5::numeric, '... never moves it backwards');
update public.backtest_runs set status = 'cancelled' where id = tests.id('run', 2);
select is((select count(*)::int from public.backtest_run_start(tests.id('run', 2))), 0, 'a cancelled run does not start');
select is(public.backtest_run_progress(tests.id('run', 2), 0.5), 'cancelled', 'a report tells the worker it was cancelled');
select throws_ok(format($$select public.backtest_run_finish(%L, 'done', 1, 0)$$, tests.id('run', 1)), '22023',
                 'a run finishes completed, failed or cancelled, not done', 'an unknown final status is refused');
select throws_ok(format($$select public.backtest_run_finish(%L, 'completed', 1, 0)$$, tests.id('run', 1)), '23502',
                 'a completed run needs its result', 'a completed run needs a result');
select isnt(public.backtest_run_finish(tests.id('run', 1), 'completed', 90, 9, jsonb_build_object(
              'start_date', '2026-01-01', 'end_date', '2026-02-01', 'initial_balance', 1000, 'final_balance', 1100,
              'total_return', 100, 'total_return_percentage', 10, 'max_drawdown', 3, 'win_rate', 60, 'total_trades', 5,
              'winning_trades', 3, 'losing_trades', 2, 'best_trade', 50, 'worst_trade', -20, 'max_consecutive_wins', 2,
              'max_consecutive_losses', 1, 'stats', '{}'::jsonb, 'trades', '[]'::jsonb, 'equity_curve', '[]'::jsonb,
              'metadata', '{}'::jsonb)), null,
            'a completed run stores its result');
select results_eq(format($$select r.status, r.progress, r.compute_seconds, b.user_id, b.trading_pair, b.total_return_percentage
                            from public.backtest_runs r join public.backtest_results b on b.run_id = r.id where r.id = %L$$, tests.id('run', 1)),
                  format($$values ('completed'::text, 1::numeric, 90::numeric, %L::uuid, 'BTC/USDT'::text, 10::numeric)$$, tests.id('user', 1)),
                  'the run is completed with its usage, the result is the run owner''s, for the run''s market');
select is(public.backtest_run_finish(tests.id('run', 2), 'failed', 5, 1, null, 'late'), null, 'a cancelled run finishing');
select results_eq(format($$select status, compute_seconds, error from public.backtest_runs where id = %L$$, tests.id('run', 2)),
                  $$values ('cancelled'::text, 5::numeric, null::text)$$, '... keeps its status and records its usage');

-- Marketplace figures ------------------------------------------------------------------------------
insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, is_verified)
values (tests.id('strategy', 1), tests.id('user', 3), 'Edge', 'marketplace', 'rsi', true, true);
insert into public.backtest_runs (id, user_id, strategy_id, strategy, trading_pair, timeframe, parameters)
select tests.id('run', 10 + i::int), case when i = 3 then tests.id('user', 2) else tests.id('user', 3) end,
       tests.id('strategy', 1), 'rsi', 'BTC/USDT', '1h', '{}'
  from generate_series(1, 3) i;
insert into public.backtest_results (user_id, strategy_id, run_id, trading_pair, timeframe, start_date, end_date, initial_balance,
                                     final_balance, total_return, total_return_percentage, max_drawdown, win_rate, total_trades,
                                     winning_trades, losing_trades, best_trade, worst_trade)
select case when i = 3 then tests.id('user', 2) else tests.id('user', 3) end, tests.id('strategy', 1), tests.id('run', 10 + i::int),
       'BTC/USDT', '1h', '2026-01-01', '2026-02-01', 100, 100 + r, r, r, 1, 50, 2, 1, 1, 1, -1
  from unnest(array[10, 20, 900]) with ordinality as t(r, i);
select results_eq(format('select backtest_count, avg_backtest_return from public.strategies where id = %L', tests.id('strategy', 1)),
                  'values (2, 15::numeric)', 'a strategy counts only its author''s backtests of its published parameters');

-- The plan's compute minutes (Free: 30 a month) ---------------------------------------------------------
update public.backtest_runs set compute_seconds = 1800 where id = tests.id('run', 1);
select is(tests.try_as('ann@backtests.test', $$insert into public.backtest_runs (strategy, trading_pair, timeframe)
          values ('rsi', 'BTC/USDT', '1h')$$), 'error=23514', 'a user who used the month''s minutes cannot start another run');
select throws_like($$insert into public.backtest_runs (user_id, strategy, trading_pair, timeframe)
                     values (tests.id('user', 1), 'rsi', 'BTC/USDT', '1h')$$,
                   '%the Free plan allows 30 backtest minutes a month%', '... and is told the plan''s limit');
select is(tests.try_as('ben@backtests.test', $$insert into public.backtest_runs (strategy, trading_pair, timeframe)
          values ('rsi', 'BTC/USDT', '1h')$$), 'rows=1', 'another user still can');

select * from finish();
rollback;
