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
