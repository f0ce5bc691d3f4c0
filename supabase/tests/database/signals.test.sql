-- Signals: the marketplace view, who may publish and read signals, the signal lifecycle and
-- performance, subscriptions through RPCs with the revenue share, reviews, TradingView
-- tokens and the functions only the fleet may call.
begin;
select plan(54);

-- Cast: 1 alice and 2 bob (users), 3 pat (provider), 4 dana (admin), 5 eve (another provider).
select tests.create_user(1, 'alice@mkt.test');
select tests.create_user(2, 'bob@mkt.test');
select tests.create_user(3, 'pat@mkt.test', 'provider');
select tests.create_user(4, 'dana@mkt.test', 'admin');
select tests.create_user(5, 'eve@mkt.test', 'provider');
select tests.create_user(6, 'pia@mkt.test', 'provider');

insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('market', 3), tests.id('user', 3), 'Pat Momentum', 'marketplace', true, true, 10),
       (tests.id('market', 5), tests.id('user', 5), 'Eve Swing', 'marketplace', true, true, 0);
select public.credit_grant(tests.id('grant', 1), tests.id('user', 1), 100);
create temporary table platform_before on commit drop as
select balance from public.credit_accounts where code = 'system:platform_revenue';

-- Publishing -------------------------------------------------------------------------------
select is(tests.try_as('pat@mkt.test', $$insert into public.signals (strategy_id, pair, side, entry_price)
          values ('$$ || tests.id('market', 3) || $$', 'BTC/USDT', 'long', 100)$$), 'rows=1',
          'a provider publishes a signal on their own strategy');
select is(tests.try_as('eve@mkt.test', $$insert into public.signals (strategy_id, pair, side, entry_price)
          values ('$$ || tests.id('market', 3) || $$', 'BTC/USDT', 'long', 100)$$), 'denied',
          'a provider cannot publish on another provider''s strategy');
select is(tests.try_as('alice@mkt.test', $$insert into public.signals (strategy_id, pair, side, entry_price)
          values ('$$ || tests.id('market', 3) || $$', 'BTC/USDT', 'long', 100)$$), 'denied',
          'a user cannot publish signals');
select is(tests.try_as('pat@mkt.test', $$insert into public.signals (strategy_id, pair, side, entry_price, source)
          values ('$$ || tests.id('market', 3) || $$', 'BTC/USDT', 'long', 100, 'tradingview')$$), 'denied',
          'apps cannot claim a signal came from TradingView');

insert into public.signals (id, strategy_id, provider_id, pair, side, entry_price, stop_loss, take_profit, status, action)
values (tests.id('signal', 1), tests.id('market', 3), tests.id('user', 3), 'BTC/USDT', 'long', 100, 90, 120, 'closed', 'close');
select is((select status || '/' || action from public.signals where id = tests.id('signal', 1)), 'open/entry',
          'a published signal always starts open');
select is((select count(*)::int from public.jobs where kind = 'signals.fanout'
            and payload = jsonb_build_object('signal_id', tests.id('signal', 1), 'phase', 'open')), 1,
          'publishing hands the signal to the fleet once');

-- Subscribing ------------------------------------------------------------------------------
select is(tests.try_as('alice@mkt.test', 'select * from public.signals'), 'rows=0', 'before subscribing alice sees no signal');
select is(tests.try_as('pat@mkt.test', 'select * from public.signals'), 'rows=1', 'the provider reads their signals');
select is(tests.try_as('anon', 'select * from public.signals'), 'denied', 'anon reads no signals');

select tests.authenticate_as('alice@mkt.test');
select is((public.subscribe_to_strategy(tests.id('market', 3))).status, 'active', 'alice subscribes through the RPC');
select tests.clear_authentication();
select is((select balance from public.credit_accounts where user_id = tests.id('user', 1) and kind = 'user'), 90::numeric,
          'the first month (10 credits) is paid from her credits');
select is((select balance from public.credit_accounts where user_id = tests.id('user', 3) and kind = 'provider_earnings'),
          8::numeric, 'the provider earns 80%');
select is((select balance from public.credit_accounts where code = 'system:platform_revenue')
          - (select balance from platform_before), 2::numeric, 'the platform keeps 20%');
select is(tests.try_as('alice@mkt.test', format('select public.subscribe_to_strategy(%L)', tests.id('market', 3))), 'rows=1',
          'subscribing again while active is harmless');
select is((select balance from public.credit_accounts where user_id = tests.id('user', 1) and kind = 'user'), 90::numeric,
          '... and charges nothing more');
select is(tests.try_as('bob@mkt.test', format('select public.subscribe_to_strategy(%L)', tests.id('market', 3))),
          'error=23514', 'bob without credits cannot subscribe');
