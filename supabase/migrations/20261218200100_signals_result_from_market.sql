-- A signal can always be closed, and its result is one the market could have given.
--
-- An entry price is checked against the market only when the fleet holds a candle of the
-- pair at most two days old (20261217900000): on a pair no bot trades, any entry was
-- published. Closing needs the market's prices (signals_exit_needs_market), so such a
-- signal closed once a bot brought candles of the pair, at an exit within their range. An
-- exit about a millionfold the entry overflowed result_pct (numeric(12,4)): the close
-- failed with numeric_value_out_of_range and the signal stayed open for ever; and a
-- smaller one wrote whatever result the provider chose (a long "entered" at a hundredth of
-- the price made a win of 9,900%) into the marketplace's public figures.
--
-- Now, when a provider (or their TradingView alert) closes a signal whose entry lies
-- outside the market's range from the day before its publication up to the close, the
-- result runs from the nearest price of that range instead. The exit may already be any
-- price of the range over the signal's life, and a checked entry any price of the last
-- day's, so an unchecked entry now claims no more than a checked one could: at best the
-- whole range the market moved through, never a price it did not trade at. An entry the
-- market traded at gives the result as before. The result saturates at
-- the bounds of its column (+-99,999,999.9999%), so a close never fails on it. The copies
-- of subscribers close at the signal's own prices (their profits are bounded by
-- 20261218200000_signals_close_bounded_copies). Closes the fleet makes itself (not
-- TradingView) name their prices and are only saturated.

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
    -- The entry, like the exit, is a price the market traded at: over the last day of the
    -- fleet's candles of the pair, when it holds any.
    if not v_service and new.entry_price is not null then
      select max(m.open_time) into v_latest from public.market_latest_candles m where m.symbol = new.pair;
      -- Candles of a market no bot trades any more say nothing of today's price.
      if v_latest >= now() - interval '2 days' then
        select r.low, r.high into v_low, v_high
          from private.market_range(new.pair, v_latest - interval '1 day' - interval '5 minutes') r;
      end if;
      if v_low is not null and (new.entry_price < v_low or new.entry_price > v_high) then
        raise exception 'entry price % is outside the market''s range for % over its last day (% to %)',
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
      select r.low, r.high into v_low, v_high
        from private.market_range(new.pair, least(old.created_at, v_latest - interval '1 day') - interval '5 minutes') r;
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
    -- from the day before its publication up to now.
    v_entry := new.entry_price;
    if not v_service and v_entry is not null and v_low is not null and (v_entry < v_low or v_entry > v_high) then
      select r.low, r.high into v_low, v_high
        from private.market_range(new.pair, least(old.created_at, v_latest) - interval '1 day' - interval '5 minutes') r;
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
