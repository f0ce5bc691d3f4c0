-- Abuse: one strategy subscription written before sizings were validated stops every renewal.
-- The sizing rule was added NOT VALID, but every update of a row checks it: the renewal sweep
-- charges the oldest due subscriptions first, and charging one updates its row; the refusal
-- was caught and the subscription expired, by another update of the same row, refused again,
-- which failed the whole sweep, every time, with that row first in line: nobody's
-- subscription renewed. A provider could no longer change his price either (one update of
-- all his subscriptions). Such sizings are now set aside (kept in
-- private.strategy_subscriptions_legacy_sizing), the subscription no longer copies until its
-- subscriber sets a sizing and copying again (it copied nothing before: invalid_sizing), and
-- the rule is validated.
-- Cast: 3701 pat (provider), 3702 ann, 3703 old (subscribed before the rule).
begin;
select plan(8);

select is((select convalidated from pg_constraint where conname = 'strategy_subscriptions_sizing_valid'), true,
          'the sizing rule is validated: no subscription escapes it');

select tests.create_user(3701, 'pat@legacy-sizing.test', 'provider');
select tests.create_user(3702, 'ann@legacy-sizing.test');
select tests.create_user(3703, 'old@legacy-sizing.test');
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('legacy-sizing-market', 1), tests.id('user', 3701), 'Renewals', 'marketplace', true, true, 5);
select count(*) from (select public.credit_grant(tests.id('legacy-sizing-grant', n), tests.id('user', n), 100)
                        from generate_series(3702, 3703) n) g;
select tests.authenticate_as('ann@legacy-sizing.test');
select public.subscribe_to_strategy(tests.id('legacy-sizing-market', 1));
select tests.authenticate_as('old@legacy-sizing.test');
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, status)
values (tests.id('legacy-sizing-bot', 1), tests.id('user', 3703), 'copies', 'binance', 'BTC/USDT', '1h', 'rsi', 1000, 100,
        'running');
select public.subscribe_to_strategy(tests.id('legacy-sizing-market', 1), true, tests.id('legacy-sizing-bot', 1));
select tests.clear_authentication();

-- old's subscription as it was written before the rule; it is due first, ann's next.
alter table public.strategy_subscriptions drop constraint strategy_subscriptions_sizing_valid;
update public.strategy_subscriptions set sizing = '{"mode": "martingale", "amount": -1}',
       current_period_end = now() - interval '2 days'
 where subscriber_id = tests.id('user', 3703);
alter table public.strategy_subscriptions
  add constraint strategy_subscriptions_sizing_valid check (private.sizing_is_valid(sizing)) not valid;
update public.strategy_subscriptions set current_period_end = now() - interval '1 day'
 where subscriber_id = tests.id('user', 3702);

create function pg_temp.run(p_sql text) returns text
language plpgsql as $$
begin
  execute p_sql;
  return 'ok';
exception when others then
  return 'error=' || sqlstate;
end;
$$;

select is(pg_temp.run('select public.renew_strategy_subscriptions()'), 'error=23514',
          'while old''s sizing breaks the rule, the renewal sweep fails for everyone');

-- The migration's repair, as it runs it.
select is(private.subscriptions_repair_legacy_sizing(), 1, 'the repair changes old''s subscription alone');
alter table public.strategy_subscriptions validate constraint strategy_subscriptions_sizing_valid;

select results_eq(format($$select sizing, auto_execute from public.strategy_subscriptions where subscriber_id = %L$$,
                         tests.id('user', 3703)),
                  $$values ('{}'::jsonb, false)$$, 'old''s subscription keeps no sizing and copies no more');
select is((select l.sizing from private.strategy_subscriptions_legacy_sizing l
            join public.strategy_subscriptions s on s.id = l.subscription_id where s.subscriber_id = tests.id('user', 3703)),
          '{"mode": "martingale", "amount": -1}'::jsonb, '... what it had is kept');
select results_eq('select renewed, expired from public.renew_strategy_subscriptions()', 'values (2, 0)',
                  'the sweep renews both');
select is((select count(*)::int from public.strategy_subscriptions where strategy_id = tests.id('legacy-sizing-market', 1)
            and current_period_end > now()), 2, '... into their next period');
select is(tests.try_as('pat@legacy-sizing.test', format('update public.strategies set monthly_price = 6 where id = %L',
                                                        tests.id('legacy-sizing-market', 1))), 'rows=1',
          'and pat can change his price');

select * from finish();
rollback;
