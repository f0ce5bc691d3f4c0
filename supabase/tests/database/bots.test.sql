-- Bots: plan limits, what apps may change on a bot (aal2 to go live, the fleet's error
-- state), statistics from closed trades, the performance RPC, and the bot runner's batch
-- write (bot_apply_steps) fenced by lease epochs.
begin;
select plan(40);

select tests.create_user(1, 'ann@bots.test');
select tests.create_user(2, 'ben@bots.test');

-- Plan limits (Free allows 2 bots and 3 strategies)
select tests.authenticate_as('ann@bots.test');
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
select throws_like($$update public.bots set allow_short = true, take_profit = 150 where id = tests.id('bot', 1)$$,
  '%bots_take_profit_short_side%', 'a short''s take-profit of 100 % or more (a target at or below zero) is refused');
select throws_like($$update public.bots set metadata = '{"trailing_stop": true}' where id = tests.id('bot', 1)$$,
  '%bots_trailing_stop_needs_stop_loss%', 'a trailing stop without a stop-loss is refused');
insert into public.strategies (name, strategy_type, engine) values ('a', 'ai_generated', 'rsi'), ('b', 'ai_generated', 'rsi'), ('c', 'ai_generated', 'rsi');
select throws_like($$insert into public.strategies (name, strategy_type, engine) values ('d', 'ai_generated', 'rsi')$$,
  '%allows 3 strategies (max_strategies)%', 'a fourth strategy on Free fails naming max_strategies');

-- aal2 for live trading
select tests.clear_authentication();
insert into public.exchange_credentials (id, user_id, exchange, sealed_secret, key_id)
values (tests.id('cred', 1), tests.id('user', 1), 'binance', 'v1:k:n:c', 'k');
select tests.authenticate_as('ann@bots.test');
select throws_like(
  $$update public.bots set is_paper_trade = false, exchange_credential_id = tests.id('cred', 1) where id = tests.id('bot', 1)$$,
  '%aal2%', 'going live in an aal1 session is refused');
select tests.authenticate_as('ann@bots.test', 'aal2');
select throws_ok($$update public.bots set is_paper_trade = false where id = tests.id('bot', 1)$$,
  '23514', null, 'a live bot needs an exchange key');
select lives_ok(
  $$update public.bots set is_paper_trade = false, exchange_credential_id = tests.id('cred', 1) where id = tests.id('bot', 1)$$,
  'going live in an aal2 session works');
select tests.authenticate_as('ann@bots.test');
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
select tests.authenticate_as('ann@bots.test');
select results_eq($$select total_trades, win_rate from public.get_user_trading_performance(30)$$,
  $$values (2::bigint, 100.00::numeric)$$, 'the performance function returns the caller''s figures');
select throws_ok(format('select * from public.get_user_trading_performance(30, %L)', tests.id('user', 2)),
  '42501', null, 'a user cannot read another user''s performance');

select tests.clear_authentication();
select is((select current_balance from public.bots where id = tests.id('bot', 1)), 1::numeric,
          'a new bot starts with its initial balance');
delete from public.trades where bot_id = tests.id('bot', 2) and profit = 0.002;
select results_eq($$select total_trades, winning_trades, profit from public.bots where id = tests.id('bot', 2)$$,
  $$values (1, 1, 0.003::numeric)$$, 'a deleted trade leaves the statistics');
select is(tests.try_as('ann@bots.test', format($$update public.bots set total_trades = 99 where id = %L$$, tests.id('bot', 2))),
          'denied', 'apps cannot write a bot''s statistics');

-- What the runner needs: prices per trade -------------------------------------------------------
select results_eq(format('select credits_per_trade, account_id, live_trading from public.bot_trade_prices(array[%L]::uuid[])',
                         tests.id('user', 2)),
                  format('select 1::numeric, id, false from public.credit_accounts where user_id = %L and kind = ''user''',
                         tests.id('user', 2)),
                  'bot_trade_prices gives the plan''s credits per trade, the user''s account and whether live trading is included');
select is(tests.try_as('ann@bots.test', format('select public.bot_trade_prices(array[%L]::uuid[])', tests.id('user', 1))),
          'denied', 'only the fleet reads prices through it');

-- bot_apply_steps: a batch of decisions, written only for bots whose lease epoch is current ------
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, status)
values (tests.id('bot', 3), tests.id('user', 2), 'three', 'binance', 'BTC/USDT', '1h', 'rsi', 100, 10, 'running'),
       (tests.id('bot', 4), tests.id('user', 2), 'four', 'binance', 'ETH/USDT', '1h', 'rsi', 100, 10, 'running');
