-- Abuse: one subscriber whose copy no row can close stops a signal's close for everyone.
-- A copy is sized by its subscriber (a fixed_base sizing of up to 1e12 units, a leverage of
-- up to 125 on a balance of his choosing), so its notional at the entry is his to pick. When
-- the market then moves by a factor of a few hundred (a penny coin, a signal on a pair whose
-- candles the entry was not checked against), his profit at the exit passes what a trade
-- holds (numeric(28,12): below 1e16), and the close fan-out, which writes every copy's close
-- in one statement, failed for every subscriber on every retry: their copies stayed open.
-- A copy's profit, fee and profit percentage now stop at the bounds of their columns; the
-- honest subscribers' copies are closed exactly as those of the same signal without him.
-- Cast: 3301 pat (provider), 3302 ann (honest, copies both strategies), 3303 bob (attacker).
begin;
select plan(12);

select tests.create_user(3301, 'pat@fanout-poison.test', 'provider');
select tests.create_user(3302, 'ann@fanout-poison.test');
select tests.create_user(3303, 'bob@fanout-poison.test');
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('fanout-poison-market', 1), tests.id('user', 3301), 'With Bob', 'marketplace', true, true, 0),
       (tests.id('fanout-poison-market', 2), tests.id('user', 3301), 'Without Bob', 'marketplace', true, true, 0);
select count(*) from (select public.credit_grant(tests.id('fanout-poison-grant', n), tests.id('user', n), 10)
                        from generate_series(3302, 3303) n) g;
-- POI/USDT traded between 10 and 100,000 over the last hours.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
select 'binance', 'POI/USDT', '5m', date_trunc('minute', now()) - n * interval '5 minutes', 100, 100000, 10, 100
  from generate_series(1, 12) n;

-- Run a statement as an actor and keep its effects: 'ok', 'denied' or 'error=<sqlstate>'.
create function pg_temp.run_as(p_actor text, p_sql text) returns text
language plpgsql as $$
declare
  v_result text := 'ok';
begin
  begin
    if p_actor is not null then
      perform tests.authenticate_as(p_actor);
    end if;
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
                                           initial_balance, stake_amount, leverage, status)
                   values (%L, (select auth.uid()), 'copies', 'binance', 'POI/USDT', '1h', 'rsi', %s, %s, 125, 'running')$f$,
                tests.id('fanout-poison-bot', p_n), p_balance, p_stake)
$$;

create function pg_temp.subscribe(p_market integer, p_bot integer, p_sizing text default '{}') returns text
language sql as $$
  select format($f$select public.subscribe_to_strategy(%L, true, %L, %L)$f$,
                tests.id('fanout-poison-market', p_market), tests.id('fanout-poison-bot', p_bot), p_sizing)
$$;

select is(pg_temp.run_as('ann@fanout-poison.test', pg_temp.bot(1, 1000, 100)), 'ok', 'ann makes a paper bot for each strategy');
select is(pg_temp.run_as('ann@fanout-poison.test', pg_temp.bot(2, 1000, 100)), 'ok', '... two alike');
select is(pg_temp.run_as('bob@fanout-poison.test', pg_temp.bot(3, 100000000000, 1)), 'ok',
          'bob makes a paper bot holding 1e11');
select is(pg_temp.run_as('ann@fanout-poison.test', pg_temp.subscribe(1, 1) || '; ' || pg_temp.subscribe(2, 2)), 'ok',
          'ann copies both strategies');
select is(pg_temp.run_as('bob@fanout-poison.test', pg_temp.subscribe(1, 3, '{"mode": "fixed_base", "amount": 1000000000000}')),
          'ok', 'bob copies the first, 1e12 units a signal at a leverage of 125');
insert into public.bot_leases (bot_id, epoch, expires_at)
select tests.id('fanout-poison-bot', n), 1, now() + interval '1 minute' from generate_series(1, 3) n;

create function pg_temp.sig(p_market integer) returns uuid
language sql as $$
  select g.id from public.signals g where g.strategy_id = tests.id('fanout-poison-market', p_market)
$$;

-- The same signal on both strategies, at the bottom of the market's range.
select is(pg_temp.run_as('pat@fanout-poison.test', format(
            $$insert into public.signals (strategy_id, pair, side, entry_price, leverage)
              values (%L, 'POI/USDT', 'long', 10, 125), (%L, 'POI/USDT', 'long', 10, 125)$$,
            tests.id('fanout-poison-market', 1), tests.id('fanout-poison-market', 2))), 'ok',
          'pat publishes the same long on both strategies');
select results_eq(format($$select (select executed from public.signal_fan_out(%L)), (select executed from public.signal_fan_out(%L))$$,
                         pg_temp.sig(1), pg_temp.sig(2)),
                  'values (2, 1)', 'both signals are copied: ann and bob on the first, ann on the second');

-- Both close at the top of the range.
select is(pg_temp.run_as('pat@fanout-poison.test', format(
            $$update public.signals set status = 'closed', exit_price = 100000 where id in (%L, %L)$$,
            pg_temp.sig(1), pg_temp.sig(2))), 'ok',
          'pat closes both at the top of the range');
select is(pg_temp.run_as(null, format($$select public.signal_fan_out(%L, 'close')$$, pg_temp.sig(1))),
          'ok', 'the close fans out despite bob''s copy, whose profit no trade holds');
select is(pg_temp.run_as(null, format($$select public.signal_fan_out(%L, 'close')$$, pg_temp.sig(2))),
          'ok', 'so does the same close without him');
select results_eq(format($$select t.status, t.amount, t.price, t.exit_price, t.fee, t.profit, t.profit_percentage, b.current_balance
                             from public.trades t join public.bots b on b.id = t.bot_id
                            where t.signal_id in (%L, %L) and t.user_id = %L order by t.signal_id = %L$$,
                         pg_temp.sig(1), pg_temp.sig(2), tests.id('user', 3302),
                         pg_temp.sig(2)),
                  format($$select t.status, t.amount, t.price, t.exit_price, t.fee, t.profit, t.profit_percentage, b.current_balance
                             from public.trades t join public.bots b on b.id = t.bot_id
                            where t.signal_id = %L and t.user_id = %L
                           union all
                           select t.status, t.amount, t.price, t.exit_price, t.fee, t.profit, t.profit_percentage, b.current_balance
                             from public.trades t join public.bots b on b.id = t.bot_id
                            where t.signal_id = %L and t.user_id = %L$$,
                         pg_temp.sig(2), tests.id('user', 3302),
                         pg_temp.sig(2), tests.id('user', 3302)),
                  'ann''s copy of the first closes exactly as her copy of the second, without bob');
select results_eq(format($$select b.status, b.profit, b.profit_percentage = a.profit_percentage
                             from public.trades b, public.trades a
                            where b.signal_id = %L and b.user_id = %L and a.signal_id = b.signal_id and a.user_id = %L$$,
                         pg_temp.sig(1), tests.id('user', 3303), tests.id('user', 3302)),
                  $$values ('closed'::text, 9999999999999999.999999999999::numeric, true)$$,
                  'bob''s copy closes too, its profit at the bound of its column, its percentage the market''s');

select * from finish();
rollback;
