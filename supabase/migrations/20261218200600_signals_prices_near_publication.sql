-- A signal's prices are the market's around its publication and since, not a day's in
-- hindsight.
--
-- An entry price had to lie within the range of the pair's last day of candles, and an
-- exit price within the range since the day before the signal's publication. So a provider
-- could publish a long "entered" at the day's low, then close it at once "exited" at the
-- day's high, a price the market may have traded at twenty hours before the signal
-- existed: five such signals in one transaction made five wins of 22% on a market that had
-- only fallen since (and copies of them for every subscriber), 500 a day.
--
-- Now an entry lies within the market's range over the last hour (each market's latest
-- candle counts whatever its timeframe); it is checked when the fleet's candles of the pair
-- reach into the last hour (a candle's close, not its open: a daily candle opened this
-- morning is fresh), otherwise checked at the close. An exit lies within the range since
-- the signal's publication (5 minutes of slack; a market whose candles stopped before
-- keeps its latest candle's range, so a close stays possible). An unchecked entry outside
-- the range from the hour before publication to the close counts, for the result, as that
-- range's nearest price. Otherwise unchanged (20261218200100_signals_result_from_market).

-- ======================================================================================
-- Functions
-- ======================================================================================

create or replace function private.signal_lifecycle() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_low numeric;
  v_high numeric;
  v_last numeric;
  v_latest timestamptz;
  v_entry numeric;
  -- Alerts arrive through the service but speak for the provider.
  v_service boolean := private.is_service() and new.source <> 'tradingview';
begin
  if tg_op = 'INSERT' then
    -- The entry, like the exit, is a price the market traded at: over the last hour of the
    -- fleet's candles of the pair (each market's latest candle included, whatever its
    -- timeframe), when they reach into the last hour.
    if not v_service and new.entry_price is not null then
      -- When the fleet's latest candle of the pair closes (or will).
      select max(m.open_time + case m.timeframe when '1m' then interval '1 minute' when '5m' then interval '5 minutes'
                                                when '15m' then interval '15 minutes' when '30m' then interval '30 minutes'
                                                when '1h' then interval '1 hour' when '4h' then interval '4 hours'
                                                else interval '1 day' end)
        into v_latest from public.market_latest_candles m where m.symbol = new.pair;
      -- Candles of a market no bot trades any more say nothing of the price now.
      if v_latest >= now() - interval '1 hour' then
        select r.low, r.high into v_low, v_high from private.market_range(new.pair, now() - interval '1 hour') r;
      end if;
      if v_low is not null and (new.entry_price < v_low or new.entry_price > v_high) then
        raise exception 'entry price % is outside the market''s range for % over its last hour (% to %)',
          new.entry_price, new.pair, v_low, v_high
          using errcode = 'check_violation', constraint = 'signals_entry_within_market';
      end if;
    end if;
    new.status := 'open';
    new.action := 'entry';
    new.exit_price := null;
    new.result_pct := null;
    new.closed_at := null;
    return new;
  end if;

  if old.status in ('closed', 'cancelled') then
    raise exception 'signal % is % and can no longer change', old.id, old.status
      using errcode = 'check_violation', constraint = 'signals_closed_is_final';
  end if;
  if new.strategy_id <> old.strategy_id or new.provider_id <> old.provider_id or new.pair <> old.pair
     or new.side <> old.side or new.entry_price is distinct from old.entry_price
     or new.leverage <> old.leverage or new.source <> old.source then
    raise exception 'a signal''s strategy, pair, side, entry and leverage are fixed once published'
      using errcode = 'check_violation', constraint = 'signals_terms_fixed';
  end if;

  if new.status = 'cancelled' then
    if not v_service and exists (select 1 from private.signal_fanouts f where f.signal_id = old.id and f.phase = 'open') then
      raise exception 'signal % is live: close it at the market instead of cancelling it', old.id
        using errcode = 'check_violation', constraint = 'signals_cancel_before_entry';
    end if;
    new.closed_at := now();
    new.result_pct := null;
  elsif new.status = 'closed' or new.action in ('exit', 'close') then
    if not v_service then
      select m.close, m.open_time into v_last, v_latest
        from public.market_latest_candles m where m.symbol = new.pair order by m.open_time desc limit 1;
      -- An exit is a price the market traded at since the signal was published (or, on a
      -- market whose candles stopped before, its latest candle's).
      select r.low, r.high into v_low, v_high
        from private.market_range(new.pair, old.created_at - interval '5 minutes') r;
      if new.exit_price is null then
        new.exit_price := v_last;
      elsif v_low is not null and (new.exit_price < v_low or new.exit_price > v_high) then
        raise exception 'exit price % is outside the market''s range for % (% to %)', new.exit_price, new.pair, v_low, v_high
          using errcode = 'check_violation', constraint = 'signals_exit_within_market';
      end if;
    end if;
    if new.exit_price is null then
      raise exception 'closing a signal needs its exit_price'
        using errcode = 'not_null_violation', constraint = 'signals_closed_has_exit_price';
    end if;
    -- An entry the market never traded at (one published while the fleet held no recent
    -- candles of the pair, so unchecked) counts as the nearest price of the market's range
    -- from the hour before its publication up to now.
    v_entry := new.entry_price;
    if not v_service and v_entry is not null and v_low is not null and (v_entry < v_low or v_entry > v_high) then
      select r.low, r.high into v_low, v_high
        from private.market_range(new.pair, least(old.created_at, v_latest) - interval '1 hour') r;
      if v_entry < v_low or v_entry > v_high then
        v_entry := greatest(least(v_entry, v_high), v_low);
      end if;
    end if;
    new.status := 'closed';
    new.action := 'close';
    new.closed_at := now();
    -- Saturated at what the column holds: a close is always possible.
    new.result_pct := case when v_entry is not null then
      least(greatest(round((new.exit_price / v_entry - 1) * 100 * case new.side when 'long' then 1 else -1 end, 4),
                     -99999999.9999), 99999999.9999) end;
  else
    new.status := 'updated';
    new.action := 'update';
    new.exit_price := null;
  end if;
  return new;
end;
$$;
revoke all on function private.signal_lifecycle() from public, anon, authenticated;
