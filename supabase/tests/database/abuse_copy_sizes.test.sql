-- Abuse: copy sizes and balances no row can hold. A subscriber's paper bot may stake up to
-- what its balance column holds (999,999,999,999.99999999), and a fixed_quote sizing may ask
-- for up to 1e12 of the quote; at a price of 1e-8 either makes a copy of 1e20 units, past
-- what an order, a trade or an execution row holds (numeric(28,12): below 1e16). A bot whose
-- balance already sits at its column's bound cannot take a profit either. One such
-- subscriber must not stop a signal from reaching, or closing for, everyone else: an
-- oversized copy is skipped as invalid_sizing, and a bot's profit and balance stop at the
-- bounds of their columns.
-- Cast: 3101 pat (provider), 3102 ann (honest subscriber), 3103 mal, 3104 max and 3105 moe
-- (attackers).
begin;
select plan(14);

select tests.create_user(3101, 'pat@copy-sizes.test', 'provider');
select tests.create_user(3102, 'ann@copy-sizes.test');
select tests.create_user(3103, 'mal@copy-sizes.test');
select tests.create_user(3104, 'max@copy-sizes.test');
select tests.create_user(3105, 'moe@copy-sizes.test');
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('copy-sizes-market', 1), tests.id('user', 3101), 'Penny Movers', 'marketplace', true, true, 0);
select count(*) from (select public.credit_grant(tests.id('copy-sizes-grant', n), tests.id('user', n), 10)
                        from generate_series(3102, 3105) n) g;

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

-- ann copies with a modest stake; mal stakes all his bot holds; max asks for 1e12 BTC a copy;
-- moe stakes little on a bot whose balance is at the column's bound.
select is(pg_temp.run_as('ann@copy-sizes.test', pg_temp.bot(2, 0.01, 0.01)), 'ok', 'ann makes a paper bot');
select is(pg_temp.run_as('mal@copy-sizes.test', pg_temp.bot(3, 999999999999, 999999999999)), 'ok',
          'mal makes a paper bot staking 999,999,999,999');
select is(pg_temp.run_as('max@copy-sizes.test', pg_temp.bot(4, 1, 1)), 'ok', 'max makes a paper bot');
select is(pg_temp.run_as('moe@copy-sizes.test', pg_temp.bot(5, 999999999999.99999999, 0.01)), 'ok',
          'moe makes a paper bot holding 999,999,999,999.99999999');
select is(pg_temp.run_as('ann@copy-sizes.test', pg_temp.subscribe(2)), 'ok', 'ann subscribes, copying');
select is(pg_temp.run_as('mal@copy-sizes.test', pg_temp.subscribe(3)), 'ok', 'mal subscribes, copying his stake');
select is(pg_temp.run_as('max@copy-sizes.test', pg_temp.subscribe(4, '{"mode": "fixed_quote", "amount": 1000000000000}')),
          'ok', 'max subscribes, copying 1e12 BTC a signal');
select is(pg_temp.run_as('moe@copy-sizes.test', pg_temp.subscribe(5)), 'ok', 'moe subscribes, copying');
insert into public.bot_leases (bot_id, epoch, expires_at)
select tests.id('copy-sizes-bot', n), 1, now() + interval '1 minute' from generate_series(2, 5) n;

-- Open ---------------------------------------------------------------------------------------
insert into public.signals (id, strategy_id, provider_id, pair, side, entry_price)
values (tests.id('copy-sizes-signal', 1), tests.id('copy-sizes-market', 1), tests.id('user', 3101), 'PEPE/BTC', 'long',
        0.00000001);
select results_eq(format('select executed, skipped from public.signal_fan_out(%L)', tests.id('copy-sizes-signal', 1)),
                  'values (2, 2)', 'the signal fans out despite copies no order can hold');
select bag_eq(format($$select subscriber_id, status, reason, amount from public.signal_executions
                        where signal_id = %L$$, tests.id('copy-sizes-signal', 1)),
              format($$values (%L::uuid, 'executed'::text, null::text, 1000000::numeric),
                              (%L::uuid, 'skipped'::text, 'invalid_sizing'::text, null::numeric),
                              (%L::uuid, 'skipped'::text, 'invalid_sizing'::text, null::numeric),
                              (%L::uuid, 'executed'::text, null::text, 1000000::numeric)$$,
                     tests.id('user', 3102), tests.id('user', 3103), tests.id('user', 3104), tests.id('user', 3105)),
              'ann and moe are copied; mal and max are skipped as invalid_sizing, with no amount');
select bag_eq(format('select user_id, amount, status from public.trades where signal_id = %L', tests.id('copy-sizes-signal', 1)),
              format($$values (%L::uuid, 1000000::numeric, 'open'::text), (%L::uuid, 1000000::numeric, 'open'::text)$$,
                     tests.id('user', 3102), tests.id('user', 3105)),
              'only ann''s and moe''s bots hold a copy');

-- Close --------------------------------------------------------------------------------------
update public.signals set status = 'closed', exit_price = 0.00000002 where id = tests.id('copy-sizes-signal', 1);
select results_eq(format($$select executed, skipped from public.signal_fan_out(%L, 'close')$$,
                         tests.id('copy-sizes-signal', 1)),
                  'values (2, 0)', 'the close fans out despite a bot whose balance cannot grow');
select bag_eq(format($$select user_id, status, exit_price from public.trades where signal_id = %L$$,
                     tests.id('copy-sizes-signal', 1)),
              format($$values (%L::uuid, 'closed'::text, 0.00000002::numeric), (%L::uuid, 'closed'::text, 0.00000002::numeric)$$,
                     tests.id('user', 3102), tests.id('user', 3105)),
              'both copies are closed at the exit price');
select results_eq(format($$select current_balance > initial_balance, current_balance from public.bots where id in (%L, %L)
                           order by initial_balance$$, tests.id('copy-sizes-bot', 2), tests.id('copy-sizes-bot', 5)),
                  $$values (true, 0.01997::numeric), (false, 999999999999.99999999::numeric)$$,
                  'ann''s bot takes its profit; moe''s balance stays at the bound of its column');

select * from finish();
rollback;
