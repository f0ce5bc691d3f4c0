-- Foundation behaviour: sign-up, updated_at, bot statistics, plan limits, the aal2 rule,
-- the performance function and the marketplace view.
begin;
select plan(21);

select tests.create_user(1, 'ann@found.test');
select tests.create_user(2, 'ben@found.test');
select tests.create_user(3, 'pia@found.test', 'provider');

-- Sign-up
select is((select count(*)::int from public.profiles where id = tests.id('user', 1)), 1, 'sign-up creates a profile');
select is((select role from public.profiles where id = tests.id('user', 3)), 'provider', 'the profile role comes from app_metadata');
select is((select balance from public.credit_accounts where user_id = tests.id('user', 1) and kind = 'user'), 0::numeric,
          'sign-up creates an empty credit account');
select is((select p.name from public.subscriptions s join public.plans p on p.id = s.plan_id where s.user_id = tests.id('user', 1)),
          'Free', 'sign-up puts the user on the Free plan');

-- updated_at
update public.profiles set updated_at = now() - interval '1 day' where id = tests.id('user', 1);
update public.profiles set full_name = 'Ann' where id = tests.id('user', 1);
select ok((select updated_at > now() - interval '1 minute' from public.profiles where id = tests.id('user', 1)),
          'updated_at follows every update');

-- Plan limits (Free allows 2 bots and 3 strategies)
select tests.authenticate_as('ann@found.test');
insert into public.bots (id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
values (tests.id('bot', 1), 'one', 'binance', 'ETH/BTC', '5m', 'sma_cross', 1, 0.1),
       (tests.id('bot', 2), 'two', 'binance', 'LTC/BTC', '5m', 'rsi', 1, 0.1);
select throws_like(
  $$insert into public.bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
    values ('three', 'binance', 'XRP/BTC', '5m', 'rsi', 1, 0.1)$$,
  '%allows 2 bots (max_bots)%', 'a third bot on Free fails naming max_bots');
select is((select count(*)::int from public.bots), 2, 'the existing bots survive the refused insert');
select throws_ok(
  $$insert into public.bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
    values ('x', 'nasdaq', 'ETH/BTC', '5m', 'rsi', 1, 0.1)$$,
  '23514', null, 'an unknown exchange is refused');
select throws_ok(
  $$insert into public.bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
    values ('x', 'binance', 'ETH/BTC', '5m', 'rsi', 1, -1)$$,
  '23514', null, 'a negative stake is refused');
insert into public.strategies (name, strategy_type, engine) values ('a', 'custom', 'rsi'), ('b', 'custom', 'rsi'), ('c', 'custom', 'rsi');
select throws_like($$insert into public.strategies (name, strategy_type, engine) values ('d', 'custom', 'rsi')$$,
  '%allows 3 strategies (max_strategies)%', 'a fourth strategy on Free fails naming max_strategies');

-- aal2 for live trading
select tests.clear_authentication();
insert into public.exchange_credentials (id, user_id, exchange, sealed_secret, key_id)
values (tests.id('cred', 1), tests.id('user', 1), 'binance', 'v1:k:n:c', 'k');
select tests.authenticate_as('ann@found.test');
select throws_like(
  $$update public.bots set is_paper_trade = false, exchange_credential_id = tests.id('cred', 1) where id = tests.id('bot', 1)$$,
  '%aal2%', 'going live in an aal1 session is refused');
select tests.authenticate_as('ann@found.test', 'aal2');
select throws_ok($$update public.bots set is_paper_trade = false where id = tests.id('bot', 1)$$,
  '23514', null, 'a live bot needs an exchange key');
select lives_ok(
  $$update public.bots set is_paper_trade = false, exchange_credential_id = tests.id('cred', 1) where id = tests.id('bot', 1)$$,
  'going live in an aal2 session works');
select tests.authenticate_as('ann@found.test');
select throws_like($$update public.bots set status = 'error' where id = tests.id('bot', 2)$$,
  '%only the fleet%', 'apps cannot put a bot into error');

-- update_bot_statistics
select tests.clear_authentication();
insert into public.trades (bot_id, user_id, exchange, trading_pair, side, amount, price, exit_price, profit, status, entry_time, exit_time)
values (tests.id('bot', 2), tests.id('user', 1), 'binance', 'LTC/BTC', 'buy', 1, 0.01, 0.012, 0.002, 'closed', now() - interval '2 hours', now() - interval '1 hour'),
       (tests.id('bot', 2), tests.id('user', 1), 'binance', 'LTC/BTC', 'buy', 1, 0.01, 0.009, -0.001, 'closed', now() - interval '1 hour', now());
select results_eq(
  $$select total_trades, winning_trades, losing_trades, profit, current_balance from public.bots where id = tests.id('bot', 2)$$,
  $$values (2, 1, 1, 0.001::numeric, 1.001::numeric)$$,
  'closed trades update the bot''s counters, profit and balance');
update public.trades set profit = 0.003 where bot_id = tests.id('bot', 2) and profit < 0;
select results_eq($$select winning_trades, losing_trades, profit from public.bots where id = tests.id('bot', 2)$$,
  $$values (2, 0, 0.005::numeric)$$, 'a corrected trade corrects the statistics');

-- get_user_trading_performance
select tests.authenticate_as('ann@found.test');
select results_eq($$select total_trades, win_rate from public.get_user_trading_performance(30)$$,
  $$values (2::bigint, 100.00::numeric)$$, 'the performance function returns the caller''s figures');
select throws_ok(format('select * from public.get_user_trading_performance(30, %L)', tests.id('user', 2)),
  '42501', null, 'a user cannot read another user''s performance');

-- strategy_marketplace
select tests.clear_authentication();
insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, is_verified, content)
values (tests.id('s', 1), tests.id('user', 3), 'Verified', 'marketplace', 'rsi', true, true, 'secret rules'),
       (tests.id('s', 2), tests.id('user', 3), 'Unverified', 'marketplace', 'rsi', true, false, null),
       (tests.id('s', 3), tests.id('user', 3), 'Private', 'marketplace', 'rsi', false, true, null);
select tests.authenticate_as('anon');
select results_eq($$select name, author_name from public.strategy_marketplace$$,
  $$values ('Verified'::text, 'Pia'::text)$$, 'anon sees only verified public marketplace strategies, with the author name');
select throws_ok($$select content from public.strategies$$, '42501', null, 'anon cannot read a strategy''s rules');
select throws_ok($$select full_name from public.profiles$$, '42501', null, 'anon reads no profiles, even of authors');

select tests.clear_authentication();
select * from finish();
rollback;