insert into public.bot_leases (bot_id, epoch, expires_at)
values (tests.id('bot', 3), 3, now() + interval '1 minute'), (tests.id('bot', 4), 2, now() + interval '1 minute');
create temporary table batch on commit drop as
select jsonb_build_array(jsonb_build_object('bot_id', tests.id('bot', 3), 'epoch', 3, 'candle_at', '2026-01-01T10:00:00Z'),
                         jsonb_build_object('bot_id', tests.id('bot', 4), 'epoch', 1, 'candle_at', '2026-01-01T10:00:00Z')) as steps,
       jsonb_build_array(
         jsonb_build_object('id', tests.id('order', 3), 'bot_id', tests.id('bot', 3), 'user_id', tests.id('user', 2),
                            'client_order_id', 'bots-test-3', 'exchange', 'binance', 'symbol', 'BTC/USDT', 'side', 'buy',
                            'order_type', 'market', 'amount', 0.1, 'filled', 0.1, 'average_price', 100, 'status', 'closed',
                            'lease_epoch', 3),
         jsonb_build_object('id', tests.id('order', 4), 'bot_id', tests.id('bot', 4), 'user_id', tests.id('user', 2),
                            'client_order_id', 'bots-test-4', 'exchange', 'binance', 'symbol', 'ETH/USDT', 'side', 'buy',
                            'order_type', 'market', 'amount', 1, 'status', 'closed', 'lease_epoch', 1)) as orders,
       jsonb_build_array(
         jsonb_build_object('id', tests.id('trade', 3), 'bot_id', tests.id('bot', 3), 'user_id', tests.id('user', 2),
                            'exchange', 'binance', 'trading_pair', 'BTC/USDT', 'side', 'buy', 'direction', 'long',
                            'order_type', 'market', 'amount', 0.1, 'price', 100, 'exit_price', 110, 'fee', 0, 'profit', 1,
                            'status', 'closed', 'entry_time', '2026-01-01T09:00:00Z', 'exit_time', '2026-01-01T10:00:00Z',
                            'entry_order_id', tests.id('order', 3), 'lease_epoch', 3)) as trades,
       jsonb_build_array(jsonb_build_object('bot_id', tests.id('bot', 3), 'user_id', tests.id('user', 2), 'log_level', 'info',
                                            'message', 'bought'),
                         jsonb_build_object('bot_id', tests.id('bot', 4), 'user_id', tests.id('user', 2), 'log_level', 'info',
                                            'message', 'stale')) as logs,
       jsonb_build_array(jsonb_build_object('bot_id', tests.id('bot', 3), 'user_id', tests.id('user', 2), 'kind', 'fill',
                                            'title', 'Bought BTC')) as notes;
grant select on batch to public;
select results_eq($$select stale_bot_id from batch, public.bot_apply_steps(steps, orders, trades, logs, notes)$$,
                  format('values (%L::uuid)', tests.id('bot', 4)),
                  'a batch returns the bots whose lease epoch is stale');
select is((select array_agg(client_order_id order by client_order_id) from public.orders
            where bot_id in (tests.id('bot', 3), tests.id('bot', 4))), array['bots-test-3'],
          'only the current holder''s order is written');
select is((select count(*)::int from public.bot_logs where bot_id in (tests.id('bot', 3), tests.id('bot', 4))), 1,
          '... and only its log');
select is((select title from public.notifications where user_id = tests.id('user', 2)), 'Bought BTC', 'its notification too');
select results_eq($$select total_trades, profit, last_candle_at from public.bots where id = tests.id('bot', 3)$$,
                  $$values (1, 1::numeric, '2026-01-01T10:00:00Z'::timestamptz)$$,
                  'the bot''s statistics and last persisted candle follow the batch');
select is((select last_candle_at from public.bots where id = tests.id('bot', 4)), null, 'a stale bot is left untouched');
select is((select count(*)::int from batch, public.bot_apply_steps(
             jsonb_build_array(jsonb_build_object('bot_id', tests.id('bot', 3), 'epoch', 3, 'candle_at', '2026-01-01T09:00:00Z',
                                                  'status', 'error', 'status_reason', 'exchange', 'error_message', 'key revoked')),
             jsonb_set(orders, '{0,filled}', '0.2'), trades)), 0,
          'a replayed batch of the current holder is accepted');
select results_eq($$select (select count(*)::int from public.orders where client_order_id = 'bots-test-3'),
                         (select filled from public.orders where client_order_id = 'bots-test-3'),
                         (select count(*)::int from public.trades where bot_id = tests.id('bot', 3))$$,
                  $$values (1, 0.2::numeric, 1)$$, 'a replayed order or trade updates the row it wrote, never a second one');
select results_eq($$select status, error_message, last_candle_at from public.bots where id = tests.id('bot', 3)$$,
                  $$values ('error'::text, 'key revoked'::text, '2026-01-01T10:00:00Z'::timestamptz)$$,
                  'a step sets the fleet''s status and error; the last candle never goes back');
select is(tests.try_as('ben@bots.test', 'select * from public.bot_apply_steps(''[]'')'), 'denied', 'only the fleet writes batches');

