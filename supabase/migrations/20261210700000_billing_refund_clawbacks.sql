-- Refunds and chargebacks claw credits back through new ledger transfers.
--
-- A refunded (or charged-back) invoice takes back the credits it bought. What the user
-- still has is taken from their account, as before. Credits the user no longer has are
-- traced to the strategy payments they made since the invoice was paid, newest first:
-- each is reversed to system:purchases from where it went, the provider's share from
-- their provider_earnings account and the platform's from system:platform_revenue, and the
-- strategy subscription it paid for is cancelled. Nothing is ever edited: every step is a
-- new transfer with an id derived from the invoice and the transfer it reverses. A payment
-- is never claimed twice: what earlier reversals took of it is not taken again.
--
-- What no account can cover (the user spent the credits elsewhere, the provider was paid
-- out already) is never forced through the ledger (user and provider accounts cannot go
-- negative): it is recorded in public.credit_exposures, one row per invoice and account,
-- for admins to settle outside the ledger (admin_resolve_credit_exposure).
--
-- A lost chargeback (Stripe charge.dispute.closed with status lost, Paystack
-- charge.dispute.resolve accepted by the merchant) reverses the invoice like a refund:
-- billing_apply_chargeback records the dispute and applies 'refunded'.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.credit_exposures (
  id uuid primary key default gen_random_uuid(),
  invoice_id uuid not null references public.invoices (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  account_kind text not null constraint credit_exposures_account_kind_known
    check (account_kind in ('user', 'provider_earnings')),
  reason text not null constraint credit_exposures_reason_known check (reason in ('refund', 'chargeback')),
  amount_due numeric(24, 8) not null constraint credit_exposures_amount_due_positive check (amount_due > 0),
  amount_recovered numeric(24, 8) not null default 0
    constraint credit_exposures_amount_recovered_not_negative check (amount_recovered >= 0),
  shortfall numeric(24, 8) generated always as (amount_due - amount_recovered) stored,
  status text not null default 'open' constraint credit_exposures_status_known
    check (status in ('open', 'settled', 'written_off')),
  resolution text constraint credit_exposures_resolution_length check (char_length(resolution) <= 1000),
  resolved_by uuid references public.profiles (id) on delete set null,
  resolved_at timestamptz,
  created_at timestamptz not null default now(),
  constraint credit_exposures_amount_due_finite
    check (amount_due not in ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric)),
  constraint credit_exposures_amount_recovered_finite
    check (amount_recovered not in ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric)),
  constraint credit_exposures_shortfall_positive check (amount_recovered < amount_due),
  constraint credit_exposures_one_per_invoice_and_account unique (invoice_id, user_id, account_kind)
);

create index credit_exposures_user_id_idx on public.credit_exposures (user_id);
create index credit_exposures_resolved_by_idx on public.credit_exposures (resolved_by);
create index credit_exposures_open_idx on public.credit_exposures (created_at) where status = 'open';

-- The disputes a provider decided against us; their invoice is reversed as a chargeback.
create table private.billing_chargebacks (
  invoice_id uuid not null references public.invoices (id) on delete cascade,
  dispute_ref text not null,
  created_at timestamptz not null default now(),
  primary key (invoice_id, dispute_ref)
);

-- How much of each strategy payment every reversed invoice has claimed (recovered or
-- not), so two invoices never claim the same credits of one payment.
create table private.billing_clawback_parts (
  invoice_id uuid not null references public.invoices (id) on delete cascade,
  payment_transfer_id uuid not null,
  attributed numeric(24, 8) not null check (attributed > 0),
  primary key (payment_transfer_id, invoice_id)
);

create index billing_clawback_parts_invoice_idx on private.billing_clawback_parts (invoice_id);

-- ======================================================================================
-- RLS
-- ======================================================================================

alter table public.credit_exposures enable row level security;

create policy "Admins can read every credit exposure" on public.credit_exposures
  for select to tradefleet_admin using (true);

revoke all on public.credit_exposures from anon, authenticated;
grant select on public.credit_exposures to authenticated;
grant all on public.credit_exposures to service_role;

revoke all on private.billing_chargebacks, private.billing_clawback_parts from public, anon, authenticated;

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- Records what an account could not give back (nothing when it gave everything).
create or replace function private.billing_record_exposure(
  p_invoice public.invoices, p_user_id uuid, p_kind text, p_due numeric, p_recovered numeric
) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  if p_due <= 0 or p_recovered >= p_due then
    return;
  end if;
  insert into public.credit_exposures (invoice_id, user_id, account_kind, reason, amount_due, amount_recovered)
  values (p_invoice.id, p_user_id, p_kind,
          case when exists (select 1 from private.billing_chargebacks c where c.invoice_id = p_invoice.id)
               then 'chargeback' else 'refund' end,
          p_due, p_recovered)
  on conflict (invoice_id, user_id, account_kind) do update
     set amount_due = public.credit_exposures.amount_due + excluded.amount_due,
         amount_recovered = public.credit_exposures.amount_recovered + excluded.amount_recovered;
end;
$$;

revoke all on function private.billing_record_exposure(public.invoices, uuid, text, numeric, numeric)
  from public, anon, authenticated;

