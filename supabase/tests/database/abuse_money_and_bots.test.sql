-- Abuse: money and bots, attacked as their own users would through PostgREST (role
-- authenticated with the user's JWT claims). One section per attack class:
--   renewal price set by the provider; caller-chosen ids colliding with the platform's;
--   sizing that breaks copy trading; live-bot changes without two-factor; platform pauses
--   undone by the user; NaN and Infinity as money; the ledger's service-only check;
--   writable sequences.
-- Fixtures use ids of their own, so the file passes on an empty and on a seeded database.
begin;
select plan(68);

-- Cast: 1301 alice, 1302 bob, 1304 dave, 1306 carol (users), 1303 pat (provider), 1305 dana (admin).
select tests.create_user(1301, 'alice@abuse-money.test');
select tests.create_user(1302, 'bob@abuse-money.test');
select tests.create_user(1303, 'pat@abuse-money.test', 'provider');
select tests.create_user(1304, 'dave@abuse-money.test');
select tests.create_user(1305, 'dana@abuse-money.test', 'admin');
select tests.create_user(1306, 'carol@abuse-money.test');

create function pg_temp.balance(p_user uuid, p_kind text default 'user') returns numeric language sql as
  $$ select balance from public.credit_accounts where user_id = p_user and kind = p_kind $$;
create function pg_temp.sub(p_user integer, p_strategy integer) returns public.strategy_subscriptions language sql as
  $$ select * from public.strategy_subscriptions
      where subscriber_id = tests.id('user', p_user) and strategy_id = tests.id('abuse-market', p_strategy) $$;
-- Run a statement as an actor and keep its effects: 'rows=N', 'denied' or 'error=<sqlstate>'.
create function pg_temp.run_as(p_actor text, p_sql text, p_aal text default 'aal1') returns text
language plpgsql as $$
declare
  v_rows bigint;
  v_result text;
begin
  begin
    perform tests.authenticate_as(p_actor, p_aal);
    execute p_sql;
    get diagnostics v_rows = row_count;
    v_result := 'rows=' || v_rows;
  exception
    when insufficient_privilege then v_result := 'denied';
    when others then v_result := 'error=' || sqlstate;
  end;
  perform tests.clear_authentication();
  return v_result;
end;
$$;
-- What an actor's statement raised: '<sqlstate> <message>' (or 'ok'), undone either way.
create function pg_temp.error_of(p_actor text, p_sql text, p_aal text default 'aal1') returns text
language plpgsql as $$
declare
  v_result text := 'ok';
begin
  begin
    perform tests.authenticate_as(p_actor, p_aal);
    execute p_sql;
    raise exception using errcode = 'TFUND', message = 'ok';
  exception
    when sqlstate 'TFUND' then v_result := 'ok';
    when others then v_result := sqlstate || ' ' || sqlerrm;
  end;
  perform tests.clear_authentication();
  return v_result;
end;
$$;

insert into public.plans (id, name, price_monthly, max_bots, max_strategies, backtest_minutes_per_month)
values (tests.id('abuse-plan', 1), 'Abuse Trio', 9, 3, 3, 10);
update public.subscriptions set plan_id = tests.id('abuse-plan', 1), status = 'active', expires_at = now() + interval '30 days'
 where user_id = tests.id('user', 1301);
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('abuse-market', 1), tests.id('user', 1303), 'Abuse Cheap', 'marketplace', true, true, 19),
       (tests.id('abuse-market', 2), tests.id('user', 1303), 'Abuse Dear', 'marketplace', true, true, 100),
       (tests.id('abuse-market', 3), tests.id('user', 1303), 'Abuse Penny', 'marketplace', true, true, 1);
select public.credit_grant(tests.id('abuse-grant', 1), tests.id('user', 1301), 100);
select public.credit_grant(tests.id('abuse-grant', 2), tests.id('user', 1302), 300);

-- 1. The provider sets the renewal price ----------------------------------------------------
select is(pg_temp.run_as('alice@abuse-money.test', format('select public.subscribe_to_strategy(%L)', tests.id('abuse-market', 1))),
          'rows=1', 'alice subscribes at 19 credits a month');
