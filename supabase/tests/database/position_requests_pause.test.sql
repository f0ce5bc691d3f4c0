-- A live bot paused (or set to error) while a close of its position works waits for its
-- worker: it stays running with the request marked for the status it goes to, so the
-- worker can cancel the close and rest the stop again first; only the worker's own write
-- of that status goes through, and the request it settles is left to it. A paper bot
-- pauses at once.
begin;
select plan(10);

select tests.create_user(1601, 'pia@pause.test');
insert into public.plans (id, name, price_monthly, max_bots, max_strategies, live_trading)
values (tests.id('plan', 1601), 'Pause test', 0, 10, 10, true);
update public.subscriptions set plan_id = tests.id('plan', 1601) where user_id = tests.id('user', 1601);
insert into public.exchange_credentials (id, user_id, exchange, sealed_secret, key_id)
values (tests.id('cred', 1601), tests.id('user', 1601), 'binance', 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1');
-- 1: live, 2: paper; both running, holding a trade whose limit close works.
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount,
                         status, is_paper_trade, exchange_credential_id)
values (tests.id('bot', 1601), tests.id('user', 1601), 'live', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1, 'running', false, tests.id('cred', 1601)),
       (tests.id('bot', 1602), tests.id('user', 1601), 'paper', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1, 'running', true, null);
insert into public.trades (id, bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time, is_paper_trade)
select tests.id('trade', n), tests.id('bot', n), tests.id('user', 1601), 'binance', 'ETH/BTC', 'buy', 1, 0.1, now(), n = 1602
  from unnest(array[1601, 1602]) n;
insert into public.position_requests (user_id, bot_id, trade_id, kind, order_type, limit_price, timeout_s, on_timeout,
                                      is_paper_trade, idempotency_key, status, client_order_id)
select tests.id('user', 1601), tests.id('bot', n), tests.id('trade', n), 'close', 'limit', 1, 600, 'cancel',
       n = 1602, 'k' || n, 'working', 'close-' || n
  from unnest(array[1601, 1602]) n;

create function pg_temp.as_owner(p_sql text) returns text
language plpgsql
as $$
declare
  v_state text;
  v_constraint text;
begin
  perform tests.authenticate_as('pia@pause.test');
  execute p_sql;
  perform tests.clear_authentication();
  return 'accepted';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  perform tests.clear_authentication();
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
end;
$$;

select is(pg_temp.as_owner(format($$update public.bots set status = 'paused' where id = %L$$, tests.id('bot', 1601))),
          'accepted', 'the owner pauses a live bot whose close works');
select results_eq(
  format($$select b.status, b.status_reason, r.status, r.stop_after, r.stop_status from public.bots b
            join public.position_requests r on r.bot_id = b.id where b.id = %L$$, tests.id('bot', 1601)),
  $$values ('running', 'pausing: cancelling the working close, the position is kept', 'working', true, 'paused')$$,
  'the pause waits for the worker: the bot runs on, the close is marked to settle');
select is(pg_temp.as_owner(format($$update public.bots set status = 'paused' where id = %L$$, tests.id('bot', 1601))),
          'accepted', 'a second pause');
select results_eq(
  format($$select status from public.bots where id = %L$$, tests.id('bot', 1601)),
  $$values ('running')$$,
  'a second pause waits the same way (no status the worker did not settle)');

-- The fleet sets it to error instead: the same wait, with the error kept.
update public.bots set status = 'error', error_message = 'key revoked' where id = tests.id('bot', 1601);
select results_eq(
  format($$select b.status, b.error_message, r.stop_status from public.bots b
            join public.position_requests r on r.bot_id = b.id where b.id = %L$$, tests.id('bot', 1601)),
  $$values ('running', 'key revoked', 'error')$$,
  'an error waits for the worker too, its message written at once');

-- The worker that settled the close names the bot: its write goes through, the request is its own.
select set_config('tradefleet.settled_bots', tests.id('bot', 1601)::text, true);
update public.bots set status = 'error' where id = tests.id('bot', 1601);
select set_config('tradefleet.settled_bots', '', true);
select results_eq(
  format($$select b.status, r.status from public.bots b
            join public.position_requests r on r.bot_id = b.id where b.id = %L$$, tests.id('bot', 1601)),
  $$values ('error', 'working')$$,
  'the worker''s settled status goes through and leaves the request to it');

-- A paper bot pauses at once: its working close ends failed.
select is(pg_temp.as_owner(format($$update public.bots set status = 'paused' where id = %L$$, tests.id('bot', 1602))),
          'accepted', 'the owner pauses a paper bot whose close works');
select results_eq(
  format($$select b.status, r.status, r.stop_status from public.bots b
            join public.position_requests r on r.bot_id = b.id where b.id = %L$$, tests.id('bot', 1602)),
  $$values ('paused', 'failed', null::text)$$,
  'a paper bot pauses at once, its working request ends failed');

-- stop_status is the fleet's: only paused or error, and only with stop_after.
select throws_ok(
  format($$update public.position_requests set stop_status = 'stopped' where bot_id = %L$$, tests.id('bot', 1601)),
  '23514', null, 'stop_status is paused or error');
select throws_ok(
  format($$update public.position_requests set stop_after = false where bot_id = %L$$, tests.id('bot', 1601)),
  '23514', null, 'stop_status needs stop_after');

select * from finish();
rollback;