select is(tests.try_as('pat@mkt.test', format('select public.subscribe_to_strategy(%L)', tests.id('market', 3))),
          'error=23514', 'a provider cannot subscribe to their own strategy');
select is(tests.try_as('anon', format('select public.subscribe_to_strategy(%L)', tests.id('market', 3))),
          'denied', 'anon cannot subscribe');
select is(tests.try_as('bob@mkt.test', format('select public.subscribe_to_strategy(%L)', tests.id('market', 5))), 'rows=1',
          'a free strategy needs no credits');

select is(tests.try_as('alice@mkt.test', 'select * from public.signals'), 'rows=1', 'an active subscriber reads the signal');
select is(tests.try_as('bob@mkt.test', 'select * from public.signals'), 'rows=0', 'a non-subscriber still reads none');
select is(tests.try_as('bob@mkt.test', 'select * from public.strategy_subscriptions'), 'rows=0',
          'bob does not see alice''s subscription');
select is(tests.try_as('pat@mkt.test', 'select * from public.strategy_subscriptions'), 'rows=0',
          'the provider does not read subscribers'' rows (their bots and sizing)');
select is(tests.try_as('pat@mkt.test', format('select * from public.get_strategy_subscribers(%L)', tests.id('market', 3))), 'rows=1',
          '... but sees who subscribes to their strategy, by status, price and period');
select is(tests.try_as('alice@mkt.test', $$update public.strategy_subscriptions set status = 'active', price = 0$$),
          'denied', 'subscribers cannot set status or price directly');

select tests.authenticate_as('alice@mkt.test');
select is((public.pause_strategy_subscription((select id from public.strategy_subscriptions
            where subscriber_id = tests.id('user', 1)))).status, 'paused', 'alice pauses');
select tests.clear_authentication();
select is(tests.try_as('alice@mkt.test', 'select * from public.signals'), 'rows=0', 'a paused subscriber reads no signals');
select is(tests.try_as('bob@mkt.test', format('select public.pause_strategy_subscription(%L)',
          (select id from public.strategy_subscriptions where subscriber_id = tests.id('user', 1)))), 'error=P0002',
          'bob cannot pause alice''s subscription');
select tests.authenticate_as('alice@mkt.test');
select is((public.resume_strategy_subscription((select id from public.strategy_subscriptions
            where subscriber_id = tests.id('user', 1) and strategy_id = tests.id('market', 3)))).status, 'active',
          'alice resumes within her paid month');
select tests.clear_authentication();
select is((select balance from public.credit_accounts where user_id = tests.id('user', 1) and kind = 'user'), 90::numeric,
          'resuming inside the paid period charges nothing');

-- Renewal: a period that ended is charged again, or the subscription expires.
update public.strategy_subscriptions set current_period_end = now() - interval '1 second'
 where strategy_id = tests.id('market', 3);
select results_eq('select renewed, expired from public.renew_strategy_subscriptions()', 'values (1, 0)',
                  'the sweep renews the subscription whose month ended');
select is((select balance from public.credit_accounts where user_id = tests.id('user', 1) and kind = 'user'), 80::numeric,
          'the renewal charged alice another month');
update public.credit_accounts set low_balance_threshold = 0 where user_id = tests.id('user', 1);
select public.credit_correct(tests.id('fix', 1), (select id from public.credit_accounts where user_id = tests.id('user', 1) and kind = 'user'),
                             (select id from public.credit_accounts where code = 'system:grants'), 80, 'drain for the test');
update public.strategy_subscriptions set current_period_end = now() - interval '2 seconds' where subscriber_id = tests.id('user', 1);
select results_eq('select renewed, expired from public.renew_strategy_subscriptions()', 'values (0, 1)',
                  'without credits the subscription expires instead');
select is((select kind from public.notifications where user_id = tests.id('user', 1) order by created_at desc limit 1),
          'low_credits', '... and alice is told why');

-- Lifecycle and performance -----------------------------------------------------------------
select is(tests.try_as('pat@mkt.test', format($$update public.signals set stop_loss = 95 where id = %L$$, tests.id('signal', 1))),
          'rows=1', 'the provider updates the stop-loss');
update public.signals set stop_loss = 95 where id = tests.id('signal', 1);
select is((select status from public.signals where id = tests.id('signal', 1)), 'updated', 'the signal is now updated');
select is(tests.try_as('pat@mkt.test', format($$update public.signals set action = 'close' where id = %L$$, tests.id('signal', 1))),
          'error=23514', 'a signal on a pair the fleet holds no prices for cannot be closed by its provider');
