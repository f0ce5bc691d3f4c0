-- Live prices for apps: each market's latest stored candle, kept by a statement-level
-- trigger on candles and published through Realtime. A user reads the latest candles of
-- the markets their bots trade (every pair of a multi-pair bot).

-- tables
create table public.market_latest_candles (
  exchange text not null,
  symbol text not null,
  timeframe text not null,
  open_time timestamptz not null,
  open numeric(28, 12) not null,
  high numeric(28, 12) not null,
  low numeric(28, 12) not null,
  close numeric(28, 12) not null,
  volume numeric(32, 12) not null default 0,
  updated_at timestamptz not null default now(),
  primary key (exchange, symbol, timeframe)
);
comment on table public.market_latest_candles is
  'The latest stored candle of each market (exchange, symbol, timeframe), kept from candles by a trigger; published through Realtime.';

-- RLS
alter table public.market_latest_candles enable row level security;
revoke all on public.market_latest_candles from public, anon, authenticated;
grant select on public.market_latest_candles to authenticated;
grant all on public.market_latest_candles to service_role;

create policy "Users read the latest candles of their bots' markets" on public.market_latest_candles
  for select to authenticated using (
    exists (
      select 1
        from public.bots b
       where b.user_id = (select auth.uid())
         and b.exchange = market_latest_candles.exchange
         and market_latest_candles.symbol = any (coalesce(b.pairs, array[b.trading_pair]))
    )
  );

-- functions
-- One upsert per statement (not per row): a write of many candles touches each market once.
create or replace function private.publish_latest_candles() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  insert into public.market_latest_candles as m
    (exchange, symbol, timeframe, open_time, open, high, low, close, volume, updated_at)
  select distinct on (n.exchange, n.symbol, n.timeframe)
         n.exchange, n.symbol, n.timeframe, n.open_time, n.open, n.high, n.low, n.close, n.volume, now()
    from new_rows n
   order by n.exchange, n.symbol, n.timeframe, n.open_time desc
  on conflict (exchange, symbol, timeframe) do update
     set open_time = excluded.open_time, open = excluded.open, high = excluded.high,
         low = excluded.low, close = excluded.close, volume = excluded.volume,
         updated_at = excluded.updated_at
   where excluded.open_time >= m.open_time;
  return null;
end;
$$;
revoke all on function private.publish_latest_candles() from public, anon, authenticated;

-- triggers
create trigger candles_publish_latest after insert on public.candles
  referencing new table as new_rows for each statement
  execute function private.publish_latest_candles();

alter publication supabase_realtime add table public.market_latest_candles;
