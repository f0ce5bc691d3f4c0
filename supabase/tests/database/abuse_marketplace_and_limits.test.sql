-- Abuse: the marketplace and size rules, tried as an attacker would through PostgREST (the
-- authenticated role with the attacker's JWT claims). One test group per attack class:
-- paid content (3), the provider's own track record (7), quotas (8), other people's
-- public figures (9), verification surviving edits (12), signal floods (13), unbounded
-- sizes (15) and the small items (16).
begin;

-- Cast: 1301 pat (provider), 1302 alice (subscriber), 1303 bob (anyone signed in).
select tests.create_user(1301, 'pat@abuse-mkt.test', 'provider');
select tests.create_user(1302, 'alice@abuse-mkt.test');
select tests.create_user(1303, 'bob@abuse-mkt.test');
insert into public.plans (id, name, price_monthly, max_bots, max_strategies, backtest_minutes_per_month)
values (tests.id('abuse-mkt-plan', 1), 'Abuse market plan', 1, 10, 10, 30);
update public.subscriptions set plan_id = tests.id('abuse-mkt-plan', 1)
 where user_id in (tests.id('user', 1301), tests.id('user', 1302), tests.id('user', 1303));

insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, is_verified, content, parameters, monthly_price)
values (tests.id('abuse-mkt-strategy', 1), tests.id('user', 1301), 'paid rules', 'marketplace', 'rules', true, true,
        '{"secret": "rules"}', '{"fast": 5}', 19),
       (tests.id('abuse-mkt-strategy', 2), tests.id('user', 1301), 'verified rules', 'marketplace', 'rules', true, true,
        '{"rules": 1}', '{}', 5);
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
select tests.id('abuse-mkt-bot', n), tests.id('user', n), 'bot', 'binance', 'ETH/BTC', '5m', 'rules', 1, 0.1
  from generate_series(1302, 1303) n;
insert into public.strategy_subscriptions (id, strategy_id, subscriber_id, status, price, current_period_end)
values (tests.id('abuse-mkt-sub', 1), tests.id('abuse-mkt-strategy', 1), tests.id('user', 1302), 'active', 19,
        now() + interval '20 days');
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume)
values ('binance', 'ABX/USDT', '1m', date_trunc('minute', now()) - interval '1 minute', 100, 105, 95, 101, 1);

-- A signal's id, by the idempotency key it was published with.
create function pg_temp.signal_id(p_n integer) returns uuid language sql stable
as $$ select id from public.signals where idempotency_key = 'abuse-mkt-' || p_n $$;

select plan(33);

-- 3. Paid strategies are free -----------------------------------------------------------
select is(tests.try_as('bob@abuse-mkt.test', format($$select content from public.strategies where id = %L$$, tests.id('abuse-mkt-strategy', 1))),
          'denied', '3: a non-subscriber cannot select a paid strategy''s content');
select is(tests.try_as('bob@abuse-mkt.test', format($$select parameters from public.strategies where id = %L$$, tests.id('abuse-mkt-strategy', 1))),
          'denied', '3: ... nor its parameters');
select is(tests.try_as('bob@abuse-mkt.test', format($$select * from public.get_strategy_content(%L)$$, tests.id('abuse-mkt-strategy', 1))),
          'denied', '3: ... nor read them through get_strategy_content');
select is(tests.try_as('bob@abuse-mkt.test', format($$select name, monthly_price from public.strategies where is_public and user_id = %L$$,
                                                     tests.id('user', 1301))),
          'rows=2', '3: the marketplace listing stays readable');
select is(tests.try_as('alice@abuse-mkt.test', format($$select * from public.get_strategy_content(%L)$$, tests.id('abuse-mkt-strategy', 1))),
          'rows=1', '3: an active subscriber reads the rules');
select is(tests.try_as('pat@abuse-mkt.test', format($$select * from public.get_strategy_content(%L)$$, tests.id('abuse-mkt-strategy', 1))),
          'rows=1', '3: the author reads the rules');
select is(tests.try_as('bob@abuse-mkt.test', format($$update public.bots set strategy_id = %L where id = %L$$,
                                                     tests.id('abuse-mkt-strategy', 1), tests.id('abuse-mkt-bot', 1303))),
          'denied', '3: a non-subscriber cannot point a bot at a paid strategy');
-- alice subscribes, runs the strategy, then cancels: her bot is paused and stays paused.
select tests.authenticate_as('alice@abuse-mkt.test');
update public.bots set strategy_id = tests.id('abuse-mkt-strategy', 1), status = 'running' where id = tests.id('abuse-mkt-bot', 1302);
select public.cancel_strategy_subscription(tests.id('abuse-mkt-sub', 1));
select tests.clear_authentication();
select is((select status || ' ' || pause_cause from public.bots where id = tests.id('abuse-mkt-bot', 1302)),
          'paused subscription', '3: a lapsed subscription pauses the bot with its reason');
