-- latest_trades: a user's trades newest first, a page at a time, only their own.
begin;
select plan(6);

select tests.create_user(2901, 'lena@latest.test');
select tests.create_user(2902, 'otto@latest.test');
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
values (tests.id('latestbot', 1), tests.id('user', 2901), 'lena', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1),
       (tests.id('latestbot', 2), tests.id('user', 2902), 'otto', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1);
-- 1,005 trades of lena's, one a minute back from now; one of otto's, newer than all of them.
insert into public.trades (bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time, metadata)
select tests.id('latestbot', 1), tests.id('user', 2901), 'binance', 'ETH/BTC', 'buy', 1, 0.1,
       now() - make_interval(mins => n), jsonb_build_object('n', n)
  from generate_series(1, 1005) n;
insert into public.trades (bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time, metadata)
values (tests.id('latestbot', 2), tests.id('user', 2902), 'binance', 'ETH/BTC', 'buy', 1, 0.1, now(), '{"n": 0}');

select tests.authenticate_as('lena@latest.test');
select results_eq($$select (metadata ->> 'n')::int from public.latest_trades(3)$$, array[1, 2, 3],
                  'the newest first, p_limit of them, none of another user''s');
select results_eq($$select (metadata ->> 'n')::int from public.latest_trades(2, now() - interval '10 minutes')$$,
                  array[11, 12], 'p_before pages back from an entry time');
select is((select count(*)::int from public.latest_trades()), 50, '50 by default');
select is((select count(*)::int from public.latest_trades(1000)), 1000, 'up to 1,000 a call');
select throws_ok($$select * from public.latest_trades(1001)$$, '22023', null, 'not more');
select tests.clear_authentication();

select tests.authenticate_as('anon');
select throws_ok($$select * from public.latest_trades()$$, '42501', null, 'anon may not call it');
select tests.clear_authentication();

select * from finish();
rollback;
