-- Strategy subscriptions charge the price the subscriber agreed to.
--
-- A subscription's price is fixed when it starts. When the provider changes the monthly
-- price, every current subscriber is told and the new price waits in next_price: a cut
-- applies from the next renewal; a rise applies to the first period that starts at least
-- 30 days after the notice (time to cancel), or from the next renewal once the subscriber
-- accepts it (accept_strategy_price). Subscribing anew (after a cancellation or expiry)
-- agrees to the price of the day.
--
-- Sizing is validated when written (a named constraint), and the renewal sweep isolates
-- every subscription: one that fails for any reason is left for the next sweep and never
-- rolls back the others.

-- Tables --------------------------------------------------------------------------------

alter table public.strategy_subscriptions
  add column next_price numeric(12, 2) constraint strategy_subscriptions_next_price_not_negative check (next_price >= 0),
  add column next_price_from timestamptz,
  add constraint strategy_subscriptions_next_price_finite
    check (next_price not in ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric));

-- A JSON number, or a string holding a plain decimal; null for anything else.
create or replace function private.sizing_number(p_value jsonb) returns numeric
language sql immutable
set search_path = ''
as $$
  select case
    when jsonb_typeof(p_value) = 'number' then (p_value #>> '{}')::numeric
    when jsonb_typeof(p_value) = 'string' and (p_value #>> '{}') ~ '^[0-9]{1,15}(\.[0-9]{1,12})?$'
      then (p_value #>> '{}')::numeric
  end
$$;

-- Copy-trading sizing: {"mode": stake | fixed_base | fixed_quote | percent_balance,
-- "amount" (fixed_*), "percent" (percent_balance, 0 < p <= 100), "max_amount" (> 0),
-- "max_leverage" (1..125)}; nothing else.
create or replace function private.sizing_is_valid(p_sizing jsonb) returns boolean
language sql immutable
set search_path = ''
as $$
  select jsonb_typeof(p_sizing) = 'object'
     and pg_column_size(p_sizing) <= 2048
     and not exists (select 1 from jsonb_object_keys(p_sizing) k
                      where k not in ('mode', 'amount', 'percent', 'max_amount', 'max_leverage'))
     and coalesce(p_sizing ->> 'mode', 'stake') in ('stake', 'fixed_base', 'fixed_quote', 'percent_balance')
     and (not p_sizing ? 'mode' or jsonb_typeof(p_sizing -> 'mode') = 'string')
     and (not p_sizing ? 'amount' or coalesce(private.sizing_number(p_sizing -> 'amount') between 1e-12 and 1e12, false))
     and (not p_sizing ? 'max_amount' or coalesce(private.sizing_number(p_sizing -> 'max_amount') between 1e-12 and 1e12, false))
     and (not p_sizing ? 'percent' or coalesce(private.sizing_number(p_sizing -> 'percent') > 0
                                               and private.sizing_number(p_sizing -> 'percent') <= 100, false))
     and (not p_sizing ? 'max_leverage' or coalesce(private.sizing_number(p_sizing -> 'max_leverage') between 1 and 125, false))
     and (coalesce(p_sizing ->> 'mode', 'stake') not in ('fixed_base', 'fixed_quote') or p_sizing ? 'amount')
     and (coalesce(p_sizing ->> 'mode', 'stake') <> 'percent_balance' or p_sizing ? 'percent')
$$;
revoke all on function private.sizing_number(jsonb), private.sizing_is_valid(jsonb) from public;
grant execute on function private.sizing_number(jsonb), private.sizing_is_valid(jsonb) to anon, authenticated, service_role;

-- Rows written before the rule are left as they are (the fan-out skips them as
-- invalid_sizing); every new write is checked.
alter table public.strategy_subscriptions
  add constraint strategy_subscriptions_sizing_valid check (private.sizing_is_valid(sizing)) not valid;

-- Functions -----------------------------------------------------------------------------

-- Charge one period. A subscription that is starting (new, cancelled or expired) agrees to
-- the strategy's current price; a running one pays its agreed price, or next_price once it
-- applies to the period starting at p_start.
create or replace function private.charge_strategy_period(p_sub public.strategy_subscriptions, p_start timestamptz)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_price numeric;
  v_next numeric := p_sub.next_price;
  v_next_from timestamptz := p_sub.next_price_from;
  v_sub public.strategy_subscriptions;
begin
  if p_sub.status in ('cancelled', 'expired') then
    select s.monthly_price into v_price from public.strategies s where s.id = p_sub.strategy_id;
    v_next := null;
    v_next_from := null;
  elsif v_next is not null and p_start >= v_next_from then
    v_price := v_next;
    v_next := null;
    v_next_from := null;
  else
    v_price := p_sub.price;
  end if;
  if v_price > 0 then
    perform private.credit_delegate('strategy subscription period');
    perform public.credit_pay_strategy_subscription(
      md5('strategy-subscription-period:' || p_sub.id || ':' || p_start)::uuid, p_sub.id, v_price);
    perform private.credit_delegate(null);
  end if;
  update public.strategy_subscriptions s
     set status = 'active', price = coalesce(v_price, 0), current_period_start = p_start,
         current_period_end = p_start + interval '1 month', cancelled_at = null,
         next_price = v_next, next_price_from = v_next_from
   where s.id = p_sub.id
  returning * into v_sub;
  return v_sub;
end;
$$;
revoke all on function private.charge_strategy_period(public.strategy_subscriptions, timestamptz) from public, anon, authenticated;

-- The subscriber accepts a pending price change: it applies from the next renewal.
create or replace function public.accept_strategy_price(p_subscription_id uuid)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions := private.own_strategy_subscription(p_subscription_id);
begin
  if v_sub.next_price is null then
    raise exception 'no price change is waiting for this subscription' using errcode = 'check_violation',
      constraint = 'strategy_subscriptions_price_change_pending';
  end if;
  update public.strategy_subscriptions s set next_price_from = now() where s.id = v_sub.id returning * into v_sub;
  return v_sub;
end;
$$;
revoke execute on function public.accept_strategy_price(uuid) from public, anon;
grant execute on function public.accept_strategy_price(uuid) to authenticated, service_role;

-- The renewal sweep: each subscription in its own subtransaction. Without the credits it
-- expires and its subscriber is told; any other failure leaves it for the next sweep.
create or replace function public.renew_strategy_subscriptions(p_limit integer default 1000)
returns table (renewed integer, expired integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions;
  v_name text;
begin
  if not private.is_service() then
    raise exception 'only the service role renews subscriptions' using errcode = 'insufficient_privilege';
  end if;
  renewed := 0;
  expired := 0;
  for v_sub in select * from public.strategy_subscriptions s
                where s.status = 'active' and s.current_period_end <= now()
                order by s.current_period_end
                limit greatest(coalesce(p_limit, 1000), 0)
                for update skip locked loop
    begin
      perform private.charge_strategy_period(v_sub, v_sub.current_period_end);
      renewed := renewed + 1;
    exception
      when check_violation or invalid_parameter_value then
        update public.strategy_subscriptions s set status = 'expired', auto_execute = false where s.id = v_sub.id;
        select st.name into v_name from public.strategies st where st.id = v_sub.strategy_id;
        insert into public.notifications (user_id, kind, title, body, data)
        values (v_sub.subscriber_id, 'low_credits', 'Subscription expired',
                format('Your subscription to %s could not renew: %s', v_name, sqlerrm),
                jsonb_build_object('strategy_id', v_sub.strategy_id, 'subscription_id', v_sub.id));
        expired := expired + 1;
      when others then
        raise warning 'strategy subscription % did not renew: % (%)', v_sub.id, sqlerrm, sqlstate;
    end;
  end loop;
  return next;
end;
$$;
revoke execute on function public.renew_strategy_subscriptions(integer) from public, anon, authenticated;
grant execute on function public.renew_strategy_subscriptions(integer) to service_role;

-- A price change is a notice to every current subscriber.
create or replace function private.strategy_price_changed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  with changed as (
    update public.strategy_subscriptions ss
       set next_price = new.monthly_price,
           next_price_from = case when new.monthly_price < ss.price then now() else now() + interval '30 days' end
     where ss.strategy_id = new.id and ss.status in ('active', 'paused')
       and (ss.price <> new.monthly_price or ss.next_price is not null)
    returning ss.subscriber_id, ss.id, ss.price, ss.next_price_from
  )
  insert into public.notifications (user_id, kind, title, body, data)
  select c.subscriber_id, 'payment', 'Price change: ' || new.name,
         case when new.monthly_price = c.price
              then format('The monthly price of %s stays %s credits.', new.name, c.price)
              else format('The monthly price of %s changes from %s to %s credits for periods starting from %s. '
                          'Accept it, or cancel before then.', new.name, c.price, new.monthly_price,
                          to_char(c.next_price_from at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')) end,
         jsonb_build_object('strategy_id', new.id, 'subscription_id', c.id, 'price', c.price,
                            'next_price', new.monthly_price, 'next_price_from', c.next_price_from)
    from changed c;
  return null;
end;
$$;
revoke all on function private.strategy_price_changed() from public, anon, authenticated;

-- Triggers ------------------------------------------------------------------------------

create trigger strategies_price_changed after update of monthly_price on public.strategies
  for each row when (new.monthly_price is distinct from old.monthly_price)
  execute function private.strategy_price_changed();
