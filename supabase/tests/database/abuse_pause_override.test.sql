-- The last request wins: a live bot whose pause (or error) waits for its worker to settle a
-- working close, set running by its owner, runs on: the waiting pause is cancelled and
-- logged, and the worker's settling write that commits after the owner's leaves it
-- running. The fleet's own writes override nothing; a platform pause is not the owner's to
-- override.
begin;
select plan(16);

select tests.create_user(1701, 'oli@override.test');
insert into public.plans (id, name, price_monthly, max_bots, max_strategies, live_trading)
values (tests.id('plan', 1701), 'Override test', 0, 10, 10, true);
update public.subscriptions set plan_id = tests.id('plan', 1701) where user_id = tests.id('user', 1701);
insert into public.exchange_credentials (id, user_id, exchange, sealed_secret, key_id)
values (tests.id('cred', 1701), tests.id('user', 1701), 'binance', 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1');
-- Two live bots, running, each holding a trade whose limit close works.
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount,
                         status, is_paper_trade, exchange_credential_id)
select tests.id('bot', n), tests.id('user', 1701), 'live ' || n, 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1, 'running',
       false, tests.id('cred', 1701)
  from unnest(array[1701, 1702, 1703]) n;
insert into public.trades (id, bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time, is_paper_trade)
select tests.id('trade', n), tests.id('bot', n), tests.id('user', 1701), 'binance', 'ETH/BTC', 'buy', 1, 0.1, now(), false
  from unnest(array[1701, 1702, 1703]) n;
insert into public.position_requests (user_id, bot_id, trade_id, kind, order_type, limit_price, timeout_s, on_timeout,
                                      is_paper_trade, idempotency_key, status, client_order_id)
select tests.id('user', 1701), tests.id('bot', n), tests.id('trade', n), 'close', 'limit', 1, 600, 'cancel',
       false, 'k' || n, 'working', 'close-' || n
  from unnest(array[1701, 1702, 1703]) n;

create function pg_temp.as_owner(p_sql text) returns text
language plpgsql
as $$
declare
  v_state text;
  v_constraint text;
begin
  perform tests.authenticate_as('oli@override.test');
  execute p_sql;
  perform tests.clear_authentication();
  return 'accepted';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  perform tests.clear_authentication();
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
end;
$$;

create function pg_temp.state(p_bot int) returns table (status text, status_reason text, error_message text,
                                                         req_status text, stop_after boolean, stop_status text)
language sql
as $$
  select b.status, b.status_reason, b.error_message, r.status, r.stop_after, r.stop_status
    from public.bots b join public.position_requests r on r.bot_id = b.id where b.id = tests.id('bot', p_bot)
$$;

-- The owner pauses, then sets the bot running before its worker settled the close.
select is(pg_temp.as_owner(format($$update public.bots set status = 'paused' where id = %L$$, tests.id('bot', 1701))),
          'accepted', 'the owner pauses a live bot whose close works');
select is(pg_temp.as_owner(format($$update public.bots set status = 'running' where id = %L$$, tests.id('bot', 1701))),
          'accepted', 'and sets it running again before the worker settled the close');
select results_eq($$select * from pg_temp.state(1701)$$,
  $$values ('running', null::text, null::text, 'working', false, null::text)$$,
  'the pause is cancelled: the close works on, the bot runs without the pausing reason');
select results_eq(
  format($$select context ->> 'action', context ->> 'status', context -> 'request_ids' ->> 0 from public.bot_logs
            where bot_id = %L$$, tests.id('bot', 1701)),
  format($$values ('pause_overridden', 'paused', (select id::text from public.position_requests where bot_id = %L))$$,
         tests.id('bot', 1701)),
  'the cancelled pause is logged on the bot');

-- The worker that settled the close writes `paused` after the owner's `running`: the bot runs on.
select set_config('tradefleet.settled_bots', tests.id('bot', 1701)::text, true);
update public.bots set status = 'paused', status_reason = null where id = tests.id('bot', 1701);
select set_config('tradefleet.settled_bots', '', true);
select results_eq($$select status from pg_temp.state(1701)$$, $$values ('running')$$,
  'a settling write that comes after the owner''s running does not pause the bot');

