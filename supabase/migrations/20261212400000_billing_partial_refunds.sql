-- Partial refunds: a provider gives back part of a payment.
--
-- A paid invoice of which the provider refunded part (Stripe charge.refunded with
-- amount_refunded < amount, a Paystack refund.processed for less than the payment) becomes
-- 'partially_refunded'. It keeps its plan; the credits it bought are clawed back in
-- proportion to the money refunded, as the full refund does (new transfers only, the
-- user's balance first, then their strategy payments, the rest an exposure):
--
--   credits clawed back so far = trunc(credits * amount_refunded / amount, 8)
--
-- Each further refund claws back only the difference to the new total, and a refund that
-- reaches the invoice's amount is the full refund ('refunded', plan ended) that claws back
-- what is left: credits exactly, never more. invoices.amount_refunded and credits_refunded
-- keep the totals.
--
-- Providers count refunds differently: Stripe reports the charge's total refunded so far
-- (cumulative: a late, smaller total changes nothing), Paystack one refund at a time (each
-- refund reference counted once). public.billing_apply_refund takes either.
--
-- Transitions now:
--   paid | partially_refunded -> partially_refunded   part of the credits taken back
--   paid | partially_refunded -> refunded             the rest taken back, the plan ended

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

alter table public.invoices
  add column amount_refunded numeric(24, 8) not null default 0
    constraint invoices_amount_refunded_not_negative check (amount_refunded >= 0
      and amount_refunded not in ('NaN'::numeric, 'Infinity'::numeric)),
  add column credits_refunded numeric(24, 8) not null default 0
    constraint invoices_credits_refunded_not_negative check (credits_refunded >= 0
      and credits_refunded not in ('NaN'::numeric, 'Infinity'::numeric));

alter table public.invoices drop constraint invoices_status_known;
alter table public.invoices add constraint invoices_status_known
  check (status in ('pending', 'paid', 'failed', 'expired', 'cancelled', 'partially_refunded', 'refunded'));

-- The refunds counted for each invoice: a provider's refund reference (or, for a
-- cumulative report, the total it named) once.
create table private.billing_refunds (
  invoice_id uuid not null references public.invoices (id) on delete cascade,
  refund_ref text not null,
  amount numeric(24, 8) not null check (amount > 0),
  cumulative boolean not null,
  created_at timestamptz not null default now(),
  primary key (invoice_id, refund_ref)
);

-- ======================================================================================
-- RLS
-- ======================================================================================

revoke all on private.billing_refunds from public, anon, authenticated;

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- Claws p_credits of the invoice's credits back to system:purchases: from the user's
-- balance, then from the strategy payments they made since the payment (the provider's
-- share from their earnings, the platform's fee from revenue), newest first; what no
-- account can cover is an exposure. p_step names the step in the transfers' ids (null:
-- the ids of a single full refund), so every step is its own set of new transfers.
create or replace function private.billing_claw_back(p_invoice public.invoices, p_credits numeric, p_step text)
returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_purchases uuid := private.credit_system_account('system:purchases');
  v_key text := p_invoice.id::text || coalesce(':' || p_step, '');
  v_user_account public.credit_accounts;
  v_from public.credit_accounts;
  v_left numeric;
  v_take numeric;
  v_part numeric;
  v_recovered numeric := 0;
  v_payment record;
  v_providers jsonb := '{}'::jsonb;
  v_provider text;