-- decided_at: orders and trades record the candle their decision was taken on --------------------
select is((select count(*)::int from public.bot_apply_steps(
             jsonb_build_array(jsonb_build_object('bot_id', tests.id('bot', 3), 'epoch', 3, 'candle_at', '2026-01-01T11:00:00Z')),
             jsonb_build_array(jsonb_build_object('id', tests.id('order', 5), 'bot_id', tests.id('bot', 3), 'user_id', tests.id('user', 2),
                            'client_order_id', 'bots-test-5', 'exchange', 'binance', 'symbol', 'BTC/USDT', 'side', 'buy',
                            'order_type', 'market', 'amount', 0.1, 'status', 'open', 'lease_epoch', 3,
                            'decided_at', '2026-01-01T10:00:00Z')),
             jsonb_build_array(jsonb_build_object('id', tests.id('trade', 5), 'bot_id', tests.id('bot', 3), 'user_id', tests.id('user', 2),
                            'exchange', 'binance', 'trading_pair', 'BTC/USDT', 'side', 'buy', 'direction', 'long',
                            'order_type', 'market', 'amount', 0.1, 'price', 100, 'fee', 0, 'status', 'open',
                            'entry_time', '2026-01-01T11:00:00Z', 'entry_order_id', tests.id('order', 5), 'lease_epoch', 3,
                            'decided_at', '2026-01-01T10:00:00Z')))), 0,
          'a step with decided_at is accepted');
select results_eq($$select o.decided_at, t.decided_at from public.orders o, public.trades t
                    where o.client_order_id = 'bots-test-5' and t.id = tests.id('trade', 5)$$,
                  $$values ('2026-01-01T10:00:00Z'::timestamptz, '2026-01-01T10:00:00Z'::timestamptz)$$,
                  'the order and the trade record the candle that decided them');

-- bot_fence_holds: holds are placed only under a current lease epoch ------------------------------
select results_eq($$select stale_bot_id from public.bot_fence_holds(jsonb_build_array(
                      jsonb_build_object('bot_id', tests.id('bot', 3), 'epoch', 3),
                      jsonb_build_object('bot_id', tests.id('bot', 4), 'epoch', 1)))$$,
                  format('values (%L::uuid)', tests.id('bot', 4)),
                  'the fence names the bots whose lease epoch is stale, and only them');
select throws_ok($$select * from public.bot_fence_holds('{}')$$, '22023', null, 'the fence refuses what is not an array');
select is(tests.try_as('ben@bots.test', 'select * from public.bot_fence_holds(''[]'')'), 'denied', 'only the fleet fences holds');

-- bot_orphan_holds: holds whose order never happened, past the bot's committed progress ----------
select credit_grant(tests.id('grant', 1), tests.id('user', 2), 10);
create function pg_temp.bot_hold(p_n int, p_bot uuid, p_cid text, p_decided text) returns uuid
language sql as $$
  select (public.credit_hold(tests.id('hold', p_n),
            (select id from public.credit_accounts where user_id = tests.id('user', 2) and kind = 'user'),
            (select id from public.credit_accounts where code = 'system:usage'), 1, 'usage', interval '1 hour',
            'order', p_cid, jsonb_build_object('bot_id', p_bot, 'usage', 'trade', 'decided_at', p_decided))).id
$$;
select pg_temp.bot_hold(1, tests.id('bot', 3), 'bots-test-orphan', '2026-01-01T10:00:00Z'),  -- never placed
       pg_temp.bot_hold(2, tests.id('bot', 3), 'bots-test-5', '2026-01-01T10:00:00Z'),       -- its order exists
       pg_temp.bot_hold(3, tests.id('bot', 3), 'bots-test-later', '2026-01-01T12:00:00Z'),   -- not yet committed
       pg_temp.bot_hold(4, tests.id('bot', 4), 'bots-test-stale', '2026-01-01T08:00:00Z');   -- lease not ours
select results_eq($$select bot_id, hold_id, client_order_id from public.bot_orphan_holds(jsonb_build_array(
                      jsonb_build_object('bot_id', tests.id('bot', 3), 'epoch', 3),
                      jsonb_build_object('bot_id', tests.id('bot', 4), 'epoch', 1)))$$,
                  format('values (%L::uuid, %L::uuid, %L::text)', tests.id('bot', 3), tests.id('hold', 1), 'bots-test-orphan'),
                  'an orphan is a pending hold whose order never happened, decided on a committed candle, of a current lease');
select credit_void(tests.id('void', 1), tests.id('hold', 1));
select is((select count(*)::int from public.bot_orphan_holds(jsonb_build_array(
             jsonb_build_object('bot_id', tests.id('bot', 3), 'epoch', 3)))), 0,
          'a voided orphan hold is not listed again');

-- bot_performance_summary ------------------------------------------------------------------------
select is(tests.try_as('ben@bots.test', 'select win_rate_percentage from public.bot_performance_summary where total_trades > 0'),
          'rows=1', 'a user reads the performance of their own bots');

select tests.clear_authentication();

-- bot_record_protection ---------------------------------------------------------------------------
select throws_ok($$select public.bot_record_protection('{}'::jsonb)$$, '22023', null,
                 'protective orders come as a JSON array');
select is(public.bot_record_protection(jsonb_build_array(jsonb_build_object(
            'bot_id', tests.id('bot', 1), 'lease_epoch', 99, 'client_order_id', 'bots-test-stop')), '[]'),
          0, 'a worker without the bot''s current lease records no protective order');
select * from finish();
rollback;