select is(pg_temp.run_as('pat@abuse-money.test', format('update public.strategies set monthly_price = 1000 where id = %L',
          tests.id('abuse-market', 1))), 'rows=1', 'the provider raises the price to 1000 just before the renewal');
select is((pg_temp.sub(1301, 1)).price, 19.00, 'alice''s subscription keeps the price she agreed to');
select ok((pg_temp.sub(1301, 1)).next_price = 1000 and (pg_temp.sub(1301, 1)).next_price_from >= now() + interval '29 days',
          'the new price waits for a period starting at least 30 days after the notice');
select is((select count(*)::int from public.notifications where user_id = tests.id('user', 1301) and kind = 'payment'
            and (data ->> 'next_price')::numeric = 1000), 1, 'alice is told of the change');
update public.strategy_subscriptions set current_period_end = now() - interval '1 second'
 where id = (pg_temp.sub(1301, 1)).id;
select results_eq('select renewed, expired from public.renew_strategy_subscriptions()', 'values (1, 0)',
                  'the renewal sweep renews alice');
select is(pg_temp.balance(tests.id('user', 1301)), 62::numeric, 'the renewal charged the agreed 19, not 1000');
select is(pg_temp.balance(tests.id('user', 1303), 'provider_earnings'), 30.4::numeric,
          'the provider earned 80% of the agreed price twice');
select is(tests.try_as('bob@abuse-money.test', format('select public.accept_strategy_price(%L)', (pg_temp.sub(1301, 1)).id)),
          'error=P0002', 'bob cannot accept a price for alice');
select is(pg_temp.run_as('alice@abuse-money.test', format('select public.cancel_strategy_subscription(%L)', (pg_temp.sub(1301, 1)).id)),
          'rows=1', 'alice may cancel instead of paying the new price');

-- 2. Caller-chosen ids colliding with the platform's -----------------------------------------
select is(pg_temp.run_as('bob@abuse-money.test', format('select public.subscribe_to_strategy(%L)', tests.id('abuse-market', 2))),
          'rows=1', 'bob subscribes at 100 credits; the provider has 80 + 30.4 to pay out');
update public.strategy_subscriptions set current_period_end = now() - interval '1 second'
 where id = (pg_temp.sub(1302, 2)).id;
create temp table renewal_id on commit drop as
  select md5('strategy-subscription-period:' || s.id || ':' || s.current_period_end)::uuid as id
    from public.strategy_subscriptions s where s.id = (pg_temp.sub(1302, 2)).id;
grant select on renewal_id to authenticated;
select is(tests.try_as('pat@abuse-money.test', 'select public.credit_request_payout(50, (select id from renewal_id))'),
          'rows=1', 'the provider requests a payout keyed with the id the platform derives for bob''s renewal');
select tests.authenticate_as('pat@abuse-money.test');
select public.credit_request_payout(50, (select id from renewal_id));
select tests.clear_authentication();
select is((select count(*)::int from public.credit_transfers where id = (select id from renewal_id)), 0,
          'the caller''s key is not the transfer id: the platform''s id stays free');
select is((select count(*)::int from public.credit_transfers where reference_id = (select id::text from renewal_id)
            and kind = 'payout'), 1, '... the payout is kept under the caller''s key, once however often it is sent');
select results_eq('select renewed, expired from public.renew_strategy_subscriptions()', 'values (1, 0)',
                  'the renewal sweep still renews bob');
select is(pg_temp.balance(tests.id('user', 1302)), 100::numeric, 'bob paid his renewal');
select is((pg_temp.sub(1302, 2)).status, 'active', 'and is active because he paid');
select is(tests.try_as('pat@abuse-money.test', format('select public.credit_request_payout(50, %L)',
          (select id from public.credit_transfers where reference_id = (pg_temp.sub(1302, 2)).id::text limit 1))),
          'rows=1', 'an id of someone else''s transfer as a key is just another key');
