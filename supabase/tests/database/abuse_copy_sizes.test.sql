-- Abuse: copy sizes no row can hold. A subscriber's paper bot may stake up to what its
-- balance column holds (999,999,999,999.99999999), and a fixed_quote sizing may ask for up
-- to 1e12 of the quote; at a price of 1e-8 either makes a copy of 1e20 units, past what an
-- order, a trade or an execution row holds (numeric(28,12): below 1e16). One such
-- subscriber must not stop a signal from reaching everyone else: an oversized copy is
-- skipped as invalid_sizing and the others are copied.
-- Cast: 3101 pat (provider), 3102 ann (honest subscriber), 3103 mal and 3104 max (attackers).
begin;
select plan(9);

select tests.create_user(3101, 'pat@copy-sizes.test', 'provider');
select tests.create_user(3102, 'ann@copy-sizes.test');
select tests.create_user(3103, 'mal@copy-sizes.test');
select tests.create_user(3104, 'max@copy-sizes.test');
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('copy-sizes-market', 1), tests.id('user', 3101), 'Penny Movers', 'marketplace', true, true, 0);
select count(*) from (select public.credit_grant(tests.id('copy-sizes-grant', n), tests.id('user', n), 10)
                        from generate_series(3102, 3104) n) g;

-- Run a statement as an actor and keep its effects: 'ok', 'denied' or 'error=<sqlstate>'.
create function pg_temp.run_as(p_actor text, p_sql text) returns text
language plpgsql as $$
declare
  v_result text := 'ok';
begin
  begin
    perform tests.authenticate_as(p_actor);
    execute p_sql;
  exception
    when insufficient_privilege then v_result := 'denied';
    when others then v_result := 'error=' || sqlstate;
  end;
  perform tests.clear_authentication();
  return v_result;
end;
$$;

create function pg_temp.bot(p_n integer, p_balance numeric, p_stake numeric) returns text
language sql as $$
  select format($f$insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy,
                                           initial_balance, stake_amount, status)
                   values (%L, (select auth.uid()), 'copies', 'binance', 'PEPE/BTC', '1h', 'rsi', %s, %s, 'running')$f$,
                tests.id('copy-sizes-bot', p_n), p_balance, p_stake)
$$;

create function pg_temp.subscribe(p_n integer, p_sizing text default '{}') returns text
language sql as $$
  select format($f$select public.subscribe_to_strategy(%L, true, %L, %L)$f$,
                tests.id('copy-sizes-market', 1), tests.id('copy-sizes-bot', p_n), p_sizing)
$$;

-- ann copies with a modest stake; mal stakes all his bot holds; max asks for 1e12 BTC a copy.
select is(pg_temp.run_as('ann@copy-sizes.test', pg_temp.bot(2, 0.01, 0.01)), 'ok', 'ann makes a paper bot');
select is(pg_temp.run_as('mal@copy-sizes.test', pg_temp.bot(3, 999999999999, 999999999999)), 'ok',
          'mal makes a paper bot staking 999,999,999,999');
select is(pg_temp.run_as('max@copy-sizes.test', pg_temp.bot(4, 1, 1)), 'ok', 'max makes a paper bot');
select is(pg_temp.run_as('ann@copy-sizes.test', pg_temp.subscribe(2)), 'ok', 'ann subscribes, copying');
select is(pg_temp.run_as('mal@copy-sizes.test', pg_temp.subscribe(3)), 'ok', 'mal subscribes, copying his stake');
select is(pg_temp.run_as('max@copy-sizes.test', pg_temp.subscribe(4, '{"mode": "fixed_quote", "amount": 1000000000000}')),
          'ok', 'max subscribes, copying 1e12 BTC a signal');
insert into public.bot_leases (bot_id, epoch, expires_at)
select tests.id('copy-sizes-bot', n), 1, now() + interval '1 minute' from generate_series(2, 4) n;

-- Open ---------------------------------------------------------------------------------------
insert into public.signals (id, strategy_id, provider_id, pair, side, entry_price)
values (tests.id('copy-sizes-signal', 1), tests.id('copy-sizes-market', 1), tests.id('user', 3101), 'PEPE/BTC', 'long',
        0.00000001);
select results_eq(format('select executed, skipped from public.signal_fan_out(%L)', tests.id('copy-sizes-signal', 1)),
                  'values (1, 2)', 'the signal fans out despite copies no order can hold');
select bag_eq(format($$select subscriber_id, status, reason, amount from public.signal_executions
                        where signal_id = %L$$, tests.id('copy-sizes-signal', 1)),
              format($$values (%L::uuid, 'executed'::text, null::text, 1000000::numeric),
                              (%L::uuid, 'skipped'::text, 'invalid_sizing'::text, null::numeric),
                              (%L::uuid, 'skipped'::text, 'invalid_sizing'::text, null::numeric)$$,
                     tests.id('user', 3102), tests.id('user', 3103), tests.id('user', 3104)),
              'ann is copied; mal and max are skipped as invalid_sizing, with no amount');
select bag_eq(format('select user_id, amount, status from public.trades where signal_id = %L', tests.id('copy-sizes-signal', 1)),
              format($$values (%L::uuid, 1000000::numeric, 'open'::text)$$, tests.id('user', 3102)),
              'only ann''s bot holds a copy');


select * from finish();
rollback;