-- The market traded at the entry (100) and up to 112 since (an entry outside the range would
-- count as the range's nearest price: see abuse_signal_result).
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
select 'binance', pair, '1h', date_trunc('hour', now()) - interval '1 hour', 104, 112, 99, 110
  from public.signals where id = tests.id('signal', 1);
select is(tests.try_as('pat@mkt.test', format($$update public.signals set action = 'close', exit_price = 150 where id = %L$$, tests.id('signal', 1))),
          'error=23514', 'nor closed outside the market''s range');
select tests.authenticate_as('pat@mkt.test');
update public.signals set action = 'close' where id = tests.id('signal', 1);
select tests.clear_authentication();
select is((select status || ' ' || result_pct from public.signals where id = tests.id('signal', 1)), 'closed 10.0000',
          'without an exit price it closes at the market''s last close: a long from 100 to 110 returned 10%');
select is(tests.try_as('pat@mkt.test', format($$update public.signals set note = 'x' where id = %L$$, tests.id('signal', 1))),
          'error=23514', 'a closed signal is final');
select is((select performance ->> 'win_rate' from public.strategies where id = tests.id('market', 3)), '100.00',
          'the strategy''s win rate follows its closed signals');

-- Reviews --------------------------------------------------------------------------------------
select is(tests.try_as('alice@mkt.test', format($$insert into public.reviews (strategy_id, rating) values (%L, 6)$$,
          tests.id('market', 3))), 'error=23514', 'ratings go from 1 to 5');
select tests.authenticate_as('alice@mkt.test');
insert into public.reviews (strategy_id, rating, comment) values (tests.id('market', 3), 4, 'solid');
select tests.clear_authentication();
select is(tests.try_as('alice@mkt.test', format($$insert into public.reviews (strategy_id, rating) values (%L, 5)$$,
          tests.id('market', 3))), 'error=23505', 'one review per subscriber');
select is(tests.try_as('eve@mkt.test', format($$insert into public.reviews (strategy_id, rating) values (%L, 1)$$,
          tests.id('market', 3))), 'denied', 'only subscribers review');
select is((select avg_rating || '/' || review_count from public.strategy_marketplace where id = tests.id('market', 3)),
          '4.00/1', 'the marketplace shows the average rating and count');

-- Fleet-only functions and secrets ------------------------------------------------------------------
select is(tests.try_as('pat@mkt.test', format('select public.rotate_tradingview_token(%L)', tests.id('market', 3))), 'rows=1',
          'the provider generates a TradingView token');
select is(tests.try_as('eve@mkt.test', format('select public.rotate_tradingview_token(%L)', tests.id('market', 3))), 'denied',
          'nobody else can');
select is(tests.try_as('pat@mkt.test', 'select * from private.tradingview_tokens'), 'denied',
          'token hashes are unreadable from the API');


-- Revenue share: a payment outside the subscribe RPC, as the renewal sweep makes it ------------
select tests.clear_authentication();
select public.credit_grant(tests.id('grant', 2), tests.id('user', 2), 40);
insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, monthly_price)
values (tests.id('market', 6), tests.id('user', 5), 'Eve''s edge', 'marketplace', 'rsi', true, 40);
insert into public.strategy_subscriptions (id, strategy_id, subscriber_id, price)
values (tests.id('sub', 6), tests.id('market', 6), tests.id('user', 2), 40);
select is((select array_agg(amount order by amount) from public.credit_pay_strategy_subscription(tests.id('pay', 1), tests.id('sub', 6))),
          array[8, 32]::numeric[], 'a strategy payment is shared 80/20 by default');
select is((select balance from public.credit_accounts where user_id = tests.id('user', 5) and kind = 'provider_earnings'),
          32::numeric, 'the provider earns 80% of it');
select is(tests.try_as('bob@mkt.test', format('select public.credit_pay_strategy_subscription(%L, %L)', tests.id('pay', 2), tests.id('sub', 6))),
          'denied', 'only the fleet charges a subscription');

-- strategy_marketplace: verified public strategies only, with their author's name and nothing else
select tests.clear_authentication();
insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, is_verified, content)
values (tests.id('mkt-s', 1), tests.id('user', 6), 'Verified', 'marketplace', 'rsi', true, true, 'secret rules'),
       (tests.id('mkt-s', 2), tests.id('user', 6), 'Unverified', 'marketplace', 'rsi', true, false, null),
       (tests.id('mkt-s', 3), tests.id('user', 6), 'Private', 'marketplace', 'rsi', false, true, null);
select tests.authenticate_as('anon');
select results_eq($$select name, author_name from public.strategy_marketplace where id in (tests.id('mkt-s', 1), tests.id('mkt-s', 2), tests.id('mkt-s', 3))$$,
  $$values ('Verified'::text, 'Pia'::text)$$, 'anon sees only verified public marketplace strategies, with the author name');
select throws_ok($$select content from public.strategies$$, '42501', null, 'anon cannot read a strategy''s rules');
select throws_ok($$select full_name from public.profiles$$, '42501', null, 'anon reads no profiles, even of authors');

select tests.clear_authentication();
select * from finish();
rollback;
