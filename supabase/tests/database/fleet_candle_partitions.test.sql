-- Fleet partitioned candles: candles is partitioned by calendar month (UTC) of open_time;
-- the months ahead exist; a candle of a month without a partition waits in the default
-- partition and the fleet gives it its month; the latest-candle trigger still fires once per
-- statement; partitions are reached only through the parent; candles are never dropped by
-- retention unless asked.
begin;
select plan(22);

select tests.create_user(1, 'candles@partitions.test');

select is((select relkind::text from pg_class where oid = 'public.candles'::regclass), 'p',
          'candles is a partitioned table');
select is((select pg_get_partkeydef('public.candles'::regclass)), 'RANGE (open_time)', '... by range of open_time');
select is((select step from private.history_partitions where table_name = 'candles'), interval '1 month',
          '... one partition per month');
select ok(to_regclass(format('partitions.candles_p%s',
                             to_char(date_trunc('month', now() + interval '1 month', 'UTC') at time zone 'UTC', 'YYYYMMDD')))
          is not null, 'next month has its partition');
select is((select pg_get_expr(c.relpartbound, c.oid) from pg_class c
            where c.oid = to_regclass(format('partitions.candles_p%s',
                    to_char(date_trunc('month', now(), 'UTC') at time zone 'UTC', 'YYYYMMDD')))),
          format('FOR VALUES FROM (%L) TO (%L)',
                 date_trunc('month', now(), 'UTC'), (date_trunc('month', now(), 'UTC') at time zone 'UTC' + interval '1 month') at time zone 'UTC'),
          'a partition spans its calendar month from the first, 00:00 UTC');
select is(public.create_history_partitions(), 0, 'the migration made the months up to two months ahead');

-- A download of old candles: they wait in the default partition, then get their month.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
select 'binance', 'OLD/USDT', '1d', timestamptz '2015-03-01 00:00+00' + n * interval '1 day', 1, 2, 1, 2
  from generate_series(0, 40) n;
select is((select count(*)::int from partitions.candles_default), 41, 'candles of months without a partition wait in the default partition');
select is((select close from public.market_latest_candles where symbol = 'OLD/USDT'), 2::numeric,
          'the latest candle of the market is published');
select is(public.create_history_partitions(), 2, 'the fleet gives them their months');
select is((select count(*)::int from partitions.candles_default), 0, '... and the default partition is empty');
select is((select array_agg(distinct tableoid::regclass::text order by tableoid::regclass::text)
             from public.candles where symbol = 'OLD/USDT'),
          array['partitions.candles_p20150301', 'partitions.candles_p20150401'], '... each candle in its month');

-- A download makes the months of its period first: its candles never wait.
select is(public.create_history_partitions_between('candles', '2016-01-20', '2016-03-02'), 3,
          'the months of a period are made before a download');
select is(public.create_history_partitions_between('candles', '2016-01-01', '2016-03-31'), 0, '... once');
select throws_ok($$select public.create_history_partitions_between('trades', now(), now())$$, '22023',
                 'create_history_partitions_between: history must be one of api_usage_minutes, bot_logs, candles, notifications, webhook_events', 'only a partitioned history');
select throws_ok($$select public.create_history_partitions_between('candles', now(), now() - interval '1 day')$$, '22023',
                 'create_history_partitions_between: from and until must be finite, from <= until, at most 100 years apart',
                 'a period must run forward');
select is(tests.try_as('candles@partitions.test', $$select public.create_history_partitions_between('candles', now(), now())$$),
          'denied', 'a user cannot create partitions');

-- Only through the parent.
select is(tests.try_as('candles@partitions.test', $$select count(*) from partitions.candles_default$$), 'denied',
          'a user cannot read a partition directly');
select is(tests.try_as('candles@partitions.test', $$select * from public.candles where symbol = 'OLD/USDT'$$), 'rows=41',
          'a signed-in user reads candles through the parent');

-- The fleet's downloads write a month straight into its partition (insert only); users never.
select is(tests.try_as('service_role', $$insert into partitions.candles_p20160201 (exchange, symbol, timeframe, open_time, open, high, low, close)
                                         values ('binance', 'NEW/USDT', '1d', '2016-02-03', 1, 2, 1, 2)$$), 'rows=1',
          'the service role inserts into a month partition of candles it made');
select is(tests.try_as('service_role', $$insert into partitions.candles_p20150301 (exchange, symbol, timeframe, open_time, open, high, low, close)
                                         values ('binance', 'NEW/USDT', '1d', '2015-03-09', 1, 2, 1, 2)$$), 'rows=1',
          '... and into one made when candles of its month left the default partition');
select is(tests.try_as('service_role', $$delete from partitions.candles_p20160201$$), 'denied',
          '... but only inserts: everything else goes through the parent');
select is(tests.try_as('candles@partitions.test', $$insert into partitions.candles_p20160201 (exchange, symbol, timeframe, open_time, open, high, low, close)
                                                    values ('binance', 'NEW/USDT', '1d', '2016-02-04', 1, 2, 1, 2)$$), 'denied',
          'a user cannot write a partition');

select * from finish();
rollback;