select unalike(pg_temp.error_of('pat@abuse-money.test', 'select public.credit_request_payout(1000000)'),
               '%________-____-____-____-____________%', 'a refused payout names no account or transfer id');
select unalike(pg_temp.error_of('pat@abuse-money.test', format('select public.credit_request_payout(60, %L)',
               (select id from renewal_id))), '%________-____-____-____-____________%',
               'a key reused with another amount is refused without naming ids');
-- One failing item never rolls back the sweep.
select public.credit_grant(tests.id('abuse-grant', 3), tests.id('user', 1306), 200);
select is(pg_temp.run_as('carol@abuse-money.test', format('select public.subscribe_to_strategy(%L)', tests.id('abuse-market', 2))),
          'rows=1', 'carol subscribes too');
update public.strategy_subscriptions set current_period_end = now() - interval '1 second'
 where id in ((pg_temp.sub(1302, 2)).id, (pg_temp.sub(1306, 2)).id);
select public.credit_hold(md5('strategy-subscription-period:' || s.id || ':' || s.current_period_end)::uuid,
                          private.credit_user_account(tests.id('user', 1306)), private.credit_system_account('system:usage'),
                          1, 'usage')
  from public.strategy_subscriptions s where s.id = (pg_temp.sub(1306, 2)).id;
select results_eq('select renewed, expired from public.renew_strategy_subscriptions()', 'values (1, 0)',
                  'a subscription whose renewal fails is left for the next sweep while the others renew');
select is((pg_temp.sub(1302, 2)).current_period_end > now(), true, 'bob''s renewal was kept');

-- 4. Sizing that breaks copy trading ---------------------------------------------------------
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
values (tests.id('abuse-bot', 1), tests.id('user', 1301), 'alice copy', 'binance', 'ETH/BTC', '5m', 'sma_cross', 1, 0.1),
       (tests.id('abuse-bot', 2), tests.id('user', 1302), 'bob copy', 'binance', 'ETH/BTC', '5m', 'sma_cross', 1, 0.1);
select is(tests.try_as('bob@abuse-money.test', $$update public.strategy_subscriptions set sizing = '{"max_leverage": 0}'$$),
          'error=23514', 'a subscriber cannot store sizing with leverage 0');
select is(tests.try_as('bob@abuse-money.test', $$update public.strategy_subscriptions set sizing = '{"mode": "fixed_base", "amount": "lots"}'$$),
          'error=23514', '... nor an amount that is not a number');
select is(tests.try_as('alice@abuse-money.test', format($$select public.subscribe_to_strategy(%L, true, %L, '{"mode": "fixed_base", "amount": "lots"}')$$,
          tests.id('abuse-market', 2), tests.id('abuse-bot', 1))), 'error=23514', '... nor through subscribe_to_strategy');
select is(pg_temp.run_as('bob@abuse-money.test', format($$update public.strategy_subscriptions set auto_execute = true, bot_id = %L, sizing = '{"mode": "fixed_quote", "amount": "0.5"}'$$,
          tests.id('abuse-bot', 2))), 'rows=1', 'valid sizing is accepted');
-- A row written before the rule (the check is not validated on old rows) holds bad sizing.
alter table public.strategy_subscriptions drop constraint strategy_subscriptions_sizing_valid;
update public.strategy_subscriptions set auto_execute = true, bot_id = tests.id('abuse-bot', 1), sizing = '{"mode": "fixed_base", "amount": "lots"}', status = 'active'
 where id = (pg_temp.sub(1301, 1)).id;
update public.strategy_subscriptions set strategy_id = tests.id('abuse-market', 1) where id = (pg_temp.sub(1302, 2)).id;
alter table public.strategy_subscriptions
  add constraint strategy_subscriptions_sizing_valid check (private.sizing_is_valid(sizing)) not valid;
