-- Positions under the owner's control: close_position, stop_bot and manual_trade are the
-- owner's alone, live money needs an aal2 session, bad requests are refused with a named
-- error and store nothing, a retried request is the same request, and apps never write
-- requests themselves.
begin;
select plan(27);

select tests.create_user(1501, 'olga@positions.test');
select tests.create_user(1502, 'sam@positions.test');
insert into public.plans (id, name, price_monthly, max_bots, max_strategies, live_trading)
values (tests.id('plan', 1501), 'Positions test', 0, 10, 10, true);
update public.subscriptions set plan_id = tests.id('plan', 1501) where user_id = tests.id('user', 1501);
insert into public.exchange_credentials (id, user_id, exchange, sealed_secret, key_id)
values (tests.id('cred', 1501), tests.id('user', 1501), 'binance', 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1');
-- 1: paper, running, holding a trade; 2: live, running, holding a trade; 3: paper, running,
-- flat; 4: paper, paused, holding a trade.
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount,
                         status, is_paper_trade, exchange_credential_id)
values (tests.id('bot', 1), tests.id('user', 1501), 'paper', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1, 'running', true, null),
       (tests.id('bot', 2), tests.id('user', 1501), 'live', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1, 'running', false, tests.id('cred', 1501)),
       (tests.id('bot', 3), tests.id('user', 1501), 'flat', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1, 'running', true, null),
       (tests.id('bot', 4), tests.id('user', 1501), 'paused', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1, 'paused', true, null);
insert into public.trades (id, bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time, is_paper_trade)
select tests.id('trade', n), tests.id('bot', n), tests.id('user', 1501), 'binance', 'ETH/BTC', 'buy', 1, 0.1, now(), n <> 2
  from unnest(array[1, 2, 4]) n;

-- The error a statement raises, as 'SQLSTATE constraint', or 'accepted'.
create function pg_temp.as_user(p_email text, p_sql text, p_aal text default 'aal1') returns text
language plpgsql
as $$
declare
  v_state text;
  v_constraint text;
begin
  perform tests.authenticate_as(p_email, p_aal);
  execute p_sql;
  perform tests.clear_authentication();
  return 'accepted';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  perform tests.clear_authentication();
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
end;
$$;

-- Refusals first: nothing stored.
select is(pg_temp.as_user('sam@positions.test', format($$select close_position(%L, true)$$, tests.id('trade', 1))),
          'P0002 position_requests_trade_owned', 'a stranger cannot close the owner''s position');
select is(pg_temp.as_user('sam@positions.test', format($$select stop_bot(%L, 'close')$$, tests.id('bot', 1))),
          'P0002 position_requests_bot_owned', 'a stranger cannot stop the owner''s bot');
select is(pg_temp.as_user('sam@positions.test', format($$select manual_trade(%L, true, 'buy', 1)$$, tests.id('bot', 3))),
          'P0002 position_requests_bot_owned', 'a stranger cannot trade on the owner''s bot');
select is(pg_temp.as_user('olga@positions.test', format($$select close_position(%L, false)$$, tests.id('trade', 1))),
          '23514 position_requests_mode_matches', 'a paper position closed as live money is refused');
select is(pg_temp.as_user('olga@positions.test', format($$select close_position(%L, false)$$, tests.id('trade', 2))),
          '42501 position_requests_live_requires_aal2', 'closing a live position needs aal2');
select is(pg_temp.as_user('olga@positions.test', format($$select manual_trade(%L, false, 'buy', 1)$$, tests.id('bot', 2))),
          '42501 position_requests_live_requires_aal2', 'a manual live trade needs aal2');
select is(pg_temp.as_user('olga@positions.test', format($$select stop_bot(%L, 'close')$$, tests.id('bot', 2))),
          '42501 position_requests_live_requires_aal2', 'stopping a live bot closing its position needs aal2');
select is(pg_temp.as_user('olga@positions.test', format($$select close_position(%L, true)$$, tests.id('trade', 4))),
          '23514 position_requests_bot_running', 'a paused bot leaves its position untouched');
select is(pg_temp.as_user('olga@positions.test', format($$select close_position(%L, true, 'limit', 0, 60)$$, tests.id('trade', 1))),
          '22023 position_requests_limit_price_positive', 'a limit price of 0 is refused');
select is(pg_temp.as_user('olga@positions.test', format($$select close_position(%L, true, 'limit', 1, 999999)$$, tests.id('trade', 1))),
          '22023 position_requests_timeout_range', 'an absurd timeout is refused');
