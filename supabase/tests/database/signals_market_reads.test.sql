-- Signals read a market's prices through its latest candles and its markets' primary keys,
-- not through every candle of the symbol: publishing, closing and fanning out a signal,
-- and valuing holdings from candles, read the market's own recent candles only, however
-- many other candles are stored. Reads are counted in this transaction's statistics of
-- candles and its partitions (rows read by sequential scans plus rows fetched by indexes).
-- Cast: 3301 pia (provider).
begin;
select plan(8);

select tests.create_user(3301, 'pia@signal-reads.test', 'provider');
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('signal-reads', 1), tests.id('user', 3301), 'Reads', 'marketplace', true, true, 0);
-- RDS/USDT traded between 95 and 105 on binance over the last hour, and up to 110 on bybit.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
select 'binance', 'RDS/USDT', '5m', date_trunc('minute', now()) - n * interval '5 minutes', 100, 105, 95, 100
  from generate_series(1, 12) n;
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
values ('bybit', 'RDS/USDT', '1m', date_trunc('minute', now()) - interval '3 minutes', 100, 110, 99, 101);
-- 40,000 candles of other markets over the last four weeks.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
select e, 'OTH' || s || '/USDT', '1m', date_trunc('minute', now()) - n * interval '1 minute', 1, 1, 1, 1
  from unnest(array['binance', 'bybit']) e, generate_series(1, 2) s, generate_series(1, 10000) n;

-- Rows of candles read so far in this transaction.
create function pg_temp.candle_reads() returns bigint
language sql as $$
  select coalesce(sum(coalesce(s.seq_tup_read, 0) + coalesce(s.idx_tup_fetch, 0)), 0)::bigint
    from pg_stat_xact_user_tables s
   where s.relid = 'public.candles'::regclass
      or s.relid in (select i.inhrelid from pg_inherits i where i.inhparent = 'public.candles'::regclass)
$$;

-- What a provider's statement raised: '<sqlstate> <constraint>' (or 'ok'), kept if it passed.
create function pg_temp.as_provider(p_sql text) returns text
language plpgsql as $$
declare
  v_state text;
  v_constraint text;
begin
  perform tests.authenticate_as('pia@signal-reads.test');
  execute p_sql;
  perform tests.clear_authentication();
  return 'ok';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  perform tests.clear_authentication();
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
end;
$$;

create function pg_temp.entry(p_key text, p_price text) returns text
language sql as $$
  select format($f$insert into public.signals (strategy_id, pair, side, entry_price, idempotency_key)
                   values (%L, 'RDS/USDT', 'long', %s, %L)$f$, tests.id('signal-reads', 1), p_price, p_key)
$$;

create temp table reads (step text primary key, n bigint);
insert into reads values ('start', pg_temp.candle_reads());

select is(pg_temp.as_provider(pg_temp.entry('high', '108')), 'ok',
          'an entry within the range of either exchange''s candles is published');
select is(pg_temp.as_provider(pg_temp.entry('low', '90')), '23514 signals_entry_within_market',
          'an entry below every exchange''s range is refused');
insert into reads values ('published', pg_temp.candle_reads());
select cmp_ok((select r.n from reads r where r.step = 'published') - (select r.n from reads r where r.step = 'start'),
              '<', 100::bigint, 'publishing read only the market''s recent candles');

select lives_ok(format($$select public.signal_fan_out(%L, 'open')$$,
                       (select s.id from public.signals s where s.idempotency_key = 'high')),
                'the signal fans out');
select is(pg_temp.as_provider($$update public.signals set action = 'close' where idempotency_key = 'high'$$), 'ok',
          'the provider closes it at the market');
select is((select s.exit_price from public.signals s where s.idempotency_key = 'high'), 101::numeric,
          '... at the latest candle''s close, on whichever exchange it is');
select lives_ok($$select private.holdings_prices_from_candles()$$, 'holdings are valued from candles');
insert into reads values ('closed', pg_temp.candle_reads());
select cmp_ok((select r.n from reads r where r.step = 'closed') - (select r.n from reads r where r.step = 'published'),
              '<', 100::bigint, 'fanning out, closing and valuing read only the market''s recent candles');

select * from finish();
rollback;