insert into public.signals (id, strategy_id, provider_id, pair, side, entry_price)
values (tests.id('abuse-signal', 1), tests.id('abuse-market', 1), tests.id('user', 1303), 'ETH/BTC', 'long', 0.05);
select lives_ok(format('select * from public.signal_fan_out(%L)', tests.id('abuse-signal', 1)),
                'the fan-out survives subscribers with unreadable sizing');
select is((select reason from public.signal_executions where signal_id = tests.id('abuse-signal', 1)
            and subscriber_id = tests.id('user', 1301)), 'invalid_sizing', 'the bad subscriber is skipped as invalid_sizing');
select is((select reason from public.signal_executions where signal_id = tests.id('abuse-signal', 1)
            and subscriber_id = tests.id('user', 1302)), 'bot_not_running', 'the others are handled on their own merits');

-- 5. Live bots changed without two-factor -----------------------------------------------------
insert into public.exchange_credentials (id, user_id, exchange, sealed_secret, key_id)
values (tests.id('abuse-cred', 1), tests.id('user', 1301), 'binance', 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1');
insert into public.bots (id, user_id, exchange_credential_id, name, exchange, trading_pair, timeframe, strategy,
                         initial_balance, stake_amount, stop_loss, is_paper_trade, status)
values (tests.id('abuse-bot', 3), tests.id('user', 1301), tests.id('abuse-cred', 1), 'alice live', 'binance', 'ETH/BTC', '5m',
        'sma_cross', 1, 0.1, 5, false, 'running'),
       (tests.id('abuse-bot', 4), tests.id('user', 1301), null, 'alice paper', 'binance', 'ETH/BTC', '5m',
        'sma_cross', 1, 0.1, 5, true, 'running');
select is(tests.try_as('alice@abuse-money.test', format('update public.bots set leverage = 125 where id = %L', tests.id('abuse-bot', 3))),
          'denied', 'an aal1 session cannot raise a live bot''s leverage');
select is(tests.try_as('alice@abuse-money.test', format('update public.bots set stop_loss = null where id = %L', tests.id('abuse-bot', 3))),
          'denied', '... nor remove its stop-loss');
select is(tests.try_as('alice@abuse-money.test', format('update public.bots set stake_amount = 1000, trading_pair = %L where id = %L',
          'BTC/USDT', tests.id('abuse-bot', 3))), 'denied', '... nor change its stake or pair');
select is(tests.try_as('alice@abuse-money.test', format('update public.bots set exchange_credential_id = null, exchange = %L where id = %L',
          'bybit', tests.id('abuse-bot', 3))), 'denied', '... nor its exchange or credential');
select is(tests.try_as('alice@abuse-money.test', format('update public.bots set stake_amount = 1000 where id = %L', tests.id('abuse-bot', 3))),
          'denied', '... nor its stake alone');
select is(tests.try_as('alice@abuse-money.test', format('update public.bots set is_paper_trade = false, exchange_credential_id = %L where id = %L',
          tests.id('abuse-cred', 1), tests.id('abuse-bot', 4))), 'denied', 'an aal1 session cannot turn a running paper bot live');
select is(tests.try_as('alice@abuse-money.test', format('update public.bots set leverage = 5 where id = %L', tests.id('abuse-bot', 3)), 'aal2'),
          'rows=1', 'an aal2 session can');
select is(tests.try_as('alice@abuse-money.test', format($$update public.bots set name = 'renamed', status = 'stopped' where id = %L$$,
          tests.id('abuse-bot', 3))), 'rows=1', 'renaming or stopping a live bot needs no second factor');
select is(tests.try_as('alice@abuse-money.test', format($$update public.bots set metadata = '{"sizing": "risk"}' where id = %L$$,
          tests.id('abuse-bot', 3))), 'denied', 'switching a live bot to risk sizing needs two-factor too');
select is(tests.try_as('alice@abuse-money.test', format($$update public.bots set metadata = '{"colour": "teal"}' where id = %L$$,
          tests.id('abuse-bot', 3))), 'rows=1', 'other metadata of a live bot changes in an aal1 session');
select is(tests.try_as('alice@abuse-money.test', format($$update public.bots set metadata = '{"paper_fee": "lots"}' where id = %L$$,
          tests.id('abuse-bot', 4))), 'error=23514', 'a paper fee that is not a fraction is refused when written');
select is(tests.try_as('alice@abuse-money.test', format('update public.bots set leverage = 20 where id = %L', tests.id('abuse-bot', 4))),
          'rows=1', 'a paper bot changes in an aal1 session');

-- 6. Platform pauses undone by the user -------------------------------------------------------
update public.subscriptions set plan_id = tests.id('abuse-plan', 1), status = 'active', expires_at = now() + interval '30 days'
 where user_id = tests.id('user', 1304);
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, status, created_at)
select tests.id('abuse-bot', 10 + n), tests.id('user', 1304), 'dave ' || n, 'binance', 'ETH/BTC', '5m', 'sma_cross', 1, 0.1,
       'running', now() - (10 - n) * interval '1 minute'
  from generate_series(1, 3) n;
