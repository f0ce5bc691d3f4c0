-- Providers see who subscribes to their strategies only as far as the business needs:
-- each subscription's status, price and period, never the subscriber's bot or sizing.
-- The row policy that let providers read whole subscription rows goes; they read their
-- subscribers through get_strategy_subscribers instead.
--
-- A signal's exit is priced from market data: closing a signal on a pair the fleet holds
-- no candles for is refused for providers and TradingView alerts alike until the fleet
-- holds candles for it (the service role is not bound), so no exit is ever taken at the
-- provider's word.

drop policy "Providers can read subscriptions to their strategies" on public.strategy_subscriptions;

create or replace function public.get_strategy_subscribers(p_strategy_id uuid)
returns table (
  subscription_id uuid,
  status text,
  price numeric,
  next_price numeric,
  current_period_end timestamptz,
  created_at timestamptz
)
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if p_strategy_id is null then
    raise exception 'a strategy id is required' using errcode = 'not_null_violation';
  end if;
  if not (private.owns_strategy(p_strategy_id) or private.is_admin() or private.is_service()) then
    raise exception 'only the strategy''s author sees its subscribers' using errcode = 'insufficient_privilege';
  end if;
  return query
  select s.id, s.status, s.price, s.next_price, s.current_period_end, s.created_at
    from public.strategy_subscriptions s
   where s.strategy_id = p_strategy_id
   order by s.created_at, s.id;
end;
$$;
revoke execute on function public.get_strategy_subscribers(uuid) from public, anon;
grant execute on function public.get_strategy_subscribers(uuid) to authenticated, service_role;

create or replace function private.signal_exit_needs_market() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if (private.is_service() and new.source <> 'tradingview')
     or not (new.status = 'closed' or new.action in ('exit', 'close'))
     or old.status in ('closed', 'cancelled')
     or exists (select 1 from public.candles c where c.symbol = new.pair) then
    return new;
  end if;
  raise exception 'the fleet holds no prices for % yet: a signal can be closed once its market has candles', new.pair
    using errcode = 'check_violation', constraint = 'signals_exit_within_market';
end;
$$;
revoke all on function private.signal_exit_needs_market() from public, anon, authenticated;

create trigger signals_exit_needs_market before update on public.signals
  for each row execute function private.signal_exit_needs_market();
