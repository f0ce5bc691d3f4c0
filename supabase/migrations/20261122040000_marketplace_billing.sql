-- Billing: payment webhooks from the inbox become invoice state, plan subscriptions and
-- credits, each effect exactly once whatever the delivery count or order.
--
-- The Edge Functions (stripe-, paystack-, tripay-webhook) store a verified event once in
-- public.webhook_events; a trigger here enqueues one billing.webhook job per event; the
-- worker parses the provider payload and calls public.billing_apply_invoice_event, which
-- moves the invoice through its state machine under a row lock and runs the effects of
-- the transition it made (and only of that one):
--
--   pending/failed/expired -> paid      credits bought, plan activated / renewed / changed
--   pending                -> failed | expired | cancelled
--   failed                 -> expired
--   pending/failed/expired -> refunded  (refund seen before the payment: nothing to undo)
--   paid                   -> refunded  credits taken back, the plan it bought cancelled
--
-- Anything else (a late 'pending' after 'paid', 'failed' after 'paid', any event on a
-- refunded invoice) is a no-op, so replays and out-of-order deliveries change nothing.

alter table public.invoices
  add column period text not null default 'month' constraint invoices_period_known check (period in ('month', 'year'));

-- -----------------------------------------------------------------------------------------
-- Inbox -> jobs: one billing.webhook job per stored payment event.
create or replace function private.billing_enqueue_webhook_event() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform public.enqueue_job('billing.webhook', jsonb_build_object('webhook_event_id', new.id), 'default',
                             null, 0, 10, 'billing-webhook:' || new.provider || ':' || new.event_id);
  return null;
end;
$$;
revoke all on function private.billing_enqueue_webhook_event() from public, anon, authenticated;
create trigger webhook_events_enqueue_billing after insert on public.webhook_events
  for each row when (new.provider in ('stripe', 'paystack', 'tripay'))
  execute function private.billing_enqueue_webhook_event();

-- -----------------------------------------------------------------------------------------
-- Plan limits after a plan change or expiry: running bots beyond the plan's max_bots are
-- paused (newest first), never deleted. Returns how many were paused.
create or replace function private.billing_enforce_plan_limits(p_user_id uuid) returns integer
language plpgsql security definer
set search_path = ''
as $$
declare
  v_plan public.plans;
  v_n integer;
begin
  v_plan := private.current_plan(p_user_id);
  update public.bots b
     set status = 'paused',
         status_reason = format('plan limit: the %s plan allows %s bots', v_plan.name, v_plan.max_bots)
   where b.id in (select x.id from public.bots x
                   where x.user_id = p_user_id and x.status = 'running'
                   order by x.created_at desc
                   offset greatest(v_plan.max_bots, 0));
  get diagnostics v_n = row_count;
  if v_n > 0 then
    insert into public.notifications (user_id, kind, title, body, data)
    values (p_user_id, 'system', 'Bots paused by your plan',
            format('%s running bot(s) were paused: the %s plan allows %s bots.', v_n, v_plan.name, v_plan.max_bots),
            jsonb_build_object('plan', v_plan.name, 'paused', v_n));
  end if;
  return v_n;
end;
$$;
revoke all on function private.billing_enforce_plan_limits(uuid) from public, anon, authenticated;

-- A paid invoice's effects. Called once, by the transition into 'paid'.
create or replace function private.billing_on_paid(p_invoice public.invoices) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_cur public.subscriptions;
  v_period interval := case p_invoice.period when 'year' then interval '1 year' else interval '1 month' end;
  v_sub_id uuid;
begin
  -- Credits bought with the invoice are added by the ledger's own trigger on invoices
  -- (credit_invoice_paid), in this same transaction.

  -- The plan it pays for: renew the same plan, or switch to the new one.
  if p_invoice.plan_id is not null then
    select * into v_cur from public.subscriptions s
     where s.user_id = p_invoice.user_id and s.status in ('active', 'trial')
     for update;
    if found and v_cur.plan_id = p_invoice.plan_id and v_cur.expires_at <> 'infinity' then
      update public.subscriptions s
         set status = 'active',
             expires_at = greatest(s.expires_at, now()) + v_period,
             invoice_id = p_invoice.id, cancelled_at = null
       where s.id = v_cur.id
      returning s.id into v_sub_id;
    else
      if found then
        update public.subscriptions s
           set status = 'cancelled', cancelled_at = now(), auto_renew = false
         where s.id = v_cur.id;
      end if;
      insert into public.subscriptions (user_id, plan_id, invoice_id, status, started_at, expires_at, auto_renew)
      values (p_invoice.user_id, p_invoice.plan_id, p_invoice.id, 'active', now(), now() + v_period, true)
      returning id into v_sub_id;
    end if;
    -- The plan's monthly credits for the cycle this payment starts (once per cycle).
    perform public.credit_grant_monthly(v_sub_id);
    perform private.billing_enforce_plan_limits(p_invoice.user_id);
  end if;

  insert into public.notifications (user_id, kind, title, body, data)
  values (p_invoice.user_id, 'payment', 'Payment received',
          format('%s %s paid%s.', p_invoice.amount, p_invoice.currency,
                 case when p_invoice.plan_id is not null
                      then ' for the ' || (select p.name from public.plans p where p.id = p_invoice.plan_id) || ' plan'
                      else '' end),
          jsonb_build_object('invoice_id', p_invoice.id, 'status', 'paid'));
end;
$$;
revoke all on function private.billing_on_paid(public.invoices) from public, anon, authenticated;

-- A refund of a paid invoice: the credits it bought go back (as many as are left), the
-- plan subscription it paid for ends now.
create or replace function private.billing_on_refunded(p_invoice public.invoices) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_account public.credit_accounts;
  v_back numeric;
  v_n integer;
begin
  if p_invoice.credits > 0 then
    select * into v_account from public.credit_accounts a
     where a.user_id = p_invoice.user_id and a.kind = 'user';
    v_back := least(p_invoice.credits,
                    greatest(v_account.credits_posted - v_account.debits_posted - v_account.debits_pending, 0));
    if v_back > 0 then
      perform public.credit_create_transfer(
        md5('invoice-refund:' || p_invoice.id)::uuid,
        v_account.id, (select a.id from public.credit_accounts a where a.code = 'system:purchases'),
        v_back, 'refund', 'invoice', p_invoice.id::text,
        jsonb_build_object('purchased', p_invoice.credits, 'taken_back', v_back));
    end if;
  end if;
  update public.subscriptions s
     set status = 'cancelled', cancelled_at = now(), auto_renew = false
   where s.invoice_id = p_invoice.id and s.status in ('active', 'trial');
  get diagnostics v_n = row_count;
  if v_n > 0 then
    perform private.billing_enforce_plan_limits(p_invoice.user_id);
  end if;
  insert into public.notifications (user_id, kind, title, body, data)
  values (p_invoice.user_id, 'payment', 'Payment refunded',
          format('%s %s refunded.', p_invoice.amount, p_invoice.currency),
          jsonb_build_object('invoice_id', p_invoice.id, 'status', 'refunded'));
end;
$$;
revoke all on function private.billing_on_refunded(public.invoices) from public, anon, authenticated;

