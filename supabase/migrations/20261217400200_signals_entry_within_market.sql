-- A signal's entry price lies within the market's range, as its exit price does.
--
-- A signal's result runs from its entry price to its exit price. The exit was held to the
-- range the pair traded in (signals_exit_within_market), the entry was not: a provider
-- could publish a long "entered" at half the market price and close it at the market, a
-- +100% win that never happened, in the strategy's public figures and in every
-- subscriber's paper copy (copies are filled at the signal's entry price). An entry price
-- given by a provider (or a TradingView alert) must now lie within the range of the last
-- day of the fleet's candles of the pair (23514, signals_entry_within_market, naming the
-- range). A pair the fleet holds no candles for is not checked, as before; the service is
-- not bound. Otherwise unchanged from 20261206100700_signals_exits_and_limits.

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
  -- Alerts arrive through the service but speak for the provider.
  v_service boolean := private.is_service() and new.source <> 'tradingview';
begin
  if tg_op = 'INSERT' then
    -- The entry, like the exit, is a price the market traded at: over the last day of the
    -- fleet's candles of the pair, when it holds any.
    if not v_service and new.entry_price is not null then
      select max(c.open_time) into v_latest from public.candles c where c.symbol = new.pair;
      select min(c.low), max(c.high) into v_low, v_high
        from public.candles c
       where c.symbol = new.pair and c.open_time >= v_latest - interval '1 day' - interval '5 minutes';
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
      select c.close, c.open_time into v_last, v_latest
        from public.candles c where c.symbol = new.pair order by c.open_time desc limit 1;
      select min(c.low), max(c.high) into v_low, v_high
        from public.candles c
       where c.symbol = new.pair and c.open_time >= least(old.created_at, v_latest - interval '1 day') - interval '5 minutes';
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
    new.status := 'closed';
    new.action := 'close';
    new.closed_at := now();
    new.result_pct := case when new.entry_price is not null then
      round((new.exit_price / new.entry_price - 1) * 100 * case new.side when 'long' then 1 else -1 end, 4) end;
  else
    new.status := 'updated';
    new.action := 'update';
    new.exit_price := null;
  end if;
  return new;
end;
$$;
revoke all on function private.signal_lifecycle() from public, anon, authenticated;