-- The fleet's own write of `running` (a step) overrides nothing.
select is(pg_temp.as_owner(format($$update public.bots set status = 'paused' where id = %L$$, tests.id('bot', 1701))),
          'accepted', 'paused again');
update public.bots set status = 'running' where id = tests.id('bot', 1701);
select results_eq($$select status_reason, stop_after, stop_status from pg_temp.state(1701)$$,
  $$values ('pausing: cancelling the working close, the position is kept', true, 'paused')$$,
  'a step''s write of the status it keeps leaves the waiting pause');
-- ... and a settling write while the pause still waits pauses the bot, as before.
select set_config('tradefleet.settled_bots', tests.id('bot', 1701)::text, true);
update public.bots set status = 'paused', status_reason = null where id = tests.id('bot', 1701);
select set_config('tradefleet.settled_bots', '', true);
select results_eq($$select status from pg_temp.state(1701)$$, $$values ('paused')$$,
  'the worker''s settled pause goes through while it still waits');

-- An error waiting for the worker, then the owner's running: the error and its message are gone.
update public.bots set status = 'error', error_message = 'key revoked' where id = tests.id('bot', 1702);
select results_eq($$select status, error_message, stop_status from pg_temp.state(1702)$$,
  $$values ('running', 'key revoked', 'error')$$, 'an error waits for the worker');
select is(pg_temp.as_owner(format($$update public.bots set status = 'running' where id = %L$$, tests.id('bot', 1702))),
          'accepted', 'the owner sets it running');
select results_eq($$select * from pg_temp.state(1702)$$,
  $$values ('running', null::text, null::text, 'working', false, null::text)$$,
  'the waiting error is cancelled with its message');

-- A platform pause waiting for the worker is not the owner's to override.
update public.bots set status = 'paused', pause_cause = 'credits', status_reason = 'out of credits'
 where id = tests.id('bot', 1702);
select results_eq($$select b.status, b.pause_cause, r.stop_status from public.bots b
                     join public.position_requests r on r.bot_id = b.id where b.id = tests.id('bot', 1702)$$,
  $$values ('running', 'credits', 'paused')$$, 'a platform pause waits for the worker with its cause');
select is(pg_temp.as_owner(format($$update public.bots set status = 'running' where id = %L$$, tests.id('bot', 1702))),
          '23514 bots_platform_pause_holds', 'a waiting platform pause holds');

-- The fleet's daily loss pause waiting for the worker is the platform's too: it waits with
-- its cause, until the next UTC day, and the owner cannot set the bot running past its limit.
update public.bots set status = 'paused', status_reason = 'daily loss limit reached: lost 2 BTC on 2026-12-18 (limit 1)'
 where id = tests.id('bot', 1703);
select results_eq($$select b.status, b.pause_cause, b.pause_until > now(), r.stop_status, r.stop_reason from public.bots b
                     join public.position_requests r on r.bot_id = b.id where b.id = tests.id('bot', 1703)$$,
  $$values ('running', 'daily_loss', true, 'paused', 'daily loss limit reached: lost 2 BTC on 2026-12-18 (limit 1)')$$,
  'a daily loss pause waits for the worker with its cause');
select is(pg_temp.as_owner(format($$update public.bots set status = 'running' where id = %L$$, tests.id('bot', 1703))),
          '23514 bots_platform_pause_holds', 'a waiting daily loss pause holds');
select set_config('tradefleet.settled_bots', tests.id('bot', 1703)::text, true);
update public.bots set status = 'paused', status_reason = 'daily loss limit reached: lost 2 BTC on 2026-12-18 (limit 1)'
 where id = tests.id('bot', 1703);
select set_config('tradefleet.settled_bots', '', true);
select results_eq($$select status, pause_cause from public.bots where id = tests.id('bot', 1703)$$,
  $$values ('paused', 'daily_loss')$$, 'the settled daily loss pause keeps its cause');

select * from finish();
rollback;