-- The state machine. Returns 'applied' (the transition happened and its effects ran),
-- 'unchanged' (already there, or a transition that may not happen now: replays and late
-- deliveries), 'amount_mismatch' (a payment for less than the invoice: not accepted) or
-- 'not_found'.
create or replace function public.billing_apply_invoice_event(
  p_invoice_id uuid,
  p_status text,
  p_amount numeric default null,
  p_occurred_at timestamptz default null,
  p_details jsonb default '{}'
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_inv public.invoices;
  v_allowed boolean;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  if p_status is null or p_status not in ('paid', 'failed', 'expired', 'cancelled', 'refunded') then
    raise exception 'unknown invoice status %', p_status using errcode = 'invalid_parameter_value';
  end if;
  select * into v_inv from public.invoices i where i.id = p_invoice_id for update;
  if not found then return 'not_found'; end if;

  v_allowed := case p_status
    when 'paid' then v_inv.status in ('pending', 'failed', 'expired')
    when 'failed' then v_inv.status = 'pending'
    when 'expired' then v_inv.status in ('pending', 'failed')
    when 'cancelled' then v_inv.status = 'pending'
    when 'refunded' then v_inv.status in ('pending', 'failed', 'expired', 'paid')
  end;
  if not v_allowed then return 'unchanged'; end if;
  if p_status = 'paid' and p_amount is not null and p_amount < v_inv.amount then
    return 'amount_mismatch';
  end if;

  update public.invoices i
     set status = p_status,
         paid_at = case when p_status = 'paid' then coalesce(p_occurred_at, now()) else i.paid_at end,
         payment_method = coalesce(p_details ->> 'payment_method', i.payment_method),
         payment_channel = coalesce(p_details ->> 'payment_channel', i.payment_channel),
         transaction_id = coalesce(p_details ->> 'transaction_id', i.transaction_id)
   where i.id = v_inv.id
  returning * into v_inv;

  if p_status = 'paid' then
    perform private.billing_on_paid(v_inv);
  elsif p_status = 'refunded' and v_inv.paid_at is not null then
    perform private.billing_on_refunded(v_inv);
  elsif p_status in ('failed', 'expired') then
    insert into public.notifications (user_id, kind, title, body, data)
    values (v_inv.user_id, 'payment', 'Payment ' || p_status,
            format('Your payment of %s %s %s.', v_inv.amount, v_inv.currency,
                   case p_status when 'failed' then 'failed' else 'expired before it was paid' end),
            jsonb_build_object('invoice_id', v_inv.id, 'status', p_status));
  end if;
  return 'applied';
end;
$$;
revoke execute on function public.billing_apply_invoice_event(uuid, text, numeric, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function public.billing_apply_invoice_event(uuid, text, numeric, timestamptz, jsonb) to service_role;

-- The scheduler's sweep: pending invoices past expired_at expire; plan subscriptions past
-- expires_at expire (the user is back on Free and the plan's limits apply). Returns counts.
create or replace function public.billing_expire_due(p_now timestamptz default now())
returns table (invoices_expired integer, subscriptions_expired integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  r record;
begin
  if not private.is_service() then
    raise exception 'only the service role runs the billing sweep' using errcode = 'insufficient_privilege';
  end if;
  invoices_expired := 0;
  for r in select i.id from public.invoices i
            where i.status = 'pending' and i.expired_at is not null and i.expired_at <= p_now
            order by i.id for update skip locked loop
    if public.billing_apply_invoice_event(r.id, 'expired', null, p_now) = 'applied' then
      invoices_expired := invoices_expired + 1;
    end if;
  end loop;

  subscriptions_expired := 0;
  for r in update public.subscriptions s
              set status = 'expired'
            where s.id in (select x.id from public.subscriptions x
                            where x.status in ('active', 'trial') and x.expires_at <= p_now
                            for update skip locked)
           returning s.user_id, s.plan_id loop
    subscriptions_expired := subscriptions_expired + 1;
    perform private.billing_enforce_plan_limits(r.user_id);
    insert into public.notifications (user_id, kind, title, body, data)
    values (r.user_id, 'payment', 'Subscription expired',
            format('Your %s plan expired; you are on the Free plan now.',
                   (select p.name from public.plans p where p.id = r.plan_id)),
            jsonb_build_object('plan_id', r.plan_id, 'status', 'expired'));
  end loop;
  return next;
end;
$$;
revoke execute on function public.billing_expire_due(timestamptz) from public, anon, authenticated;
grant execute on function public.billing_expire_due(timestamptz) to service_role;

-- ---------------------------------------------------------------------------
-- Marketplace: the signal lifecycle and per-strategy performance, strategy subscriptions
-- (subscribe / pause / resume / cancel, monthly price paid in credits with the revenue
-- share through the ledger, renewals), and TradingView alert tokens.

-- -----------------------------------------------------------------------------------------
-- Signal lifecycle: open -> updated* -> closed (with result) | cancelled.
-- A provider publishes with an insert (always 'open'); any later change of stop-loss,
-- take-profit, indicators or note makes it 'updated'; action 'exit'/'close' or status
-- 'closed' closes it at exit_price and computes result_pct; 'cancelled' withdraws it.
-- A closed or cancelled signal is history and never changes again.
create or replace function private.signal_lifecycle() returns trigger
language plpgsql
set search_path = ''
as $$
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
    new.closed_at := now();
    new.result_pct := null;
  elsif new.status = 'closed' or new.action in ('exit', 'close') then
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
create trigger signals_lifecycle before insert or update on public.signals
  for each row execute function private.signal_lifecycle();

-- Per-strategy signal performance, kept on strategies.performance (readable by everyone
-- who can see the strategy, so marketplace readers never touch subscriber-only signals).
create or replace function private.refresh_signal_performance(p_strategy_id uuid) returns void
language sql security definer
set search_path = ''
as $$
  update public.strategies s
     set performance = s.performance || jsonb_build_object(
           'signals_total', f.total,
           'signals_open', f.open,
           'signals_closed', f.closed,
           'wins', f.wins,
           'losses', f.losses,
           'win_rate', case when f.closed > 0 then round(f.wins::numeric / f.closed * 100, 2) else 0 end,
           'avg_return_pct', coalesce(f.avg_return, 0),
           'total_return_pct', coalesce(f.total_return, 0),
           'last_signal_at', f.last_at)
    from (select count(*) as total,
                 count(*) filter (where g.status in ('open', 'updated')) as open,
                 count(*) filter (where g.status = 'closed') as closed,
                 count(*) filter (where g.status = 'closed' and g.result_pct > 0) as wins,
                 count(*) filter (where g.status = 'closed' and g.result_pct <= 0) as losses,
                 round(avg(g.result_pct) filter (where g.status = 'closed'), 4) as avg_return,
                 round(sum(g.result_pct) filter (where g.status = 'closed'), 4) as total_return,
                 max(g.created_at) as last_at
            from public.signals g where g.strategy_id = p_strategy_id) f
   where s.id = p_strategy_id
$$;
revoke all on function private.refresh_signal_performance(uuid) from public, anon, authenticated;

-- After a signal is published or changes state: refresh the figures and hand the signal
-- to the fleet (copy execution and subscriber notifications), once per state change.
create or replace function private.signal_after_change() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_phase text;
begin
  if tg_op = 'INSERT' or new.status is distinct from old.status then
    perform private.refresh_signal_performance(new.strategy_id);
  end if;
  v_phase := case
    when tg_op = 'INSERT' then 'open'
    when new.status in ('closed', 'cancelled') then 'close'
    else 'update' end;
  perform public.enqueue_job(
    'signals.fanout',
    jsonb_build_object('signal_id', new.id, 'phase', v_phase),
    'default', null, 10, 10,
    'signal-fanout:' || new.id || ':' || v_phase ||
      case when v_phase = 'update' then ':' || extract(epoch from new.updated_at)::text else '' end);
  return null;
end;
$$;
revoke all on function private.signal_after_change() from public, anon, authenticated;
create trigger signals_after_change after insert or update on public.signals
  for each row execute function private.signal_after_change();

-- -----------------------------------------------------------------------------------------
-- Strategy subscriptions.

-- The subscription of the caller, locked; raises when it is not theirs.
create or replace function private.own_strategy_subscription(p_subscription_id uuid)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions;
begin
  select * into v_sub from public.strategy_subscriptions s where s.id = p_subscription_id for update;
  if not found or (v_sub.subscriber_id is distinct from (select auth.uid()) and not private.is_service()) then
    raise exception 'no such subscription of yours: %', p_subscription_id using errcode = 'no_data_found';
  end if;
  return v_sub;
end;
$$;
revoke all on function private.own_strategy_subscription(uuid) from public, anon, authenticated;

-- Charge one period of a subscription (monthly price in credits, split provider/platform by
-- the ledger) and move the period forward. The payment id is derived from the subscription
-- and the period start, so a retried renewal charges once.
create or replace function private.charge_strategy_period(p_sub public.strategy_subscriptions, p_start timestamptz)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_price numeric;
  v_sub public.strategy_subscriptions;
begin
  select s.monthly_price into v_price from public.strategies s where s.id = p_sub.strategy_id;
  if v_price > 0 then
    perform public.credit_pay_strategy_subscription(
      md5('strategy-subscription-period:' || p_sub.id || ':' || p_start)::uuid, p_sub.id, v_price);
  end if;
  update public.strategy_subscriptions s
     set status = 'active', price = coalesce(v_price, 0), current_period_start = p_start,
         current_period_end = p_start + interval '1 month', cancelled_at = null
   where s.id = p_sub.id
  returning * into v_sub;
  return v_sub;
end;
$$;
revoke all on function private.charge_strategy_period(public.strategy_subscriptions, timestamptz) from public, anon, authenticated;

-- Subscribe the caller to a marketplace strategy. The first month is paid at once in
-- credits (insufficient credits: nothing happens and the error says so). Subscribing again
-- while active returns the subscription unchanged; a cancelled or expired one starts anew.
create or replace function public.subscribe_to_strategy(
  p_strategy_id uuid,
  p_auto_execute boolean default false,
  p_bot_id uuid default null,
  p_sizing jsonb default '{}'
) returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_user uuid := (select auth.uid());
  v_strategy public.strategies;
  v_sub public.strategy_subscriptions;
begin
  if v_user is null then
    raise exception 'sign in to subscribe' using errcode = 'insufficient_privilege';
  end if;
  select * into v_strategy from public.strategies s
   where s.id = p_strategy_id and s.is_public and s.strategy_type = 'marketplace' and s.is_verified;
  if not found then
    raise exception 'strategy % is not on the marketplace', p_strategy_id using errcode = 'no_data_found';
  end if;
  if v_strategy.user_id = v_user then
    raise exception 'providers cannot subscribe to their own strategy' using errcode = 'check_violation',
      constraint = 'strategy_subscriptions_not_own_strategy';
  end if;
  if p_bot_id is not null and not exists (select 1 from public.bots b where b.id = p_bot_id and b.user_id = v_user) then
    raise exception 'bot % is not yours', p_bot_id using errcode = 'insufficient_privilege';
  end if;
  if p_auto_execute and p_bot_id is null then
    raise exception 'auto-execution needs a bot' using errcode = 'check_violation',
      constraint = 'strategy_subscriptions_auto_execute_needs_bot';
  end if;

  insert into public.strategy_subscriptions (strategy_id, subscriber_id, status, auto_execute, bot_id, sizing, price,
                                             current_period_start, current_period_end)
  values (p_strategy_id, v_user, 'expired', p_auto_execute, p_bot_id, coalesce(p_sizing, '{}'),
          v_strategy.monthly_price, now(), now())
  on conflict (strategy_id, subscriber_id) do nothing;
  select * into v_sub from public.strategy_subscriptions s
   where s.strategy_id = p_strategy_id and s.subscriber_id = v_user for update;
  if v_sub.status = 'active' then
    return v_sub;
  end if;
  if v_sub.status = 'paused' then
    raise exception 'subscription % is paused: resume it instead', v_sub.id using errcode = 'check_violation',
      constraint = 'strategy_subscriptions_resume_paused';
  end if;
  update public.strategy_subscriptions s
     set auto_execute = p_auto_execute, bot_id = p_bot_id, sizing = coalesce(p_sizing, '{}')
   where s.id = v_sub.id
  returning * into v_sub;
  return private.charge_strategy_period(v_sub, now());
end;
$$;
revoke execute on function public.subscribe_to_strategy(uuid, boolean, uuid, jsonb) from public, anon;
grant execute on function public.subscribe_to_strategy(uuid, boolean, uuid, jsonb) to authenticated, service_role;

-- Pause: signals stop (no reading, no copy execution) until resumed; the paid period runs on.
create or replace function public.pause_strategy_subscription(p_subscription_id uuid)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions := private.own_strategy_subscription(p_subscription_id);
begin
  if v_sub.status not in ('active', 'paused') then
    raise exception 'only an active subscription can be paused (this one is %)', v_sub.status
      using errcode = 'check_violation', constraint = 'strategy_subscriptions_pause_active';
  end if;
  update public.strategy_subscriptions s set status = 'paused' where s.id = v_sub.id returning * into v_sub;
  return v_sub;
end;
$$;
revoke execute on function public.pause_strategy_subscription(uuid) from public, anon;
grant execute on function public.pause_strategy_subscription(uuid) to authenticated, service_role;

-- Resume a paused subscription; a period that ended meanwhile is charged anew.
create or replace function public.resume_strategy_subscription(p_subscription_id uuid)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions := private.own_strategy_subscription(p_subscription_id);
begin
  if v_sub.status = 'active' then
    return v_sub;
  end if;
  if v_sub.status <> 'paused' then
    raise exception 'only a paused subscription can be resumed (this one is %): subscribe again', v_sub.status
      using errcode = 'check_violation', constraint = 'strategy_subscriptions_resume_paused';
  end if;
  if v_sub.current_period_end is null or v_sub.current_period_end <= now() then
    return private.charge_strategy_period(v_sub, now());
  end if;
  update public.strategy_subscriptions s set status = 'active' where s.id = v_sub.id returning * into v_sub;
  return v_sub;
end;
$$;
revoke execute on function public.resume_strategy_subscription(uuid) from public, anon;
grant execute on function public.resume_strategy_subscription(uuid) to authenticated, service_role;

-- Cancel: access and copy execution end now; nothing more is charged.
create or replace function public.cancel_strategy_subscription(p_subscription_id uuid)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions := private.own_strategy_subscription(p_subscription_id);
begin
  if v_sub.status in ('cancelled', 'expired') then
    return v_sub;
  end if;
  update public.strategy_subscriptions s
     set status = 'cancelled', cancelled_at = now(), auto_execute = false
   where s.id = v_sub.id
  returning * into v_sub;
  return v_sub;
end;
$$;
revoke execute on function public.cancel_strategy_subscription(uuid) from public, anon;
grant execute on function public.cancel_strategy_subscription(uuid) to authenticated, service_role;

-- The scheduler's renewal sweep: every active subscription whose period ended is charged
-- for the next one; one without the credits expires and its subscriber is told. Each
-- subscription renews in its own subtransaction, so one failure never blocks the others.
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
                limit p_limit
                for update skip locked loop
    begin
      perform private.charge_strategy_period(v_sub, v_sub.current_period_end);
      renewed := renewed + 1;
    exception when check_violation or invalid_parameter_value then
      update public.strategy_subscriptions s set status = 'expired', auto_execute = false where s.id = v_sub.id;
      select st.name into v_name from public.strategies st where st.id = v_sub.strategy_id;
      insert into public.notifications (user_id, kind, title, body, data)
      values (v_sub.subscriber_id, 'low_credits', 'Subscription expired',
              format('Your subscription to %s could not renew: %s', v_name, sqlerrm),
              jsonb_build_object('strategy_id', v_sub.strategy_id, 'subscription_id', v_sub.id));
      expired := expired + 1;
    end;
  end loop;
  return next;
end;
$$;
revoke execute on function public.renew_strategy_subscriptions(integer) from public, anon, authenticated;
grant execute on function public.renew_strategy_subscriptions(integer) to service_role;

-- -----------------------------------------------------------------------------------------
-- TradingView alerts. Each strategy may have one secret token; only its SHA-256 is kept,
-- in the private schema (never exposed through the API). The provider sees the token once,
-- when it is (re)generated.
create table private.tradingview_tokens (
  strategy_id uuid primary key references public.strategies (id) on delete cascade,
  token_hash bytea not null constraint tradingview_tokens_hash_unique unique,
  created_at timestamptz not null default now()
);
revoke all on private.tradingview_tokens from public, anon, authenticated, service_role;

create or replace function public.rotate_tradingview_token(p_strategy_id uuid) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_token text := 'tv_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
begin
  if not exists (select 1 from public.strategies s where s.id = p_strategy_id and s.user_id = (select auth.uid()))
     or private.app_role() not in ('provider', 'admin') then
    raise exception 'only the provider of strategy % can set its TradingView token', p_strategy_id
      using errcode = 'insufficient_privilege';
  end if;
  insert into private.tradingview_tokens (strategy_id, token_hash)
  values (p_strategy_id, sha256(convert_to(v_token, 'UTF8')))
  on conflict (strategy_id) do update set token_hash = excluded.token_hash, created_at = now();
  return v_token;
end;
$$;
revoke execute on function public.rotate_tradingview_token(uuid) from public, anon;
grant execute on function public.rotate_tradingview_token(uuid) to authenticated;

-- An alert from TradingView, already parsed by the tradingview-webhook function:
-- p_alert = {action: entry|update|exit|close|cancel, pair, side, price, stop_loss,
-- take_profit, leverage, indicators, note, idempotency_key}. entry publishes a signal
-- (once per idempotency key); the others apply to the strategy's latest live signal on the
-- pair. Returns {status: created|duplicate|updated|closed|cancelled|no_open_signal, signal_id}.
create or replace function public.ingest_tradingview_alert(p_token text, p_alert jsonb) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_strategy public.strategies;
  v_action text := lower(coalesce(p_alert ->> 'action', 'entry'));
  v_signal_id uuid;
begin
  if not private.is_service() then
    raise exception 'only the service role ingests TradingView alerts' using errcode = 'insufficient_privilege';
  end if;
  select s.* into v_strategy
    from private.tradingview_tokens t join public.strategies s on s.id = t.strategy_id
   where t.token_hash = sha256(convert_to(coalesce(p_token, ''), 'UTF8'));
  if not found then
    return jsonb_build_object('status', 'invalid_token');
  end if;

  if v_action = 'entry' then
    insert into public.signals (strategy_id, provider_id, pair, side, entry_price, stop_loss, take_profit, leverage,
                                indicators, note, source, idempotency_key)
    values (v_strategy.id, v_strategy.user_id, p_alert ->> 'pair', p_alert ->> 'side',
            (p_alert ->> 'price')::numeric, (p_alert ->> 'stop_loss')::numeric, (p_alert ->> 'take_profit')::numeric,
            coalesce((p_alert ->> 'leverage')::numeric, 1), coalesce(p_alert -> 'indicators', '{}'),
            p_alert ->> 'note', 'tradingview', p_alert ->> 'idempotency_key')
    on conflict (strategy_id, idempotency_key) do nothing
    returning id into v_signal_id;
    if v_signal_id is null then
      select g.id into v_signal_id from public.signals g
       where g.strategy_id = v_strategy.id and g.idempotency_key = p_alert ->> 'idempotency_key';
      return jsonb_build_object('status', 'duplicate', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
    end if;
    return jsonb_build_object('status', 'created', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
  end if;

  select g.id into v_signal_id from public.signals g
   where g.strategy_id = v_strategy.id and g.pair = p_alert ->> 'pair' and g.status in ('open', 'updated')
     and (p_alert ->> 'side' is null or g.side = p_alert ->> 'side')
   order by g.created_at desc limit 1
   for update;
  if v_signal_id is null then
    return jsonb_build_object('status', 'no_open_signal', 'strategy_id', v_strategy.id);
  end if;
  if v_action in ('exit', 'close') then
    update public.signals g set action = 'close', exit_price = (p_alert ->> 'price')::numeric where g.id = v_signal_id;
    return jsonb_build_object('status', 'closed', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
  elsif v_action = 'cancel' then
    update public.signals g set status = 'cancelled' where g.id = v_signal_id;
    return jsonb_build_object('status', 'cancelled', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
  end if;
  update public.signals g
     set action = 'update',
         stop_loss = coalesce((p_alert ->> 'stop_loss')::numeric, g.stop_loss),
         take_profit = coalesce((p_alert ->> 'take_profit')::numeric, g.take_profit),
         indicators = g.indicators || coalesce(p_alert -> 'indicators', '{}'),
         note = coalesce(p_alert ->> 'note', g.note)
   where g.id = v_signal_id;
  return jsonb_build_object('status', 'updated', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
end;
$$;
revoke execute on function public.ingest_tradingview_alert(text, jsonb) from public, anon, authenticated;
grant execute on function public.ingest_tradingview_alert(text, jsonb) to service_role;

-- ---------------------------------------------------------------------------
-- Copy trades belong to copy execution, never to the bot runner.
--
-- Copy execution (public.signal_fan_out) writes its paper fills onto a subscriber's running
-- bot through the bot engine's own path (public.bot_apply_steps), and closes them when the
-- signal closes (private.signal_fan_out_close). The bot's runner keeps its own paper
-- account and rebuilds it from the database when it takes a bot over. The rule, single
-- and explicit:
--
-- - Every order and trade of a copy carries the signal it copies (orders.signal_id,
--   trades.signal_id); the bot runner's rows carry none.
-- - Rows with a signal_id are owned by copy execution: only the signal's close closes
--   them. The runner's loads (open trades, open orders, realized and today's profit; see
--   worker/bots/store.py) leave them out, so a rebuilt paper account, its balance and its
--   daily loss limit are the runner's own, and no stop-loss, take-profit or strategy exit
--   of the runner ever touches a copy.
-- - What is about the whole bot counts both: bot statistics (update_bot_statistics), and
--   the fan-out's own eligibility checks (max open trades, daily loss limit, balance).
--
-- Copy execution: one signal reaches every subscriber in one set-based pass.
--
-- public.signal_fan_out(signal, phase) runs in the fleet (job signals.fanout, enqueued by
-- the signals trigger). For 'open' it takes every active, auto-executing subscription of
-- the strategy at once, sizes each copy with the subscriber's own sizing and their bot's
-- risk limits, skips those whose available credits do not cover the plan's credits per
-- trade, and persists the paper fills (orders + open trades) through the bot engine's own
-- path, public.bot_apply_steps, under each bot's current lease epoch (fencing).
-- Subscribers without credits, over a limit or without a running paper bot are skipped
-- and notified; they never block the others. The credits of the copies are then charged
-- through the ledger by public.signal_charge_copies in chunks, each its own transaction
-- (every charge moves to the one system:usage account, so one huge transaction would
-- serialize on it); a charge the ledger rejects is recorded and the subscriber told. 'close' closes the copies at the signal's exit price;
-- 'update' only notifies. public.signal_executions records one row per (signal,
-- subscription, phase): the gate that makes the whole pass idempotent.

create table public.signal_executions (
  id uuid primary key default gen_random_uuid(),
  signal_id uuid not null references public.signals (id) on delete cascade,
  subscription_id uuid not null references public.strategy_subscriptions (id) on delete cascade,
  subscriber_id uuid not null references public.profiles (id) on delete cascade,
  bot_id uuid references public.bots (id) on delete set null,
  phase text not null constraint signal_executions_phase_known check (phase in ('open', 'close')),
  status text not null constraint signal_executions_status_known check (status in ('executed', 'skipped')),
  reason text,
  -- The copy's order and trade (ids derived from signal and subscription). Not foreign
  -- keys: the execution row is the gate, written before them, and orders/trades are
  -- partitioned by time in production.
  order_id uuid,
  trade_id uuid,
  amount numeric(28, 12),
  price numeric(28, 12),
  credits_due numeric(24, 8) not null default 0,
  charge_status text not null default 'none' constraint signal_executions_charge_status_known
    check (charge_status in ('none', 'pending', 'charged', 'rejected')),
  created_at timestamptz not null default now(),
  constraint signal_executions_once_per_phase unique (signal_id, subscription_id, phase)
);
create index signal_executions_subscription_id_idx on public.signal_executions (subscription_id);
create index signal_executions_subscriber_id_idx on public.signal_executions (subscriber_id, created_at desc);
create index signal_executions_bot_id_idx on public.signal_executions (bot_id);
create index signal_executions_charge_pending_idx on public.signal_executions (signal_id) where charge_status = 'pending';

revoke all on public.signal_executions from anon, authenticated;
grant all on public.signal_executions to service_role;
grant select on public.signal_executions to authenticated;
alter table public.signal_executions enable row level security;
create policy "Subscribers can read their own copy executions" on public.signal_executions
  for select to authenticated using (subscriber_id = (select auth.uid()));
create policy "Admins can read every copy execution" on public.signal_executions
  for select to authenticated using ((select private.is_admin()));

-- Which phases of a signal have been announced to its followers (once each).
create table private.signal_fanouts (
  signal_id uuid not null references public.signals (id) on delete cascade,
  phase text not null,
  created_at timestamptz not null default now(),
  primary key (signal_id, phase)
);
revoke all on private.signal_fanouts from public, anon, authenticated, service_role;

-- True the first time (signal, phase) is announced, false on every repeat.
create or replace function private.signal_first_announcement(p_signal_id uuid, p_phase text) returns boolean
language plpgsql security definer
set search_path = ''
as $$
declare
  v_n integer;
begin
  insert into private.signal_fanouts (signal_id, phase) values (p_signal_id, p_phase) on conflict do nothing;
  get diagnostics v_n = row_count;
  return v_n = 1;
end;
$$;
revoke all on function private.signal_first_announcement(uuid, text) from public, anon, authenticated;

-- The 'close' phase: every open copy of the signal is closed at its exit price (at entry
-- when the signal was cancelled: no gain, no loss), through the bot engine's path.
create or replace function private.signal_fan_out_close(p_sig public.signals, p_label text)
returns table (executed integer, skipped integer, notified integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_exit numeric;
  v_stale integer;
  v_chunk integer;
begin
  executed := 0; skipped := 0; notified := 0;
  v_exit := coalesce(case when p_sig.status = 'closed' then p_sig.exit_price end, p_sig.entry_price,
                     (select c.close from public.candles c where c.symbol = p_sig.pair order by c.open_time desc limit 1));

  create temporary table if not exists fanout_closes (
    subscription_id uuid primary key, subscriber_id uuid, trade public.trades, epoch bigint, reason text,
    chunk integer
  ) on commit drop;
  truncate pg_temp.fanout_closes;

  with todo as (
    select e.subscription_id, e.subscriber_id, t as trade, l.epoch,
           case when v_exit is null then 'no_price' when l.epoch is null then 'bot_not_running' end as reason
      from public.signal_executions e
      join public.trades t on t.id = e.trade_id and t.status = 'open'
      left join public.bot_leases l on l.bot_id = t.bot_id
     where e.signal_id = p_sig.id and e.phase = 'open' and e.status = 'executed'
  ), gate as (
    insert into public.signal_executions (signal_id, subscription_id, subscriber_id, bot_id, phase, status, reason,
                                          order_id, trade_id, amount, price)
    select p_sig.id, d.subscription_id, d.subscriber_id, (d.trade).bot_id, 'close',
           case when d.reason is null then 'executed' else 'skipped' end, d.reason,
           case when d.reason is null then md5('copy-order:' || p_sig.id || ':' || d.subscription_id || ':close')::uuid end,
           (d.trade).id, (d.trade).amount, v_exit
      from todo d
    on conflict (signal_id, subscription_id, phase) do nothing
    returning subscription_id
  )
  insert into pg_temp.fanout_closes
  select d.subscription_id, d.subscriber_id, d.trade, d.epoch, d.reason,
         ((row_number() over (order by d.subscription_id)) - 1)::integer / 1000
    from todo d join gate g on g.subscription_id = d.subscription_id;

  select count(*) filter (where f.reason is null), count(*) filter (where f.reason is not null)
    into executed, skipped from pg_temp.fanout_closes f;

  for v_chunk in select distinct f.chunk from pg_temp.fanout_closes f where f.reason is null order by 1 loop
  with stale as (select s.stale_bot_id from public.bot_apply_steps(
    coalesce((select jsonb_agg(jsonb_build_object('bot_id', (f.trade).bot_id, 'epoch', f.epoch))
                from pg_temp.fanout_closes f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(jsonb_build_object(
                'id', md5('copy-order:' || p_sig.id || ':' || f.subscription_id || ':close')::uuid,
                'bot_id', (f.trade).bot_id, 'user_id', f.subscriber_id,
                'client_order_id', 'tfc-' || substr(md5(p_sig.id || ':' || f.subscription_id || ':close'), 1, 28),
                'exchange', (f.trade).exchange, 'symbol', (f.trade).trading_pair,
                'side', case (f.trade).direction when 'long' then 'sell' else 'buy' end, 'order_type', 'market',
                'amount', (f.trade).amount, 'filled', (f.trade).amount, 'average_price', v_exit,
                'fee', round((f.trade).amount * v_exit * private.copy_fee_rate(), 12),
                'fee_currency', split_part(split_part((f.trade).trading_pair, '/', 2), ':', 1),
                'status', 'closed', 'reason', 'copy of signal ' || p_sig.id || ' closed', 'is_paper_trade', true, 'signal_id', p_sig.id,
                'lease_epoch', f.epoch))
                from pg_temp.fanout_closes f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(to_jsonb(f.trade) || jsonb_build_object(
                'exit_price', v_exit, 'exit_time', now(), 'status', 'closed',
                'exit_reason', case p_sig.status when 'cancelled' then 'signal_cancelled' else 'signal_closed' end,
                'exit_order_id', md5('copy-order:' || p_sig.id || ':' || f.subscription_id || ':close')::uuid,
                'fee', (f.trade).fee + round((f.trade).amount * v_exit * private.copy_fee_rate(), 12),
                'profit', x.profit,
                'profit_percentage', round(x.profit / ((f.trade).amount * (f.trade).price) * 100, 4),
                'lease_epoch', f.epoch))
                from pg_temp.fanout_closes f
                cross join lateral (select round(((v_exit - (f.trade).price) * (f.trade).amount
                                                  * case (f.trade).direction when 'long' then 1 else -1 end)
                                                 - (f.trade).fee - (f.trade).amount * v_exit * private.copy_fee_rate(), 12)
                                           as profit) x
               where f.reason is null and f.chunk = v_chunk), '[]')) s)
  update public.signal_executions e
     set status = 'skipped', reason = 'bot_lease_changed', order_id = null
    from stale where e.signal_id = p_sig.id and e.phase = 'close' and e.bot_id = stale.stale_bot_id;
  get diagnostics v_stale = row_count;
  executed := executed - v_stale;
  skipped := skipped + v_stale;
  end loop;

  if private.signal_first_announcement(p_sig.id, 'close') then
    insert into public.notifications (user_id, kind, title, body, data)
    select ss.subscriber_id, 'signal',
           case p_sig.status when 'cancelled' then 'Signal cancelled: ' else 'Signal closed: ' end || p_label,
           case when p_sig.status = 'closed'
                then format('Exit %s, result %s%%.', p_sig.exit_price, coalesce(p_sig.result_pct::text, '-'))
                else 'The provider withdrew this signal.' end,
           jsonb_build_object('signal_id', p_sig.id, 'strategy_id', p_sig.strategy_id, 'status', p_sig.status,
                              'result_pct', p_sig.result_pct)
      from public.strategy_subscriptions ss
     where ss.strategy_id = p_sig.strategy_id and ss.status = 'active';
    get diagnostics notified = row_count;
  end if;
  return next;
end;
$$;
revoke all on function private.signal_fan_out_close(public.signals, text) from public, anon, authenticated;

-- Paper copies pay the taker fee the paper exchange would charge by default.
create or replace function private.copy_fee_rate() returns numeric
language sql immutable
set search_path = ''
as $$ select 0.001::numeric $$;

create or replace function public.signal_fan_out(p_signal_id uuid, p_phase text default 'open')
returns table (executed integer, skipped integer, notified integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sig public.signals;
  v_strategy_name text;
    v_price numeric;
  v_label text;
  v_announce boolean;
  v_stale integer;
  v_free_plan uuid;
  v_chunk integer;
begin
  if not private.is_service() then
    raise exception 'only the fleet fans signals out' using errcode = 'insufficient_privilege';
  end if;
  if p_phase not in ('open', 'close', 'update') then
    raise exception 'unknown fan-out phase %', p_phase using errcode = 'invalid_parameter_value';
  end if;
  executed := 0; skipped := 0; notified := 0;
  select * into v_sig from public.signals g where g.id = p_signal_id;
  if not found then
    return next;
    return;
  end if;
  select s.name into v_strategy_name from public.strategies s where s.id = v_sig.strategy_id;
  v_label := format('%s %s %s', v_strategy_name, upper(v_sig.side), v_sig.pair);

  if p_phase = 'update' then
    if not private.signal_first_announcement(v_sig.id, 'update:' || v_sig.updated_at) then
      return next;
      return;
    end if;
    insert into public.notifications (user_id, kind, title, body, data)
    select ss.subscriber_id, 'signal', 'Signal updated: ' || v_label,
           format('Stop-loss %s, take-profit %s.', coalesce(v_sig.stop_loss::text, '-'), coalesce(v_sig.take_profit::text, '-')),
           jsonb_build_object('signal_id', v_sig.id, 'strategy_id', v_sig.strategy_id, 'status', v_sig.status)
      from public.strategy_subscriptions ss
     where ss.strategy_id = v_sig.strategy_id and ss.status = 'active';
    get diagnostics notified = row_count;
    return next;
    return;
  end if;

  if p_phase = 'close' then
    return query select * from private.signal_fan_out_close(v_sig, v_label);
    return;
  end if;

  -- 'open' ------------------------------------------------------------------------------
  if v_sig.status not in ('open', 'updated') then
    return next;   -- closed before it could be copied: nothing to open
    return;
  end if;
  v_free_plan := (select pl.id from public.plans pl where pl.name = 'Free');
  -- A signal without an entry price copies at the last close of its market.
  v_price := coalesce(v_sig.entry_price,
                      (select c.close from public.candles c where c.symbol = v_sig.pair
                        order by c.open_time desc limit 1));

  create temporary table if not exists fanout_candidates (
    subscription_id uuid primary key, subscriber_id uuid, bot_id uuid, epoch bigint, exchange text,
    amount numeric, leverage numeric, credits numeric, reason text, chunk integer
  ) on commit drop;
  truncate pg_temp.fanout_candidates;

  insert into pg_temp.fanout_candidates
  select c.subscription_id, c.subscriber_id, c.bot_id, c.epoch, c.exchange, c.amount, c.leverage, c.credits,
         case
           when c.bot_id is null then 'no_bot'
           when not c.is_paper_trade then 'live_bot_not_supported'
           when c.bot_status <> 'running' or c.epoch is null then 'bot_not_running'
           when v_sig.side = 'short' and not c.allow_short then 'short_not_allowed'
           when v_price is null then 'no_price'
           when c.amount is null or c.amount <= 0 then 'invalid_sizing'
           when c.open_trades >= c.max_open_trades then 'max_open_trades'
           when c.daily_loss_limit is not null and -c.daily_pnl >= c.daily_loss_limit then 'daily_loss_limit'
           when c.amount * v_price / c.leverage > c.current_balance then 'insufficient_balance'
           when c.credits > c.available then 'insufficient_credits'
         end,
         ((row_number() over (order by c.bot_id)) - 1)::integer / 1000
    from (
      select ss.id as subscription_id, ss.subscriber_id, b.id as bot_id, l.epoch, b.exchange, b.status as bot_status,
             b.is_paper_trade, b.allow_short, b.max_open_trades, b.daily_loss_limit, b.current_balance,
             least(v_sig.leverage, b.leverage, coalesce((ss.sizing ->> 'max_leverage')::numeric, 125)) as leverage,
             round(least(
               case coalesce(ss.sizing ->> 'mode', 'stake')
                 when 'fixed_base' then (ss.sizing ->> 'amount')::numeric
                 when 'fixed_quote' then (ss.sizing ->> 'amount')::numeric / v_price
                 when 'percent_balance' then b.current_balance * (ss.sizing ->> 'percent')::numeric / 100 / v_price
                 else b.stake_amount / v_price
               end,
               coalesce((ss.sizing ->> 'max_amount')::numeric, 'infinity'::numeric)), 8) as amount,
             coalesce((p.features ->> 'credits_per_trade')::numeric, 0) as credits,
             coalesce(a.credits_posted - a.debits_posted - a.debits_pending, 0) as available,
             (select count(*) from public.trades t where t.bot_id = b.id and t.status = 'open') as open_trades,
             case when b.daily_loss_limit is null then 0 else
               (select coalesce(sum(t.profit), 0) from public.trades t
                 where t.bot_id = b.id and t.status = 'closed' and t.exit_time >= date_trunc('day', now())) end as daily_pnl
        from public.strategy_subscriptions ss
        left join public.bots b on b.id = ss.bot_id and b.user_id = ss.subscriber_id
        left join public.bot_leases l on l.bot_id = b.id
        left join public.credit_accounts a on a.user_id = ss.subscriber_id and a.kind = 'user'
        -- The subscriber's current plan (private.current_plan, inlined for the whole set).
        left join lateral (select cs.plan_id from public.subscriptions cs
                            where cs.user_id = ss.subscriber_id and cs.status in ('active', 'trial')
                              and cs.expires_at > now() limit 1) cur on true
        left join public.plans p on p.id = coalesce(cur.plan_id, v_free_plan)
       where ss.strategy_id = v_sig.strategy_id and ss.status = 'active' and ss.auto_execute
         and not exists (select 1 from public.signal_executions e
                          where e.signal_id = v_sig.id and e.subscription_id = ss.id and e.phase = 'open')
    ) c;

  -- The gate: one execution row per (signal, subscription); a concurrent or repeated pass
  -- finds them and writes nothing more.
  with gate as (
    insert into public.signal_executions (signal_id, subscription_id, subscriber_id, bot_id, phase, status, reason,
                                          order_id, trade_id, amount, price, credits_due, charge_status)
    select v_sig.id, f.subscription_id, f.subscriber_id, f.bot_id, 'open',
           case when f.reason is null then 'executed' else 'skipped' end, f.reason,
           case when f.reason is null then md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid end,
           case when f.reason is null then md5('copy-trade:' || v_sig.id || ':' || f.subscription_id)::uuid end,
           f.amount, v_price, case when f.reason is null then f.credits else 0 end,
           case when f.reason is null and f.credits > 0 then 'pending' else 'none' end
      from pg_temp.fanout_candidates f
    on conflict (signal_id, subscription_id, phase) do nothing
    returning subscription_id
  )
  delete from pg_temp.fanout_candidates f where not exists (select 1 from gate where gate.subscription_id = f.subscription_id);

  select count(*) filter (where f.reason is null), count(*) filter (where f.reason is not null)
    into executed, skipped from pg_temp.fanout_candidates f;

  -- The bot engine's persistence path: filled paper orders and open trades, fenced by epoch.
  -- A bot whose lease moved on meanwhile is skipped by it and reported here. In chunks of
  -- 1,000 bots: the bot engine's batch checks membership in its batch's bot array.
  for v_chunk in select distinct f.chunk from pg_temp.fanout_candidates f where f.reason is null order by 1 loop
  with stale as (select s.stale_bot_id from public.bot_apply_steps(
    coalesce((select jsonb_agg(jsonb_build_object('bot_id', f.bot_id, 'epoch', f.epoch))
                from pg_temp.fanout_candidates f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(jsonb_build_object(
                'id', md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid,
                'bot_id', f.bot_id, 'user_id', f.subscriber_id,
                'client_order_id', 'tfc-' || substr(md5(v_sig.id || ':' || f.subscription_id || ':open'), 1, 28),
                'exchange', f.exchange, 'symbol', v_sig.pair,
                'side', case v_sig.side when 'long' then 'buy' else 'sell' end, 'order_type', 'market',
                'amount', f.amount, 'filled', f.amount, 'average_price', v_price,
                'fee', round(f.amount * v_price * private.copy_fee_rate(), 12),
                'fee_currency', split_part(split_part(v_sig.pair, '/', 2), ':', 1),
                'status', 'closed', 'reason', 'copy of signal ' || v_sig.id, 'is_paper_trade', true, 'signal_id', v_sig.id,
                'lease_epoch', f.epoch))
                from pg_temp.fanout_candidates f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(jsonb_build_object(
                'id', md5('copy-trade:' || v_sig.id || ':' || f.subscription_id)::uuid,
                'bot_id', f.bot_id, 'user_id', f.subscriber_id, 'exchange', f.exchange, 'trading_pair', v_sig.pair,
                'side', case v_sig.side when 'long' then 'buy' else 'sell' end, 'direction', v_sig.side,
                'order_type', 'market', 'amount', f.amount, 'price', v_price,
                'fee', round(f.amount * v_price * private.copy_fee_rate(), 12), 'status', 'open',
                'entry_time', now(),
                'entry_order_id', md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid,
                'is_paper_trade', true, 'signal_id', v_sig.id, 'stop_loss_price', v_sig.stop_loss, 'take_profit_price', v_sig.take_profit,
                'lease_epoch', f.epoch,
                'metadata', jsonb_build_object('signal_id', v_sig.id, 'strategy_id', v_sig.strategy_id,
                                               'subscription_id', f.subscription_id, 'leverage', f.leverage)))
                from pg_temp.fanout_candidates f where f.reason is null and f.chunk = v_chunk), '[]')) s),
  marked as (
    update public.signal_executions e
       set status = 'skipped', reason = 'bot_lease_changed', order_id = null, trade_id = null,
           credits_due = 0, charge_status = 'none'
      from stale where e.signal_id = v_sig.id and e.phase = 'open' and e.bot_id = stale.stale_bot_id
    returning e.subscription_id
  )
  update pg_temp.fanout_candidates f set reason = 'bot_lease_changed' from marked m where m.subscription_id = f.subscription_id;
  get diagnostics v_stale = row_count;
  executed := executed - v_stale;
  skipped := skipped + v_stale;
  end loop;

  v_announce := private.signal_first_announcement(v_sig.id, 'open');
  -- Everyone subscribed hears about the signal: a fill for those copied, the reason for
  -- those skipped, the signal itself for those who only follow.
  insert into public.notifications (user_id, kind, title, body, data)
  select ss.subscriber_id,
         case when f.subscription_id is null then 'signal'
              when f.reason is null then 'fill'
              when f.reason = 'insufficient_credits' then 'low_credits'
              else 'error' end,
         case when f.subscription_id is null then 'New signal: ' || v_label
              when f.reason is null then 'Copied: ' || v_label
              else 'Not copied: ' || v_label end,
         case when f.subscription_id is null
                then format('Entry %s, stop-loss %s, take-profit %s, leverage %s.', coalesce(v_sig.entry_price::text, 'market'),
                            coalesce(v_sig.stop_loss::text, '-'), coalesce(v_sig.take_profit::text, '-'), v_sig.leverage)
              when f.reason is null then format('Bought %s at %s on your paper bot.', f.amount, v_price)
              else 'Skipped: ' || replace(f.reason, '_', ' ') || '.' end,
         jsonb_build_object('signal_id', v_sig.id, 'strategy_id', v_sig.strategy_id, 'reason', f.reason)
    from public.strategy_subscriptions ss
    left join pg_temp.fanout_candidates f on f.subscription_id = ss.id
   where ss.strategy_id = v_sig.strategy_id and ss.status = 'active'
     and (f.subscription_id is not null
          or (not ss.auto_execute and v_announce));
  get diagnostics notified = row_count;
  return next;
end;
$$;
revoke execute on function public.signal_fan_out(uuid, text) from public, anon, authenticated;
grant execute on function public.signal_fan_out(uuid, text) to service_role;

-- Charge the credits of up to p_limit copies of a signal (the plan's credits per trade,
-- posted through the ledger batch to system:usage). Transfer ids are derived from (signal,
-- subscription), so a repeated chunk charges nobody twice. A rejected charge (the credits
-- were spent since the fan-out looked) is recorded and its subscriber notified.
-- Returns how many were charged and rejected; call again until both are 0.
create or replace function public.signal_charge_copies(p_signal_id uuid, p_limit integer default 500)
returns table (charged integer, rejected integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_usage uuid := (select a.id from public.credit_accounts a where a.code = 'system:usage');
begin
  if not private.is_service() then
    raise exception 'only the fleet charges copy trades' using errcode = 'insufficient_privilege';
  end if;
  with todo as (
    select e.id, e.subscription_id, e.subscriber_id, e.credits_due,
           md5('copy-trade-credits:' || e.signal_id || ':' || e.subscription_id)::uuid as transfer_id,
           a.id as account_id
      from public.signal_executions e
      join public.credit_accounts a on a.user_id = e.subscriber_id and a.kind = 'user'
     where e.signal_id = p_signal_id and e.charge_status = 'pending'
     order by e.id
     limit p_limit
     for update of e skip locked
  ), results as (
    select t.id, r.result
      from public.credit_create_transfers(coalesce((
             select jsonb_agg(jsonb_build_object(
                      'action', 'transfer', 'id', t.transfer_id, 'debit_account_id', t.account_id,
                      'credit_account_id', v_usage, 'amount', t.credits_due, 'kind', 'usage',
                      'reference_type', 'signal', 'reference_id', p_signal_id::text,
                      'metadata', jsonb_build_object('usage', 'trade', 'quantity', 1, 'unit_price', t.credits_due,
                                                     'subscription_id', t.subscription_id)) order by t.transfer_id)
               from todo t), '[]')) r
      join todo t on t.transfer_id = r.id
  ), marked as (
    update public.signal_executions e
       set charge_status = case when r.result in ('ok', 'exists') then 'charged' else 'rejected' end
      from results r
     where e.id = r.id
    returning e.charge_status, e.subscriber_id, e.signal_id
  ), notes as (
    insert into public.notifications (user_id, kind, title, body, data)
    select m.subscriber_id, 'low_credits', 'Copy trade not charged',
           'Your credits no longer covered a copied trade; top up to keep copying signals.',
           jsonb_build_object('signal_id', m.signal_id)
      from marked m where m.charge_status = 'rejected'
  )
  select count(*) filter (where m.charge_status = 'charged')::integer,
         count(*) filter (where m.charge_status = 'rejected')::integer
    into charged, rejected
    from marked m;
  return next;
end;
$$;

revoke execute on function public.signal_charge_copies(uuid, integer) from public, anon, authenticated;
grant execute on function public.signal_charge_copies(uuid, integer) to service_role;

-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- Outbound notifications: every insert into public.notifications (from any capability) for
-- users who opted in to Telegram or Discord (profiles.telegram_chat_id /
-- discord_webhook_url) queues notify.deliver jobs, 100 notifications per job, in one
-- statement-level pass. The worker records each channel's outcome in
-- notifications.channels, so a retried job never sends a channel twice.
create or replace function private.notify_enqueue_outbound() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_payloads jsonb[];
begin
  select array_agg(jsonb_build_object('notification_ids', c.ids)) into v_payloads
    from (select jsonb_agg(x.id order by x.id) as ids
            from (select n.id, (row_number() over (order by n.id) - 1) / 100 as chunk
                    from new_rows n join public.profiles p on p.id = n.user_id
                   where p.telegram_chat_id is not null or p.discord_webhook_url is not null) x
           group by x.chunk) c;
  if v_payloads is not null then
    perform public.enqueue_jobs('notify.deliver', v_payloads, 'default', 0, 8);
  end if;
  return null;
end;
$$;
revoke all on function private.notify_enqueue_outbound() from public, anon, authenticated;
create trigger notifications_enqueue_outbound after insert on public.notifications
  referencing new table as new_rows
  for each statement execute function private.notify_enqueue_outbound();

-- A Discord webhook URL is where the fleet will POST: only Discord's webhook endpoints.
alter table public.profiles add constraint profiles_discord_webhook_url_is_discord
  check (discord_webhook_url is null
         or discord_webhook_url ~ '^https://(ptb\.|canary\.)?(discord|discordapp)\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]+$')
  not valid;

-- ---------------------------------------------------------------------------
-- Copy execution, faster at scale:
-- - the fan-out hands its fills to public.bot_apply_steps in chunks of 1,000 bots (that
--   function checks every row against its batch's array of bot ids, so one call with all
--   10,000 bots costs 10,000 x 10,000 comparisons);
-- - signal_executions keeps only the foreign keys that cascade (signal, subscription): the
--   subscriber follows from the subscription, the bot is a record of where the copy went.

alter table public.signal_executions
  drop constraint signal_executions_subscriber_id_fkey,
  drop constraint signal_executions_bot_id_fkey;
drop index public.signal_executions_bot_id_idx;