select is(tests.try_as('alice@abuse-mkt.test', format($$update public.bots set status = 'running' where id = %L$$, tests.id('abuse-mkt-bot', 1302))),
          'denied', '3: ... and the owner cannot restart it without subscribing');

-- 7. Providers write their own track record ---------------------------------------------
select tests.authenticate_as('pat@abuse-mkt.test');
insert into public.signals (idempotency_key, strategy_id, pair, side, entry_price)
select 'abuse-mkt-' || n, tests.id('abuse-mkt-strategy', 2), 'ABX/USDT', 'long', 100 from generate_series(1, 3) n;
select tests.clear_authentication();
-- signals 1 and 2 went live (the fleet announced their entry); 3 did not yet.
insert into private.signal_fanouts (signal_id, phase)
values (pg_temp.signal_id(1), 'open'), (pg_temp.signal_id(2), 'open');
select is(tests.try_as('pat@abuse-mkt.test', format($$update public.signals set action = 'close', exit_price = 10000 where id = %L$$, pg_temp.signal_id(1))),
          'error=23514', '7: a provider cannot close at a price the market never reached');
select is(tests.try_as('pat@abuse-mkt.test', format($$update public.signals set status = 'cancelled' where id = %L$$, pg_temp.signal_id(2))),
          'error=23514', '7: a live signal cannot be cancelled to hide a loss');
select is(tests.try_as('pat@abuse-mkt.test', format($$update public.signals set status = 'cancelled' where id = %L$$, pg_temp.signal_id(3))),
          'rows=1', '7: a signal not yet live can be cancelled');
select tests.authenticate_as('pat@abuse-mkt.test');
update public.signals set action = 'close' where id = pg_temp.signal_id(1);
update public.signals set action = 'close', exit_price = 97 where id = pg_temp.signal_id(2);
select tests.clear_authentication();
select is((select exit_price::numeric(10, 2) || ' ' || result_pct from public.signals where id = pg_temp.signal_id(1)),
          '101.00 1.0000', '7: without an exit price the signal closes at the market''s last close');
select is((select performance ->> 'signals_closed' || ' ' || (performance ->> 'win_rate') from public.strategies
            where id = tests.id('abuse-mkt-strategy', 2)),
          '2 50.00', '7: the public figures count the losing signal that went live');

-- 13. Signal floods -----------------------------------------------------------------------
select is(tests.try_as('pat@abuse-mkt.test', format($$insert into public.signals (strategy_id, pair, side, entry_price)
                                                      select %L, 'ABX/USDT', 'long', 100 from generate_series(1, 500)$$,
                                                     tests.id('abuse-mkt-strategy', 2))),
          'error=23514', '13: 500 signals in one statement are refused');
select is((select count(*)::int from public.signals where strategy_id = tests.id('abuse-mkt-strategy', 2)), 3,
          '13: ... and none of them was published');

-- 8. Quotas count only the past ---------------------------------------------------------
insert into public.backtest_runs (id, user_id, strategy, trading_pair, timeframe, status, compute_seconds)
values (tests.id('abuse-mkt-run', 1), tests.id('user', 1302), 'rsi', 'ETH/BTC', '5m', 'completed', 1794);
select is(tests.try_as('alice@abuse-mkt.test', $$insert into public.backtest_runs (strategy, trading_pair, timeframe)
                                                 select 'rsi', 'ETH/BTC', '5m' from generate_series(1, 2000)$$),
          'error=23514', '8: with 29.9 of 30 minutes used, 2,000 runs cannot be queued');
select is(tests.try_as('bob@abuse-mkt.test', $$insert into public.backtest_runs (strategy, trading_pair, timeframe)
                                               select 'rsi', 'ETH/BTC', '5m' from generate_series(1, 4)$$),
          'error=23514', '8: queued runs count toward the minutes and the concurrency limit');
select is(tests.try_as('bob@abuse-mkt.test', $$insert into public.backtest_runs (strategy, trading_pair, timeframe)
                                               select 'rsi', 'ETH/BTC', '5m' from generate_series(1, 3)$$),
          'rows=3', '8: ... while work within both is accepted');

-- 9. Anyone moves another provider's public figures --------------------------------------
insert into public.backtest_runs (id, user_id, strategy_id, strategy, parameters, trading_pair, timeframe, status)
values (tests.id('abuse-mkt-run', 2), tests.id('user', 1303), tests.id('abuse-mkt-strategy', 1), 'rules', '{"fast": 1}', 'ETH/BTC', '5m', 'completed'),
       (tests.id('abuse-mkt-run', 3), tests.id('user', 1301), tests.id('abuse-mkt-strategy', 1), 'rules', '{"fast": 5}', 'ETH/BTC', '5m', 'completed');