update public.subscriptions set plan_id = (select id from public.plans where name = 'Free')
 where user_id = tests.id('user', 1304);
select is(private.billing_enforce_plan_limits(tests.id('user', 1304)), 1, 'the Free plan (two bots) pauses dave''s oldest running bot');
select is((select pause_cause from public.bots where id = tests.id('abuse-bot', 11)), 'plan', '... recording the plan as the cause');
select is(tests.try_as('dave@abuse-money.test', format($$update public.bots set status = 'running' where id = %L$$, tests.id('abuse-bot', 11))),
          'error=23514', 'dave cannot set it running again while the plan allows no more');
select is(tests.try_as('dave@abuse-money.test', format($$update public.bots set status = 'running', pause_cause = null where id = %L$$,
          tests.id('abuse-bot', 11))), 'denied', '... nor clear the cause himself');
update public.bots set status = 'stopped' where id = tests.id('abuse-bot', 13);
select is(pg_temp.run_as('dave@abuse-money.test', format($$update public.bots set status = 'running' where id = %L$$, tests.id('abuse-bot', 11))),
          'rows=1', 'once he stops another bot, it may run');
update public.bots set status = 'paused', status_reason = 'daily loss limit reached: 12 of 10' where id = tests.id('abuse-bot', 12);
select is((select pause_cause from public.bots where id = tests.id('abuse-bot', 12)), 'daily_loss', 'the fleet pauses for the daily loss limit');
select is(tests.try_as('dave@abuse-money.test', format($$update public.bots set status = 'running' where id = %L$$, tests.id('abuse-bot', 12))),
          'error=23514', 'dave cannot resume it the same day');
select is(tests.try_as('dave@abuse-money.test', format($$update public.bots set status = 'stopped' where id = %L$$, tests.id('abuse-bot', 12))),
          'rows=1', 'stopping a paused bot stays his choice');

-- 10. NaN, Infinity and absurd amounts are not money---------------------------------------------------------
create temp table carol_before on commit drop as select pg_temp.balance(tests.id('user', 1306)) as balance;
select is(tests.try_as('dana@abuse-money.test', format($$select public.credit_correct(gen_random_uuid(), %L, %L, 'NaN', 'nan')$$,
          private.credit_system_account('system:grants'), private.credit_user_account(tests.id('user', 1306)))),
          'error=23514', 'an admin correction of NaN credits is refused');
select is(tests.try_as('dana@abuse-money.test', format($$select public.credit_correct(gen_random_uuid(), %L, %L, 'Infinity', 'inf')$$,
          private.credit_system_account('system:grants'), private.credit_user_account(tests.id('user', 1306)))),
          'error=23514', '... and of Infinity');
select throws_ok(format($$select public.credit_grant(gen_random_uuid(), %L, 'NaN')$$, tests.id('user', 1306)), '23514', null,
                 'the service cannot grant NaN either');
select throws_ok(format($$update public.credit_accounts set credits_posted = 'NaN' where user_id = %L$$, tests.id('user', 1306)),
                 '23514', null, 'no stored amount can be NaN');