-- A paid invoice refunded or charged back: the credits it bought come back to
-- system:purchases from the user, then from the strategy payments they made with them
-- (provider and platform shares); the rest is an exposure. The plan it paid for ends.
create or replace function private.billing_on_refunded(p_invoice public.invoices) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_purchases uuid := private.credit_system_account('system:purchases');
  v_user_account public.credit_accounts;
  v_from public.credit_accounts;
  v_left numeric;
  v_take numeric;
  v_part numeric;
  v_recovered numeric := 0;
  v_payment record;
  v_providers jsonb := '{}'::jsonb;
  v_provider text;
  v_n integer;
begin
  if p_invoice.credits > 0 then
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
    v_left := p_invoice.credits;
    v_take := least(v_left, greatest(v_user_account.credits_posted - v_user_account.debits_posted
                                     - v_user_account.debits_pending, 0));
    if v_take > 0 then
      perform public.credit_create_transfer(
        md5('invoice-refund:' || p_invoice.id)::uuid,
        v_user_account.id, v_purchases, v_take, 'refund', 'invoice', p_invoice.id::text,
        jsonb_build_object('purchased', p_invoice.credits, 'taken_back', v_take));
      v_left := v_left - v_take;
      v_recovered := v_take;
    end if;

    -- What the user no longer has: reverse their strategy payments since the payment,
    -- newest first, each share from the account it went to.
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
        values (p_invoice.id, v_payment.id, case when v_from.kind = 'provider_earnings' then v_part else v_take end);
      end if;
      if v_take > 0 then
        perform public.credit_create_transfer(
          md5('invoice-clawback:' || p_invoice.id || ':' || v_payment.id)::uuid,
          v_from.id, v_purchases, v_take, 'refund', 'invoice', p_invoice.id::text,
          jsonb_build_object('clawback_of', v_payment.id, 'strategy_subscription', v_payment.reference_id,
                             'share', case when v_from.kind = 'provider_earnings' then 'provider' else 'platform' end));
      end if;
      if v_from.kind = 'provider_earnings' then
        -- The provider's share counts as recovered for the user either way: what the
        -- provider cannot give back is the provider's exposure.
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

    perform private.billing_record_exposure(p_invoice, p_invoice.user_id, 'user', p_invoice.credits, v_recovered);
    for v_provider in select jsonb_object_keys(v_providers) loop
      perform private.billing_record_exposure(p_invoice, v_provider::uuid, 'provider_earnings',
                                              (v_providers -> v_provider ->> 0)::numeric,
                                              (v_providers -> v_provider ->> 1)::numeric);
    end loop;
  end if;

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
          format('%s %s refunded.', p_invoice.amount, p_invoice.currency),
          jsonb_build_object('invoice_id', p_invoice.id, 'status', 'refunded'));
end;
$$;

revoke all on function private.billing_on_refunded(public.invoices) from public, anon, authenticated;

-- A dispute the provider decided against us: recorded, then the invoice is reversed as a
-- refund would be. Returns billing_apply_invoice_event's outcome.
create or replace function public.billing_apply_chargeback(
  p_invoice_id uuid,
  p_dispute_ref text,
  p_occurred_at timestamptz default null
) returns text
language plpgsql security definer
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  if p_dispute_ref is null or btrim(p_dispute_ref) = '' or char_length(p_dispute_ref) > 200 then
    raise exception 'a chargeback names its dispute (at most 200 characters)' using errcode = 'invalid_parameter_value';
  end if;
  if not exists (select 1 from public.invoices i where i.id = p_invoice_id) then
    return 'not_found';
  end if;
  insert into private.billing_chargebacks (invoice_id, dispute_ref) values (p_invoice_id, p_dispute_ref)
  on conflict do nothing;
  return public.billing_apply_invoice_event(p_invoice_id, 'refunded', null, p_occurred_at, '{}');
end;
$$;

revoke execute on function public.billing_apply_chargeback(uuid, text, timestamptz) from public, anon, authenticated;
grant execute on function public.billing_apply_chargeback(uuid, text, timestamptz) to service_role;

-- Admins settle an exposure (recovered outside the ledger) or write it off, with a reason.
create or replace function public.admin_resolve_credit_exposure(
  p_id uuid,
  p_status text,
  p_reason text
) returns public.credit_exposures
language plpgsql security definer
set search_path = ''
as $$
declare
  v_actor uuid := private.require_admin();
  v_row public.credit_exposures;
begin
  perform private.admin_check_reason(p_reason);
  if p_status is null or p_status not in ('settled', 'written_off') then
    raise exception 'an exposure is resolved as settled or written_off, not %', p_status
      using errcode = 'invalid_parameter_value';
  end if;
  update public.credit_exposures e
     set status = p_status, resolution = p_reason, resolved_by = v_actor, resolved_at = now()
   where e.id = p_id and e.status = 'open'
  returning * into v_row;
  if not found then
    raise exception 'no open credit exposure %', p_id using errcode = 'no_data_found';
  end if;
  perform private.admin_audit(v_actor, 'resolve_credit_exposure', 'credit_exposure', p_id::text,
                              p_reason, '{}', jsonb_build_object('status', p_status));
  return v_row;
end;
$$;

revoke execute on function public.admin_resolve_credit_exposure(uuid, text, text) from public, anon;
grant execute on function public.admin_resolve_credit_exposure(uuid, text, text) to authenticated, service_role;