begin
  if p_credits is null or p_credits <= 0 then
    return;
  end if;
  -- Lock order of the ledger: user-owned accounts by id, then system accounts.
  perform 1 from public.credit_accounts a
   where a.user_id = p_invoice.user_id and a.kind = 'user'
      or a.id in (select t.credit_account_id from public.credit_transfers t
                   where t.debit_account_id = (select u.id from public.credit_accounts u
                                                where u.user_id = p_invoice.user_id and u.kind = 'user')
                     and t.kind = 'revenue_share' and t.phase = 'posted'
                     and t.created_at >= coalesce(p_invoice.paid_at, p_invoice.created_at))
      or a.id = v_purchases
   order by a.user_id is null, a.id for no key update;

  select * into v_user_account from public.credit_accounts a
   where a.user_id = p_invoice.user_id and a.kind = 'user';
  v_left := p_credits;
  v_take := least(v_left, greatest(v_user_account.credits_posted - v_user_account.debits_posted
                                   - v_user_account.debits_pending, 0));
  if v_take > 0 then
    perform public.credit_create_transfer(
      md5('invoice-refund:' || v_key)::uuid,
      v_user_account.id, v_purchases, v_take, 'refund', 'invoice', p_invoice.id::text,
      jsonb_build_object('purchased', p_invoice.credits, 'taken_back', v_take, 'step', p_step));
    v_left := v_left - v_take;
    v_recovered := v_take;
  end if;

  for v_payment in
    select t.id, t.credit_account_id, t.amount, t.reference_id
      from public.credit_transfers t
     where v_left > 0 and v_user_account.id is not null
       and t.debit_account_id = v_user_account.id and t.kind = 'revenue_share' and t.phase = 'posted'
       and t.created_at >= coalesce(p_invoice.paid_at, p_invoice.created_at)
     order by t.created_at desc, t.id
  loop
    exit when v_left <= 0;
    v_part := least(v_payment.amount - coalesce((select sum(c.attributed) from private.billing_clawback_parts c
                                                  where c.payment_transfer_id = v_payment.id), 0),
                    v_left);
    continue when v_part <= 0;
    select * into v_from from public.credit_accounts a where a.id = v_payment.credit_account_id;
    v_take := least(v_part, greatest(v_from.credits_posted - v_from.debits_posted - v_from.debits_pending, 0));
    -- A provider's share is claimed whole (what it cannot give back is its exposure); of
    -- the platform's fee only what it gave back, the rest stays the user's to find.
    if v_from.kind = 'provider_earnings' or v_take > 0 then
      insert into private.billing_clawback_parts (invoice_id, payment_transfer_id, attributed)
      values (p_invoice.id, v_payment.id, case when v_from.kind = 'provider_earnings' then v_part else v_take end)
      on conflict (payment_transfer_id, invoice_id) do update
         set attributed = private.billing_clawback_parts.attributed + excluded.attributed;
    end if;
    if v_take > 0 then
      perform public.credit_create_transfer(
        md5('invoice-clawback:' || v_key || ':' || v_payment.id)::uuid,
        v_from.id, v_purchases, v_take, 'refund', 'invoice', p_invoice.id::text,
        jsonb_build_object('clawback_of', v_payment.id, 'strategy_subscription', v_payment.reference_id,
                           'share', case when v_from.kind = 'provider_earnings' then 'provider' else 'platform' end,
                           'step', p_step));
    end if;
    if v_from.kind = 'provider_earnings' then
      v_provider := v_from.user_id::text;
      v_providers := jsonb_set(v_providers, array[v_provider],
        jsonb_build_array(coalesce((v_providers -> v_provider ->> 0)::numeric, 0) + v_part,
                          coalesce((v_providers -> v_provider ->> 1)::numeric, 0) + v_take));
      v_recovered := v_recovered + v_part;
      v_left := v_left - v_part;
    else
      v_recovered := v_recovered + v_take;
      v_left := v_left - v_take;
    end if;
    update public.strategy_subscriptions s
       set status = 'cancelled', cancelled_at = coalesce(s.cancelled_at, now())
     where s.id::text = v_payment.reference_id and s.status in ('active', 'paused');
  end loop;

  perform private.billing_record_exposure(p_invoice, p_invoice.user_id, 'user', p_credits, v_recovered);
  for v_provider in select jsonb_object_keys(v_providers) loop
    perform private.billing_record_exposure(p_invoice, v_provider::uuid, 'provider_earnings',
                                            (v_providers -> v_provider ->> 0)::numeric,
                                            (v_providers -> v_provider ->> 1)::numeric);
  end loop;
end;
$$;

revoke all on function private.billing_claw_back(public.invoices, numeric, text) from public, anon, authenticated;

-- A paid (or partly refunded) invoice refunded in full or charged back (replaces the
-- earlier version): what partial refunds have not clawed back yet comes back, the plan it
-- paid for ends, the user is told.
create or replace function private.billing_on_refunded(p_invoice public.invoices) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_n integer;
begin
  perform private.billing_claw_back(p_invoice, p_invoice.credits - p_invoice.credits_refunded,
                                    case when p_invoice.credits_refunded > 0 then 'rest' end);
  update public.invoices i
     set credits_refunded = i.credits, amount_refunded = i.amount
   where i.id = p_invoice.id;

  update public.subscriptions s
     set status = 'cancelled', cancelled_at = now(), auto_renew = false
   where s.invoice_id = p_invoice.id and s.status in ('active', 'trial');
  get diagnostics v_n = row_count;
  if v_n > 0 then
    perform private.billing_enforce_plan_limits(p_invoice.user_id);
  end if;
  insert into public.notifications (user_id, kind, title, body, data)
  values (p_invoice.user_id, 'payment',
          case when exists (select 1 from private.billing_chargebacks c where c.invoice_id = p_invoice.id)
               then 'Payment charged back' else 'Payment refunded' end,
          format('%s %s refunded.', case when p_invoice.amount_refunded > 0 then p_invoice.amount - p_invoice.amount_refunded
                                       else p_invoice.amount end, p_invoice.currency),
          jsonb_build_object('invoice_id', p_invoice.id, 'status', 'refunded'));
