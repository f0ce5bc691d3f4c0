-- Abuse: a provider writing wins with hindsight. An entry had to lie within the pair's last
-- day of candles and an exit within the range since the day before publication, so a long
-- "entered" at the day's low and closed at once "exited" at the day's high, a price from
-- before the signal existed, made a win on a market that had only fallen since: five in one
-- transaction, 500 a day, copied by every subscriber. An entry now lies within the last
-- hour's range, an exit within the range since publication.
-- Cast: 3801 pat (provider).
begin;
select plan(9);

select tests.create_user(3801, 'pat@hindsight.test', 'provider');
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('hindsight-market', 1), tests.id('user', 3801), 'Hindsight', 'marketplace', true, true, 0);
-- HS/USDT over the last day, hourly: 110 twenty hours ago, 90 ten hours ago, 95 to 100 since.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
select 'binance', 'HS/USDT', '1h', date_trunc('hour', now()) - n * interval '1 hour', 98,
       case when n = 20 then 110 else 100 end, case when n = 10 then 90 else 95 end, 97
  from generate_series(1, 23) n;
-- DAY/USDT: daily candles only, today's between 50 and 60 so far.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
values ('binance', 'DAY/USDT', '1d', date_trunc('day', now()) - interval '1 day', 40, 45, 35, 42),
       ('binance', 'DAY/USDT', '1d', date_trunc('day', now()), 55, 60, 50, 58);

-- What a provider's statement raised: '<sqlstate> <constraint>' (or 'ok'), kept if it passed.
create function pg_temp.as_pat(p_sql text) returns text
language plpgsql as $$
declare
  v_state text;
  v_constraint text;
begin
  perform tests.authenticate_as('pat@hindsight.test');
  execute p_sql;
  perform tests.clear_authentication();
  return 'ok';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  perform tests.clear_authentication();
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
end;
$$;

create function pg_temp.publish(p_key text, p_pair text, p_entry numeric) returns text
language sql as $$
  select pg_temp.as_pat(format($f$insert into public.signals (strategy_id, pair, side, entry_price, idempotency_key)
                                  values (%L, %L, 'long', %s, %L)$f$,
                               tests.id('hindsight-market', 1), p_pair, p_entry, p_key))
$$;

create function pg_temp.close(p_key text, p_exit numeric) returns text
language sql as $$
  select pg_temp.as_pat(format($f$update public.signals set status = 'closed', exit_price = %s
                                   where strategy_id = %L and idempotency_key = %L$f$,
                               p_exit, tests.id('hindsight-market', 1), p_key))
$$;

select is(pg_temp.publish('low', 'HS/USDT', 90), '23514 signals_entry_within_market',
          'a long "entered" at the day''s low of ten hours ago is refused');
select is(pg_temp.publish('now', 'HS/USDT', 96), 'ok', 'one entered at a price of the last hour is published');
select is(pg_temp.close('now', 110), '23514 signals_exit_within_market',
          'it cannot close at the day''s high of twenty hours ago, before it was published');
select is(pg_temp.close('now', 99), 'ok', 'it closes at a price the market traded at since');
select is((select result_pct from public.signals where idempotency_key = 'now'
              and strategy_id = tests.id('hindsight-market', 1)), 3.1250, '... with the result of those prices');
select is((select s.performance ->> 'avg_return_pct' from public.strategies s where s.id = tests.id('hindsight-market', 1)),
          '3.1250', 'the public figures hold that result alone');

-- A daily market is fresh while its candle of today runs.
select is(pg_temp.publish('day-out', 'DAY/USDT', 40), '23514 signals_entry_within_market',
          'on a daily market, yesterday''s price is refused');
select is(pg_temp.publish('day-in', 'DAY/USDT', 55), 'ok', 'today''s is published');
select is(pg_temp.close('day-in', 59), 'ok', 'and closes within today''s range');

select * from finish();
rollback;
