-- Abuse: a provider writing their own results through an entry nobody checked. An entry is
-- checked against the market only when the fleet holds recent candles of the pair; on a
-- pair no bot trades, any entry is published. Once a bot brings the pair's candles the
-- signal closes at an exit within their range, and its result runs from that entry: a long
-- "entered" at a ten-millionth of the price overflowed result_pct, so the signal could
-- never be closed, and a short "entered" at ten thousand times the price made a win of
-- 99.99% of a market that moved 10%. Such an entry now counts as the nearest price of the
-- market's range (the day before publication to the close), and a result past what its
-- column holds saturates.
-- Cast: 3401 pat (provider), 3402 ann (subscriber).
begin;
select plan(13);

select tests.create_user(3401, 'pat@signal-result.test', 'provider');
select tests.create_user(3402, 'ann@signal-result.test');
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('signal-result-market', 1), tests.id('user', 3401), 'Results', 'marketplace', true, true, 0);
select public.credit_grant(tests.id('signal-result-grant', 1), tests.id('user', 3402), 10);
-- STA/USDT: candles at 100, last stored ten days ago (no bot trades it any more).
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
select 'binance', 'STA/USDT', '5m', date_trunc('minute', now()) - interval '10 days' - n * interval '5 minutes',
       100, 105, 95, 100
  from generate_series(1, 12) n;
-- WID/USDT: a market that went from a millionth to 10 over the last hour.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
select 'binance', 'WID/USDT', '5m', date_trunc('minute', now()) - n * interval '5 minutes', 1, 10, 0.000001, 1
  from generate_series(1, 12) n;

-- What a provider's statement raised: '<sqlstate> <constraint>' (or 'ok'), kept if it passed.
create function pg_temp.as_pat(p_sql text) returns text
language plpgsql as $$
declare
  v_state text;
  v_constraint text;
begin
  perform tests.authenticate_as('pat@signal-result.test');
  execute p_sql;
  perform tests.clear_authentication();
  return 'ok';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  perform tests.clear_authentication();
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
end;
$$;

create function pg_temp.publish(p_key text, p_pair text, p_side text, p_entry numeric) returns text
language sql as $$
  select pg_temp.as_pat(format($f$insert into public.signals (strategy_id, pair, side, entry_price, idempotency_key)
                                  values (%L, %L, %L, %s, %L)$f$,
                               tests.id('signal-result-market', 1), p_pair, p_side, p_entry, p_key))
$$;

create function pg_temp.close(p_key text, p_exit numeric) returns text
language sql as $$
  select pg_temp.as_pat(format($f$update public.signals set status = 'closed', exit_price = %s
                                   where strategy_id = %L and idempotency_key = %L$f$,
                               p_exit, tests.id('signal-result-market', 1), p_key))
$$;

create function pg_temp.result(p_key text) returns numeric
language sql as $$
  select g.result_pct from public.signals g
   where g.strategy_id = tests.id('signal-result-market', 1) and g.idempotency_key = p_key
$$;

-- ann copies with a paper bot on STA/USDT.
select tests.authenticate_as('ann@signal-result.test');
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, status)
values (tests.id('signal-result-bot', 1), tests.id('user', 3402), 'copies', 'binance', 'STA/USDT', '1h', 'rsi', 1000, 100,
        'running');
select public.subscribe_to_strategy(tests.id('signal-result-market', 1), true, tests.id('signal-result-bot', 1));
select tests.clear_authentication();
insert into public.bot_leases (bot_id, epoch, expires_at)
values (tests.id('signal-result-bot', 1), 1, now() + interval '1 minute');

-- Published while the fleet holds no recent price of STA/USDT: nothing checks the entries.
select is(pg_temp.publish('pump', 'STA/USDT', 'long', 0.00001), 'ok', 'a long "entered" at a ten-millionth of the price is published');
select is(pg_temp.publish('dump', 'STA/USDT', 'short', 1000000), 'ok', 'so is a short "entered" at ten thousand times it');
select is(pg_temp.publish('fair', 'STA/USDT', 'long', 100), 'ok', 'and a long at the price');
select is((select executed from public.signal_fan_out(
             (select g.id from public.signals g where g.idempotency_key = 'pump'
                 and g.strategy_id = tests.id('signal-result-market', 1)))), 1, 'ann copies the first');

-- A bot trades STA/USDT again: between 95 and 105 over the last hour.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
select 'binance', 'STA/USDT', '5m', date_trunc('minute', now()) - n * interval '5 minutes', 100, 105, 95, 100
  from generate_series(1, 12) n;

select is(pg_temp.close('pump', 100), 'ok', 'the long closes at the market');
select is(pg_temp.result('pump'), 5.2632, '... its result running from the bottom of the market''s range, not from its entry');
select is(pg_temp.close('dump', 95), 'ok', 'the short closes at the market');
select is(pg_temp.result('dump'), 9.5238, '... its result running from the top of the range, not from its entry');
select is(pg_temp.close('fair', 104), 'ok', 'the long at the price closes');
select is(pg_temp.result('fair'), 4.0000, '... with the result of its own entry');
select is((select s.performance ->> 'wins' || '/' || (s.performance ->> 'losses') from public.strategies s
            where s.id = tests.id('signal-result-market', 1)) || ' ' || (select s.performance ->> 'total_return_pct'
            from public.strategies s where s.id = tests.id('signal-result-market', 1)), '3/0 18.7870',
          'the public figures add up what the market gave');
select results_eq(format($$select executed, skipped from public.signal_fan_out(%L, 'close')$$,
                         (select g.id from public.signals g where g.idempotency_key = 'pump'
                             and g.strategy_id = tests.id('signal-result-market', 1))),
                  'values (1, 0)', 'ann''s copy of the long closes');

-- A market that moved ten-millionfold within the day: a result past its column, saturated.
select is(pg_temp.publish('wide', 'WID/USDT', 'long', 0.000001) || ' ' || pg_temp.close('wide', 10) || ' '
          || pg_temp.result('wide'), 'ok ok 99999999.9999', 'a result past what its column holds saturates');

select * from finish();
rollback;