insert into public.backtest_results (id, run_id, strategy_id, user_id, trading_pair, timeframe, start_date, end_date,
                                     initial_balance, final_balance, total_return, total_return_percentage, max_drawdown,
                                     win_rate, total_trades, winning_trades, losing_trades, best_trade, worst_trade)
values (tests.id('abuse-mkt-result', 2), tests.id('abuse-mkt-run', 2), tests.id('abuse-mkt-strategy', 1), tests.id('user', 1303),
        'ETH/BTC', '5m', '2018-01-10', '2018-01-20', 1, 0.01, -0.99, -99, 99, 0, 2, 0, 2, -0.5, -0.5);
select is((select backtest_count || ' ' || avg_backtest_return from public.strategies where id = tests.id('abuse-mkt-strategy', 1)),
          '0 0.0000', '9: someone else''s run with their own parameters does not count');
insert into public.backtest_results (id, run_id, strategy_id, user_id, trading_pair, timeframe, start_date, end_date,
                                     initial_balance, final_balance, total_return, total_return_percentage, max_drawdown,
                                     win_rate, total_trades, winning_trades, losing_trades, best_trade, worst_trade)
values (tests.id('abuse-mkt-result', 3), tests.id('abuse-mkt-run', 3), tests.id('abuse-mkt-strategy', 1), tests.id('user', 1301),
        'ETH/BTC', '5m', '2018-01-10', '2018-01-20', 1, 1.1, 0.1, 10, 2, 50, 2, 1, 1, 0.2, -0.1);
select is((select backtest_count || ' ' || avg_backtest_return from public.strategies where id = tests.id('abuse-mkt-strategy', 1)),
          '1 10.0000', '9: the author''s run of the published parameters counts');

-- 12. Verification survives any edit --------------------------------------------------------
select tests.authenticate_as('pat@abuse-mkt.test');
update public.strategies set content = '{"rules": 2}' where id = tests.id('abuse-mkt-strategy', 2);
select tests.clear_authentication();
select is((select is_verified from public.strategies where id = tests.id('abuse-mkt-strategy', 2)), false,
          '12: editing a verified strategy''s rules clears its verification');
select is(tests.try_as('pat@abuse-mkt.test', format($$update public.strategies set name = 'renamed' where id = %L$$, tests.id('abuse-mkt-strategy', 1))),
          'rows=1', '12: a cosmetic edit is fine ...');
select is((select is_verified from public.strategies where id = tests.id('abuse-mkt-strategy', 1)), true,
          '12: ... and keeps the verification');

-- 15. Unbounded sizes ---------------------------------------------------------------------
select is(tests.try_as('pat@abuse-mkt.test', format($$update public.strategies set content = repeat('x', 5000000) where id = %L$$, tests.id('abuse-mkt-strategy', 1))),
          'error=23514', '15: 5 MB of strategy content is refused');
select is(tests.try_as('pat@abuse-mkt.test', format($$update public.strategies set description = repeat('x', 5000000) where id = %L$$, tests.id('abuse-mkt-strategy', 1))),
          'error=23514', '15: ... and of description');
select is(tests.try_as('bob@abuse-mkt.test', format($$update public.bots set metadata = jsonb_build_object('x', repeat('x', 5000000)) where id = %L$$, tests.id('abuse-mkt-bot', 1303))),
          'error=23514', '15: ... and of bot metadata');
select is(tests.try_as('bob@abuse-mkt.test', format($$update public.profiles set preferences = jsonb_build_object('x', repeat('x', 5000000)) where id = %L$$, tests.id('user', 1303))),
          'error=23514', '15: ... and of profile preferences');

-- 16. The small items --------------------------------------------------------------------
select is(tests.try_as('anon', 'select user_id from public.reviews'), 'denied', '16: anon cannot read reviewers'' user ids');
select is(tests.try_as('anon', 'select rating, comment from public.reviews'), 'rows=' || (select count(*) from public.reviews),
          '16: ... but reads the reviews');
select is(tests.try_as('bob@abuse-mkt.test', format($$update public.profiles set telegram_chat_id = 'hello; drop' where id = %L$$, tests.id('user', 1303))),
          'error=23514', '16: telegram_chat_id must be a chat id');
select is(tests.try_as('bob@abuse-mkt.test', format($$update public.profiles set telegram_chat_id = '-1001234567' where id = %L$$, tests.id('user', 1303))),
          'rows=1', '16: ... which it accepts');
select is(tests.try_as('bob@abuse-mkt.test', format($$update public.backtest_runs set status = 'cancelled' where id = %L$$, tests.id('abuse-mkt-run', 2))),
          'error=23514', '16: a completed backtest cannot be flipped to cancelled');

select * from finish();
rollback;
