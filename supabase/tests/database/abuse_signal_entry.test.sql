-- Abuse: a provider writing their own track record through the entry price. A signal's
-- result runs from its entry to its exit; the exit must lie within the market's range, so
-- an entry far from the market (a long "entered" at half the price, closed at the market)
-- would still make a win that never happened, for the public figures and for every
-- subscriber's paper copy (copied at the entry price). On a pair the fleet holds prices
-- for, the entry price must lie within the range of its last day.
-- Cast: 3201 pat (provider).
begin;
select plan(7);

select tests.create_user(3201, 'pat@signal-entry.test', 'provider');
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('signal-entry-market', 1), tests.id('user', 3201), 'Entries', 'marketplace', true, true, 0);
-- ENT/USDT traded between 95 and 105 over the last hours, last at 100.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
select 'binance', 'ENT/USDT', '5m', date_trunc('minute', now()) - n * interval '5 minutes', 100, 105, 95, 100
  from generate_series(1, 12) n;
-- OLD/USDT: candles at 100, last stored ten days ago (no bot trades it any more).
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
select 'binance', 'OLD/USDT', '5m', date_trunc('minute', now()) - interval '10 days' - n * interval '5 minutes',
       100, 105, 95, 100
  from generate_series(1, 12) n;

-- What a provider's statement raised: '<sqlstate> <constraint>' (or 'ok'), kept if it passed.
create function pg_temp.publish(p_sql text) returns text
language plpgsql as $$
declare
  v_state text;
  v_constraint text;
begin
  perform tests.authenticate_as('pat@signal-entry.test');
  execute p_sql;
  perform tests.clear_authentication();
  return 'ok';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  perform tests.clear_authentication();
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
end;
$$;

create function pg_temp.entry(p_key text, p_price text, p_side text default 'long') returns text
language sql as $$
  select format($f$insert into public.signals (strategy_id, pair, side, entry_price, idempotency_key)
                   values (%L, 'ENT/USDT', %L, %s, %L)$f$, tests.id('signal-entry-market', 1), p_side, p_price, p_key)
$$;

select is(pg_temp.publish(pg_temp.entry('half', '50')), '23514 signals_entry_within_market',
          'a long "entered" at half the market price is refused');
select is(pg_temp.publish(pg_temp.entry('double', '200', 'short')), '23514 signals_entry_within_market',
          'a short "entered" at twice the market price is refused');
select is((select count(*)::int from public.signals where strategy_id = tests.id('signal-entry-market', 1)), 0,
          '... and neither was published');
select is(pg_temp.publish(pg_temp.entry('edge', '95')), 'ok', 'an entry the market traded at is published');
select is(pg_temp.publish(pg_temp.entry('market', 'null')), 'ok', 'so is an entry at the market (no price)');
select is(pg_temp.publish(format($$update public.signals set action = 'close' where idempotency_key = 'edge'
                                     and strategy_id = %L$$, tests.id('signal-entry-market', 1))), 'ok',
          'the published one closes at the market');
select is(pg_temp.publish(format($$insert into public.signals (strategy_id, pair, side, entry_price, idempotency_key)
                                     values (%L, 'OLD/USDT', 'long', 200, 'stale')$$, tests.id('signal-entry-market', 1))), 'ok',
          'an entry on a market whose stored candles are days old is not held to them');

select * from finish();
rollback;
