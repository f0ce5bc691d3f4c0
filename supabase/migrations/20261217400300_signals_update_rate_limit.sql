-- A strategy's signals change at most 30 times a minute.
--
-- Every change of a live signal (its stop-loss, take-profit, indicators or note) is fanned
-- out to every active subscriber of the strategy: a 'signals.fanout' job per change (keyed
-- by the signal's updated_at), a notification per subscriber, and their Telegram or Discord
-- messages. Publishing was limited (signals_rate_limit: 30 signals a minute, 500 a day),
-- changing was not, so one provider looping over a PATCH made a notification for every
-- subscriber on every request. A change by the provider (or a TradingView alert) now takes
-- from a per-strategy allowance of 30 a minute; past it the update is refused (23514,
-- signals_update_rate_limit). Closing and cancelling are never held back, and the service
-- is not limited.

-- ======================================================================================
-- Functions
-- ======================================================================================

-- Named to fire after signals_lifecycle (triggers fire in name order), which has decided
-- whether the update is a change ('updated') or a close or cancellation.
create or replace function private.signal_update_rate_limit() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_rate record;
begin
  if new.status <> 'updated' or (private.is_service() and new.source <> 'tradingview') then
    return new;
  end if;
  select * into v_rate from private.rate_limit_take('signal-updates:' || new.strategy_id::text, 30, interval '1 minute');
  if not v_rate.allowed then
    raise exception 'signal rate limit: a strategy''s signals change at most 30 times a minute (retry in % s)',
      v_rate.retry_after_seconds
      using errcode = 'check_violation', constraint = 'signals_update_rate_limit';
  end if;
  return new;
end;
$$;
revoke all on function private.signal_update_rate_limit() from public, anon, authenticated;

-- ======================================================================================
-- Triggers
-- ======================================================================================
create trigger signals_update_rate_limit before update on public.signals
  for each row execute function private.signal_update_rate_limit();
