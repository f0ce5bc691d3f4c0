-- The last request wins for stops: a bot whose stop (closing its position, or keeping it
-- while a close works) waits for its worker, set running by its owner, runs on: the stop is
-- cancelled and logged, the close works on, and the worker's settling write that commits
-- after the owner's leaves it running. The fleet's own writes override nothing; a platform
-- pause a stop turned into a stop is not the owner's to override.
begin;
select plan(14);

select tests.create_user(1711, 'sam@stop-override.test');
insert into public.plans (id, name, price_monthly, max_bots, max_strategies, live_trading)
values (tests.id('plan', 1711), 'Stop override test', 0, 10, 10, true);
update public.subscriptions set plan_id = tests.id('plan', 1711) where user_id = tests.id('user', 1711);
insert into public.exchange_credentials (id, user_id, exchange, sealed_secret, key_id)
values (tests.id('cred', 1711), tests.id('user', 1711), 'binance', 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1');
-- Two paper bots and a live one (1712), running, each holding a trade; 1712 and 1713 with a
-- limit close working.
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount,
                         status, is_paper_trade, exchange_credential_id)
select tests.id('bot', n), tests.id('user', 1711), 'bot ' || n, 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1, 'running',
       n <> 1712, case when n = 1712 then tests.id('cred', 1711) end
  from unnest(array[1711, 1712, 1713]) n;
insert into public.trades (id, bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time, is_paper_trade)
select tests.id('trade', n), tests.id('bot', n), tests.id('user', 1711), 'binance', 'ETH/BTC', 'buy', 1, 0.1, now(),
       n <> 1712
  from unnest(array[1711, 1712, 1713]) n;
insert into public.position_requests (user_id, bot_id, trade_id, kind, order_type, limit_price, timeout_s, on_timeout,
                                      is_paper_trade, idempotency_key, status, client_order_id)
select tests.id('user', 1711), tests.id('bot', n), tests.id('trade', n), 'close', 'limit', 1, 600, 'cancel',
       n <> 1712, 'k' || n, 'working', 'close-' || n
  from unnest(array[1712, 1713]) n;

create function pg_temp.as_owner(p_sql text) returns text
language plpgsql
as $$
declare
  v_state text;
  v_constraint text;
begin
  perform tests.authenticate_as('sam@stop-override.test');
  execute p_sql;
  perform tests.clear_authentication();
  return 'accepted';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  perform tests.clear_authentication();
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
end;
$$;

create function pg_temp.run(p_bot int) returns text
language sql
as $$ select pg_temp.as_owner(format($f$update public.bots set status = 'running' where id = %L$f$, tests.id('bot', p_bot))) $$;

create function pg_temp.state(p_bot int) returns table (status text, status_reason text, req_status text,
                                                         stop_after boolean)
language sql
as $$
  select b.status, b.status_reason, r.status, r.stop_after
    from public.bots b join public.position_requests r on r.bot_id = b.id where b.id = tests.id('bot', p_bot)
$$;

create function pg_temp.actions(p_bot int) returns text[]
language sql
as $$
  select coalesce(array_agg(l.context ->> 'action' order by l.created_at, l.id), '{}')
    from public.bot_logs l where l.bot_id = tests.id('bot', p_bot)
$$;

-- A stop closing the position, then running before the worker closed it.
select is(pg_temp.as_owner(format($$select public.stop_bot(%L, 'close')$$, tests.id('bot', 1711))),
          'accepted', 'the owner stops a bot closing its position');
select results_eq($$select * from pg_temp.state(1711)$$,
  $$values ('running', 'stopping: closing the open position', 'pending', true)$$, 'the stop waits for its worker');
select is(pg_temp.run(1711), 'accepted', 'and sets it running before the worker closed the position');
select results_eq($$select * from pg_temp.state(1711)$$,
  $$values ('running', null::text, 'pending', false)$$,
  'the stop is cancelled: the close works on, the bot runs without the stopping reason');
select results_eq(
  format($$select context ->> 'action', context ->> 'stop_positions', context -> 'request_ids' ->> 0
             from public.bot_logs where bot_id = %L$$, tests.id('bot', 1711)),
  format($$values ('stop_overridden', 'close', (select id::text from public.position_requests where bot_id = %L))$$,
         tests.id('bot', 1711)),
  'the cancelled stop is logged on the bot');

-- The worker that closed the position writes `stopped` after the owner's `running`: it runs on.
select set_config('tradefleet.settled_bots', tests.id('bot', 1711)::text, true);
update public.bots set status = 'stopped', status_reason = 'stopped by its owner: the open position was closed'
 where id = tests.id('bot', 1711);
select set_config('tradefleet.settled_bots', '', true);
select results_eq($$select status, status_reason from pg_temp.state(1711)$$, $$values ('running', null::text)$$,
  'a settling stop that comes after the owner''s running does not stop the bot');
select is(pg_temp.actions(1711), array['stop_overridden', 'settle_overridden'],
  'the bot''s log says the stop settled after the owner set it running');

-- A stop keeping the position while a close works, then running.
select is(pg_temp.as_owner(format($$select public.stop_bot(%L, 'keep')$$, tests.id('bot', 1712))),
          'accepted', 'the owner stops a bot keeping its position while a close works');
select is(pg_temp.run(1712), 'accepted', 'and sets it running again');
select results_eq($$select * from pg_temp.state(1712)$$,
  $$values ('running', null::text, 'working', false)$$, 'the stop is cancelled, the close works on');

-- The fleet's own write of `running` (a step) overrides nothing; its settling write stops the bot.
select is(pg_temp.as_owner(format($$select public.stop_bot(%L, 'keep')$$, tests.id('bot', 1713))),
          'accepted', 'another stop keeping the position');
update public.bots set status = 'running' where id = tests.id('bot', 1713);
select set_config('tradefleet.settled_bots', tests.id('bot', 1713)::text, true);
update public.bots set status = 'stopped', status_reason = 'stopped by its owner: the open position is kept'
 where id = tests.id('bot', 1713);
select set_config('tradefleet.settled_bots', '', true);
select results_eq($$select status, status_reason from pg_temp.state(1713)$$,
  $$values ('stopped', 'stopped by its owner: the open position is kept')$$,
  'the worker''s settled stop goes through while it still waits');

-- A platform pause that a stop turned into a stop still holds.
update public.bots set status = 'paused', pause_cause = 'credits', status_reason = 'out of credits'
 where id = tests.id('bot', 1712);
select is(pg_temp.as_owner(format($$select public.stop_bot(%L, 'keep')$$, tests.id('bot', 1712))),
          'accepted', 'the owner stops a bot whose platform pause waits');
select is(pg_temp.run(1712), '23514 bots_platform_pause_holds', 'a waiting platform pause holds against running');

select * from finish();
rollback;