end;
$$;

revoke all on function private.billing_on_refunded(public.invoices) from public, anon, authenticated;

-- The state machine (replaces the earlier version): as before, and a partly refunded
-- invoice may be refunded in full. Returns 'applied', 'unchanged', 'not_paid_yet',
-- 'amount_mismatch' or 'not_found'.
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
    when 'refunded' then v_inv.status in ('paid', 'partially_refunded')
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

-- A refund of part (or all) of a paid invoice, in the invoice's currency. p_cumulative:
-- p_amount is the total refunded so far (Stripe's amount_refunded); otherwise it is one
-- refund, counted once per p_refund_ref (Paystack). Returns 'applied', 'unchanged'
-- (replayed, late or already covered), 'not_paid_yet' (the payment has not been applied:
-- the event waits) or 'not_found'.
create or replace function public.billing_apply_refund(
  p_invoice_id uuid,
  p_refund_ref text,
  p_amount numeric,
  p_cumulative boolean,
  p_occurred_at timestamptz default null,
  p_details jsonb default '{}'
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_inv public.invoices;
  v_total numeric;
  v_credits numeric;
  v_n integer;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  if p_amount is null or p_amount <= 0 or p_amount in ('NaN'::numeric, 'Infinity'::numeric) then
    raise exception 'a refund is a positive amount, not %', p_amount using errcode = 'invalid_parameter_value',
      constraint = 'billing_refund_amount_positive';
  end if;
  if p_cumulative is null then
    raise exception 'say whether the amount is the total refunded so far' using errcode = 'invalid_parameter_value';
  end if;
  if not p_cumulative and (p_refund_ref is null or btrim(p_refund_ref) = '' or char_length(p_refund_ref) > 200) then
    raise exception 'a single refund names its reference (at most 200 characters)'
      using errcode = 'invalid_parameter_value', constraint = 'billing_refund_reference';
  end if;
  select * into v_inv from public.invoices i where i.id = p_invoice_id for update;
  if not found then return 'not_found'; end if;
  if v_inv.status in ('pending', 'failed', 'expired') then return 'not_paid_yet'; end if;
  if v_inv.status not in ('paid', 'partially_refunded') then return 'unchanged'; end if;

  if p_cumulative then
    v_total := least(greatest(v_inv.amount_refunded, p_amount), v_inv.amount);
    insert into private.billing_refunds (invoice_id, refund_ref, amount, cumulative)
    values (v_inv.id, 'total:' || p_amount::text, p_amount, true) on conflict do nothing;
  else
    insert into private.billing_refunds (invoice_id, refund_ref, amount, cumulative)
    values (v_inv.id, p_refund_ref, p_amount, false) on conflict do nothing;
    get diagnostics v_n = row_count;
    if v_n = 0 then return 'unchanged'; end if;
    v_total := least(v_inv.amount_refunded + p_amount, v_inv.amount);
  end if;
  if v_total <= v_inv.amount_refunded then return 'unchanged'; end if;
  if v_total >= v_inv.amount then
    return public.billing_apply_invoice_event(v_inv.id, 'refunded', null, p_occurred_at, p_details);
  end if;

  v_credits := trunc(v_inv.credits * v_total / v_inv.amount, 8);
  perform private.billing_claw_back(v_inv, v_credits - v_inv.credits_refunded, 'partial:' || v_total::text);
  update public.invoices i
     set status = 'partially_refunded', amount_refunded = v_total, credits_refunded = v_credits
   where i.id = v_inv.id
  returning * into v_inv;
  insert into public.notifications (user_id, kind, title, body, data)
  values (v_inv.user_id, 'payment', 'Payment partly refunded',
          format('%s %s of %s %s refunded%s.', v_inv.amount_refunded, v_inv.currency, v_inv.amount, v_inv.currency,
                 case when v_credits > 0 then format('; %s credits taken back', v_credits) else '' end),
          jsonb_build_object('invoice_id', v_inv.id, 'status', 'partially_refunded',
                             'amount_refunded', v_inv.amount_refunded, 'credits_refunded', v_credits));
  return 'applied';
end;
$$;

revoke execute on function public.billing_apply_refund(uuid, text, numeric, boolean, timestamptz, jsonb)
  from public, anon, authenticated;
grant execute on function public.billing_apply_refund(uuid, text, numeric, boolean, timestamptz, jsonb) to service_role;
