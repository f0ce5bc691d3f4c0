-- Live prices: every write of candles keeps each market's latest candle (never an older
-- one), published through Realtime; a user reads those of the markets their bots trade,
-- every pair of a multi-pair bot included.
begin;
select plan(7);

select tests.create_user(1, 'lia@latest.test');
select tests.create_user(2, 'leo@latest.test');

select public.exchange_markets_store('binance', jsonb_build_object(
  'SOL/USDT', jsonb_build_object('id', 'SOLUSDT', 'symbol', 'SOL/USDT', 'base', 'SOL', 'quote', 'USDT', 'type', 'spot', 'active', true),
  'LTC/USDT', jsonb_build_object('id', 'LTCUSDT', 'symbol', 'LTC/USDT', 'base', 'LTC', 'quote', 'USDT', 'type', 'spot', 'active', true)),
  now());
insert into public.bots (user_id, name, exchange, trading_pair, pairs, timeframe, strategy, initial_balance, stake_amount, max_open_trades)
values (tests.id('user', 1), 'two pairs', 'binance', 'SOL/USDT', '{SOL/USDT,LTC/USDT}', '5m', 'rsi', 100, 10, 2);

-- One statement writes two markets, several candles each, out of order.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
values ('binance', 'SOL/USDT', '5m', '2026-01-01 00:05+00', 2, 2, 2, 2),
       ('binance', 'SOL/USDT', '5m', '2026-01-01 00:10+00', 3, 3, 3, 3),
       ('binance', 'SOL/USDT', '5m', '2026-01-01 00:00+00', 1, 1, 1, 1),
       ('binance', 'LTC/USDT', '5m', '2026-01-01 00:00+00', 7, 7, 7, 7),
       ('binance', 'XRP/USDT', '5m', '2026-01-01 00:00+00', 9, 9, 9, 9);
select results_eq(
  $$select symbol, open_time, close from public.market_latest_candles
     where symbol in ('SOL/USDT', 'LTC/USDT', 'XRP/USDT') order by symbol$$,
  $$values ('LTC/USDT', timestamptz '2026-01-01 00:00+00', 7::numeric),
           ('SOL/USDT', timestamptz '2026-01-01 00:10+00', 3::numeric),
           ('XRP/USDT', timestamptz '2026-01-01 00:00+00', 9::numeric)$$,
  'a write of many candles keeps the latest of each market');

-- A late older candle (a download filling history) does not replace the latest.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
values ('binance', 'SOL/USDT', '5m', '2025-12-31 23:55+00', 5, 5, 5, 5);
select is((select close from public.market_latest_candles where symbol = 'SOL/USDT'), 3::numeric,
  'an older candle written later leaves the latest in place');
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
values ('binance', 'SOL/USDT', '5m', '2026-01-01 00:15+00', 4, 4, 4, 4);
select is((select close from public.market_latest_candles where symbol = 'SOL/USDT'), 4::numeric,
  'the next candle becomes the latest');

select ok(exists (select 1 from pg_publication_tables
                   where pubname = 'supabase_realtime' and tablename = 'market_latest_candles'),
  'the latest candles are published through Realtime');

select tests.authenticate_as('lia@latest.test');
select results_eq(
  $$select symbol from public.market_latest_candles where symbol in ('SOL/USDT', 'LTC/USDT', 'XRP/USDT') order by symbol$$,
  array['LTC/USDT', 'SOL/USDT'],
  'a user reads the latest candles of every pair of their bots, not of other markets');
select tests.authenticate_as('leo@latest.test');
select is_empty(
  $$select 1 from public.market_latest_candles where symbol in ('SOL/USDT', 'LTC/USDT', 'XRP/USDT')$$,
  'a user without bots on those markets reads none of them');
select throws_ok(
  $$insert into public.market_latest_candles (exchange, symbol, timeframe, open_time, open, high, low, close)
    values ('binance', 'SOL/USDT', '5m', now(), 1, 1, 1, 1)$$,
  '42501', null, 'users cannot write latest candles');

select * from finish();
rollback;
