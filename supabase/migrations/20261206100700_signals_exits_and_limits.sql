-- A provider's track record follows the market, not the provider.
-- * An exit is priced from the market data the fleet holds: without an exit_price the
--   signal closes at the last close of its pair; with one, the price must lie within the
--   range the pair traded in over the signal's life or the last day of the fleet's candles,
--   whichever is longer. Only a pair the fleet holds no candles for is taken at its word.
-- * A signal can be cancelled only before it goes live (before its entry is announced to
--   subscribers); after that it can only be closed, so every signal that went live counts
--   in the public figures.
-- * Each strategy publishes at most 30 signals a minute and 500 a day.
-- The fleet (service role) is trusted with exits and not rate limited by these rules;
-- TradingView alerts, which the service ingests for the provider, are not.

-- Tables ---------------------------------------------------------------------------------

alter table public.signals
  add constraint signals_note_length check (char_length(note) <= 2000) not valid,
  add constraint signals_indicators_object
    check (jsonb_typeof(indicators) = 'object' and pg_column_size(indicators) <= 8192) not valid,
  add constraint signals_idempotency_key_length check (char_length(idempotency_key) <= 200) not valid;

-- Functions -----------------------------------------------------------------------------

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

create or replace function private.signal_rate_limit() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_minute integer;
  v_day integer;
begin
  if private.is_service() and new.source <> 'tradingview' then
    return new;
  end if;
  perform pg_advisory_xact_lock(hashtextextended('signals:' || new.strategy_id::text, 0));
  select count(*) filter (where g.created_at > now() - interval '1 minute'), count(*)
    into v_minute, v_day
    from public.signals g where g.strategy_id = new.strategy_id and g.created_at > now() - interval '1 day';
  if v_minute >= 30 or v_day >= 500 then
    raise exception 'signal rate limit: a strategy publishes at most 30 signals a minute and 500 a day'
      using errcode = 'check_violation', constraint = 'signals_rate_limit';
  end if;
  return new;
end;
$$;
revoke all on function private.signal_rate_limit() from public, anon, authenticated;

-- Triggers ------------------------------------------------------------------------------

create trigger signals_rate_limit before insert on public.signals
  for each row execute function private.signal_rate_limit();