select is(pg_temp.as_user('olga@positions.test', format($$select manual_trade(%L, true, 'buy', 1)$$, tests.id('bot', 1))),
          '23514 position_requests_bot_flat', 'a manual entry on a bot holding a position is refused');
select is(pg_temp.as_user('olga@positions.test', format($$select manual_trade(%L, true, 'sell', 1)$$, tests.id('bot', 3))),
          '23514 position_requests_short_allowed', 'a manual sell needs a bot that may short');
select is(pg_temp.as_user('olga@positions.test', format(
            $$insert into public.position_requests (user_id, bot_id, kind, is_paper_trade, idempotency_key) values (%L, %L, 'close', true, 'x')$$,
            tests.id('user', 1501), tests.id('bot', 1))),
          '42501 -', 'apps cannot write requests themselves');
select is((select count(*)::int from public.position_requests), 0, 'no refused request was stored');

-- Accepted requests.
select is(pg_temp.as_user('olga@positions.test', format($$select close_position(%L, true, 'market', null, null, 'market', 'c1')$$, tests.id('trade', 1))),
          'accepted', 'the owner closes a paper position in an aal1 session');
select is(pg_temp.as_user('olga@positions.test', format($$select close_position(%L, true, 'market', null, null, 'market', 'c1')$$, tests.id('trade', 1))),
          'accepted', 'a retried close with the same key');
select is(pg_temp.as_user('olga@positions.test', format($$select close_position(%L, true, 'limit', 0.2, 60)$$, tests.id('trade', 1))),
          'accepted', 'another close of a position being closed');
select is((select count(*)::int from public.position_requests where trade_id = tests.id('trade', 1)), 1,
          'all three are the one request');
select is(pg_temp.as_user('olga@positions.test', format($$select close_position(%L, false)$$, tests.id('trade', 2)), 'aal2'),
          'accepted', 'the owner closes a live position in an aal2 session');
select is(pg_temp.as_user('olga@positions.test', format($$select manual_trade(%L, true, 'buy', null, 0.05)$$, tests.id('bot', 3))),
          'accepted', 'a manual paper trade on a flat running bot');

-- Stopping: keep stops at once (and drops the requests not started); close waits for it.
select is(pg_temp.as_user('olga@positions.test', format($$select stop_bot(%L, 'keep')$$, tests.id('bot', 2))),
          'accepted', 'stopping a live bot keeping its position needs no second factor');
select results_eq(
  format($$select b.status, b.stop_positions, r.status from public.bots b join public.position_requests r on r.bot_id = b.id where b.id = %L$$, tests.id('bot', 2)),
  $$values ('stopped', 'keep', 'cancelled')$$,
  'a bot stopped keeping its position is stopped, its pending close dropped');
select is(pg_temp.as_user('olga@positions.test', format($$select stop_bot(%L, 'close')$$, tests.id('bot', 1))),
          'accepted', 'stopping a paper bot closing its position');
select results_eq(
  format($$select b.status, b.stop_positions, r.stop_after, r.status from public.bots b join public.position_requests r on r.bot_id = b.id where b.id = %L$$, tests.id('bot', 1)),
  $$values ('running', 'close', true, 'pending')$$,
  'the bot runs until the worker closed its position, then stops');

-- Keeping the position while its close works (a limit close resting, the stop taken off):
-- the bot runs until the worker cancelled the close and rested the stop again.
update public.position_requests set status = 'working' where bot_id = tests.id('bot', 1);
select is(pg_temp.as_user('olga@positions.test', format($$select stop_bot(%L, 'keep')$$, tests.id('bot', 1))),
          'accepted', 'stopping a bot keeping its position while its close works');
select results_eq(
  format($$select b.status, b.stop_positions, b.status_reason, r.stop_after, r.status from public.bots b join public.position_requests r on r.bot_id = b.id where b.id = %L$$, tests.id('bot', 1)),
  $$values ('running', 'keep', 'stopping: cancelling the working close, the position is kept', true, 'working')$$,
  'the bot runs until the worker cancelled the working close and protected the position');
update public.bots set status = 'stopped' where id = tests.id('bot', 1);
select results_eq(
  format($$select r.status from public.position_requests r where r.bot_id = %L$$, tests.id('bot', 1)),
  $$values ('working')$$,
  'the worker stopping the bot ends that request itself, in the same transaction');

select * from finish();
rollback;
