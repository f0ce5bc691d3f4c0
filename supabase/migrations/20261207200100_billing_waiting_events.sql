-- Payment events in any order: an event that cannot apply yet waits for its predecessor.
--
-- A refund is applied only to a paid invoice: one that arrives before its payment is no
-- longer recorded on the pending invoice (which kept the credits and the plan's monthly
-- credits apart from the natural order's result) but answered 'not_paid_yet'; the worker
-- sets the event waiting (public.webhook_events.status = 'waiting') until the payment is
-- applied, then applies it, so paid -> refunded runs its effects as in the natural order.
-- Events that name no known invoice yet (a refund or the payment intent's own event
-- before the checkout, a renewal before the subscription's first payment) wait too.
--
-- invoices.provider_refs keeps every provider-side reference an applied event named
-- (checkout session, payment intent, provider invoice, subscription), so later events
-- naming any of them find the invoice. When a waiting event's predecessor is applied the
-- worker wakes it; the trigger below enqueues its billing.webhook job again.
--
-- Transitions now:
--   pending/failed/expired -> paid      credits bought, plan activated / renewed / changed
--   pending                -> failed | expired | cancelled
--   failed                 -> expired
--   paid                   -> refunded  credits taken back, the plan it bought cancelled
--   refunded of an unpaid invoice: 'not_paid_yet' (waits)

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

alter table public.invoices add column provider_refs text[] not null default '{}';

create index invoices_provider_refs_idx on public.invoices using gin (provider_refs);

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- The state machine. Returns 'applied' (the transition happened and its effects ran),
-- 'unchanged' (already there, or a transition that may not happen now: replays and late
-- deliveries), 'not_paid_yet' (a refund of an invoice whose payment has not been applied:
-- the event waits for it), 'amount_mismatch' (a payment for less than the invoice: not
-- accepted) or 'not_found'.
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
    when 'refunded' then v_inv.status = 'paid'
  end;
  if p_status = 'refunded' and v_inv.status in ('pending', 'failed', 'expired') then
    return 'not_paid_yet';
  end if;
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
  elsif p_status = 'refunded' then
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

-- A waiting payment event woken by its predecessor: one more billing.webhook job (one per
-- wake: the key carries the attempts it has had).
create or replace function private.billing_requeue_webhook_event() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform public.enqueue_job('billing.webhook', jsonb_build_object('webhook_event_id', new.id), 'default',
                             null, 0, 10,
                             'billing-webhook:' || new.provider || ':' || new.event_id || ':woken:' || new.attempts);
  return null;
end;
$$;

revoke all on function private.billing_requeue_webhook_event() from public, anon, authenticated;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger webhook_events_requeue_billing after update of status on public.webhook_events
  for each row when (old.status = 'waiting' and new.status = 'received'
                     and new.provider in ('stripe', 'paystack', 'tripay'))
  execute function private.billing_requeue_webhook_event();
