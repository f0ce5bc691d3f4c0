-- Limit orders and equity: a bot's order settings are refused out of range when the bot is
-- saved (named constraints), and the fleet's equity rows are fenced by the lease epoch
-- and read by the bot's owner only.
begin;
select plan(17);

select tests.create_user(1, 'ann@orders.test');
select tests.create_user(2, 'ben@orders.test');

select tests.authenticate_as('ann@orders.test');
insert into public.bots (id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount,
                         entry_order_type, exit_order_type, limit_offset, entry_timeout, exit_timeout,
                         timeout_action)
values (tests.id('bot', 1), 'limits', 'binance', 'ETH/BTC', '5m', 'sma_cross', 1, 0.1,
        'limit', 'limit', 0.5, 3, 2, 'requote');
select is((select entry_order_type || '/' || exit_order_type || '/' || limit_offset::text || '/' || timeout_action
             from public.bots where id = tests.id('bot', 1)),
          'limit/limit/0.5000/requote', 'an owner saves limit entries and exits with a timeout');
select throws_like($$update public.bots set entry_order_type = 'stop' where id = tests.id('bot', 1)$$,
  '%bots_entry_order_type_known%', 'an unknown entry order type is refused');
select throws_like($$update public.bots set exit_order_type = 'iceberg' where id = tests.id('bot', 1)$$,
  '%bots_exit_order_type_known%', 'an unknown exit order type is refused');
select throws_like($$update public.bots set limit_offset = -0.1 where id = tests.id('bot', 1)$$,
  '%bots_limit_offset_range%', 'a negative limit offset is refused');
select throws_like($$update public.bots set limit_offset = 10.5 where id = tests.id('bot', 1)$$,
  '%bots_limit_offset_range%', 'a limit offset above 10 % is refused');
select throws_like($$update public.bots set entry_timeout = 0 where id = tests.id('bot', 1)$$,
  '%bots_order_timeout_range%', 'an entry timeout of zero is refused');
select throws_like($$update public.bots set exit_timeout = 1001 where id = tests.id('bot', 1)$$,
  '%bots_order_timeout_range%', 'an exit timeout above 1,000 candles is refused');
select lives_ok($$update public.bots set order_timeout_unit = 'minutes', exit_timeout = 1440 where id = tests.id('bot', 1)$$,
  'a day in minutes is a valid timeout');
select throws_like($$update public.bots set timeout_action = 'market' where id = tests.id('bot', 1)$$,
  '%bots_timeout_action_known%', 'an unknown timeout action is refused');

select tests.clear_authentication();
insert into public.bot_leases (bot_id, epoch, expires_at) values (tests.id('bot', 1), 4, now() + interval '1 minute');
select is(public.bot_record_equity(jsonb_build_array(jsonb_build_object(
            'bot_id', tests.id('bot', 1), 'user_id', tests.id('user', 1), 'lease_epoch', 3,
            'candle_at', '2026-01-01T00:00:00Z', 'equity', 5))),
          0, 'a worker without the bot''s current lease records no equity');
select is(public.bot_record_equity(jsonb_build_array(jsonb_build_object(
            'bot_id', tests.id('bot', 1), 'user_id', tests.id('user', 1), 'lease_epoch', 4,
            'candle_at', '2026-01-01T00:00:00Z', 'price', 0.05, 'position_amount', 2,
            'unrealized_pnl', 0.01, 'realized_pnl', 0, 'equity', 1.01))),
          1, 'the leasing worker records the bot''s equity');
select is(public.bot_record_equity(jsonb_build_array(jsonb_build_object(
            'bot_id', tests.id('bot', 1), 'user_id', tests.id('user', 1), 'lease_epoch', 4,
            'candle_at', '2025-12-31T23:55:00Z', 'price', 0.04, 'position_amount', 2,
            'unrealized_pnl', -0.01, 'realized_pnl', 0, 'equity', 0.99))),
          0, 'an older candle never overwrites the equity of a newer one');
update public.bot_leases set epoch = 5 where bot_id = tests.id('bot', 1);
select is(public.bot_record_equity(jsonb_build_array(jsonb_build_object(
            'bot_id', tests.id('bot', 1), 'user_id', tests.id('user', 1), 'lease_epoch', 4,
            'candle_at', '2026-01-01T00:05:00Z', 'price', 0.06, 'position_amount', 2,
            'unrealized_pnl', 0.03, 'realized_pnl', 0, 'equity', 1.03))),
          0, 'a worker that lost the lease records no equity, even for a newer candle');
update public.bot_equity set lease_epoch = 6 where bot_id = tests.id('bot', 1);
select is(public.bot_record_equity(jsonb_build_array(jsonb_build_object(
            'bot_id', tests.id('bot', 1), 'user_id', tests.id('user', 1), 'lease_epoch', 5,
            'candle_at', '2026-01-01T00:05:00Z', 'price', 0.06, 'position_amount', 2,
            'unrealized_pnl', 0.03, 'realized_pnl', 0, 'equity', 1.03))),
          0, 'a row of an older epoch never overwrites one of a newer epoch');
select is(tests.try_as('ann@orders.test', 'select equity from public.bot_equity where equity = 1.01'), 'rows=1',
          'the owner reads their bot''s equity');
select is(tests.try_as('ben@orders.test', 'select equity from public.bot_equity'), 'rows=0',
          'another user sees nothing of the bot''s equity');
select ok(exists (select 1 from pg_publication_tables
                  where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'bot_equity'),
          'bot_equity is published over Realtime');
select * from finish();
rollback;