select is(tests.try_as('pat@abuse-money.test', $$select public.credit_request_payout('NaN')$$), 'error=23514',
          'a payout of NaN is refused');
select is(tests.try_as('dana@abuse-money.test', format($$select public.credit_correct(gen_random_uuid(), %L, %L, 1e40, 'absurd')$$,
          private.credit_system_account('system:grants'), private.credit_user_account(tests.id('user', 1306)))),
          'error=23514', 'an absurd correction is refused by name (credit_amount_within_bounds)');
select is(tests.try_as('pat@abuse-money.test', $$select public.credit_request_payout(-60)$$), 'error=23514',
          'a negative payout is refused');
select is(pg_temp.balance(tests.id('user', 1306)), (select balance from carol_before), 'carol''s balance is untouched');

-- 11. The ledger's service-only check, with EXECUTE granted --------------------------------------
grant execute on function public.credit_grant(uuid, uuid, numeric, text, text, jsonb) to authenticated;
create function pg_temp.grant_through_wrapper(p_user uuid) returns numeric language plpgsql as
  $$ begin return (public.credit_grant(gen_random_uuid(), p_user, 1000)).amount; end $$;
select is(tests.try_as('carol@abuse-money.test', format('select public.credit_grant(gen_random_uuid(), %L, 1000)', tests.id('user', 1306))),
          'denied', 'a user granted EXECUTE still cannot grant credits');
select is(tests.try_as('carol@abuse-money.test', format('select pg_temp.grant_through_wrapper(%L)', tests.id('user', 1306))),
          'denied', '... nor through a wrapper on the call stack');
select is(tests.try_as('carol@abuse-money.test', format($$select private.credit_delegate('mine')$$)),
          'denied', '... nor open a delegation herself');
select is(tests.try_as('carol@abuse-money.test', format($$select public.credit_grant(gen_random_uuid(), %L, 1000) from (select public.subscribe_to_strategy(%L) as sub) s$$,
          tests.id('user', 1306), tests.id('abuse-market', 3))),
          'denied', '... nor after a platform function paid through the ledger in the same transaction');
-- Every ledger function that serves the service only, granted to authenticated, refuses her.
create temp table service_only on commit drop as
select p.oid::regprocedure as fn,
       format('select * from %s(%s)', p.oid::regproc,
              (select string_agg('null::' || format_type(t, null), ', ' order by o)
                 from unnest(p.proargtypes) with ordinality a(t, o))) as call
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'public' and p.prosrc like '%private.credit_require_service()%';
grant select on service_only to authenticated;
do $$ declare r record; begin
  for r in select * from service_only loop execute format('grant execute on function %s to authenticated', r.fn); end loop;
end $$;
select cmp_ok((select count(*)::int from service_only), '>=', 15, 'the ledger''s service-only functions are found');
select is((select array_agg(fn::text || ' ' || tests.try_as('carol@abuse-money.test', call)) from service_only
            where tests.try_as('carol@abuse-money.test', call) <> 'denied'), null,
          'each refuses a user who was granted EXECUTE on it');
select is(pg_temp.balance(tests.id('user', 1306)), (select balance from carol_before), 'carol''s balance is untouched');

-- 14. Sequences ------------------------------------------------------------------------------------
select is(tests.try_as('carol@abuse-money.test', $$select setval('public.jobs_id_seq', 1)$$), 'denied',
          'a user cannot reset the job id sequence');
select is(tests.try_as('anon', $$select nextval('public.jobs_id_seq')$$), 'denied', 'anon cannot draw from it');
select is((select array_agg(r.role || ':' || n.nspname || '.' || c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
            cross join (values ('anon'), ('authenticated')) r(role)
           where c.relkind = 'S' and n.nspname in ('public', 'private')
             and (has_sequence_privilege(r.role, c.oid, 'USAGE') or has_sequence_privilege(r.role, c.oid, 'SELECT')
                  or has_sequence_privilege(r.role, c.oid, 'UPDATE'))),
          null, 'no sequence is usable by anon or authenticated');

select * from finish();
rollback;
