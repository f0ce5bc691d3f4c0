-- Periods in which an exchange has no candle of a market, as a download found them.
--
-- A download resumes after the last candle stored of its period when the candle at its
-- start is stored. When the exchange has nothing at the start (a market listed after
-- `--since`, a halt), there is no such candle, and the same command run again fetched the
-- whole period again. The downloader records the hole it found before the market's first
-- candle here, in the transaction that stores the candles after it; a later download of
-- the market from inside the hole starts at its end, and resumes from there.

create table private.candle_empty_ranges (
  exchange text not null,
  symbol text not null,
  timeframe text not null,
  empty_from timestamptz not null,
  empty_until timestamptz not null,
  recorded_at timestamptz not null default now(),
  primary key (exchange, symbol, timeframe, empty_from),
  constraint candle_empty_ranges_ordered check (empty_from < empty_until)
);

comment on table private.candle_empty_ranges is
  'Periods [empty_from, empty_until) in which the exchange had no candle of the market, found by downloads';

revoke all on private.candle_empty_ranges from public, anon, authenticated;
grant select, insert, update on private.candle_empty_ranges to service_role;
