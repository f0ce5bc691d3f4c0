-- Checkout, renewals and dunning, trials and reminders.
--
-- Checkout: the Edge Function billing-checkout asks billing_checkout_open for the pending
-- invoice of (user, item, period) — a plan for a month or a year, or a credit pack — with
-- the amount and currency from the database, checked against what the provider accepts
-- (private.billing_currency_problem); it starts the provider's payment and records its URL
-- and references (billing_checkout_started), or removes the invoice when the provider
-- refused (billing_checkout_abort), so nothing is left half-created.
--
-- Renewals: a paid plan with auto-renew enters its renewal shortly before its period ends
-- (billing_renewals_due): the subscription keeps its plan through a grace period
-- (renewal_due_at = the period's end, grace_until = 7 days later, expires_at = grace_until)
-- and, for Paystack and Tripay, a pending renewal invoice appears. The fleet charges
-- Paystack's saved authorisation at the period's end and retries 1, 3 and 5 days after it;
-- Tripay renewals are closed transactions the user pays from the link they are sent
-- (3 days before the period ends); Stripe charges itself and tells us through its
-- webhooks (billing_provider_renewal_failed, billing_provider_subscription_ended). A
-- payment within the grace period starts the next period at the old period's end; at
-- grace_until the sweep (billing_expire_due) ends the plan: the user is on Free and their
-- bots beyond its limits are paused with the reason. The user is told at every step.
--
-- Trials: a plan with trial_days lets a user on Free try it once (billing_start_trial).
-- Reminders: 3 days and 1 day before a trial or a paid period ends (billing_send_reminders).
-- Cancellation at period end for every provider (billing_cancel_at_period_end).

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.credit_packs (
  id uuid primary key default gen_random_uuid(),
  name text not null constraint credit_packs_name_unique unique,
  credits numeric(20, 8) not null constraint credit_packs_credits_positive check (credits > 0),
  price numeric(12, 2) not null constraint credit_packs_price_positive check (price > 0),
  currency text not null default 'USD' constraint credit_packs_currency_code check (currency ~ '^[A-Z]{3}$'),
  is_active boolean not null default true,
  sort_order integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint credit_packs_credits_finite check (credits not in ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric)),
  constraint credit_packs_price_finite check (price not in ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric))
);

alter table public.plans
  add column trial_days integer not null default 0 constraint plans_trial_days_range check (trial_days between 0 and 90);

alter table public.invoices
  add column credit_pack_id uuid references public.credit_packs (id) on delete set null,
  add column subscription_id uuid references public.subscriptions (id) on delete set null,
  add column checkout_key text,
  add column checkout_url text,
  add column renewal_attempts integer not null default 0;

-- One open checkout per user, item and period; one renewal invoice per subscription period.
create unique index invoices_open_checkout_unique on public.invoices (user_id, checkout_key)
  where status = 'pending' and checkout_key is not null;
create index invoices_subscription_id_idx on public.invoices (subscription_id);
create index invoices_credit_pack_id_idx on public.invoices (credit_pack_id);

alter table public.subscriptions
  add column provider text constraint subscriptions_provider_known check (provider in ('stripe', 'paystack', 'tripay', 'manual')),
  add column period text not null default 'month' constraint subscriptions_period_known check (period in ('month', 'year')),
  add column cancel_at_period_end boolean not null default false,
  add column renewal_due_at timestamptz,
  add column grace_until timestamptz,
  add column past_due_since timestamptz,
  add column renewal_attempts integer not null default 0,
  add column next_renewal_attempt_at timestamptz,
  -- When the provider last told us about its subscription (older news is ignored).
  add column provider_updated_at timestamptz;

create index subscriptions_renewal_idx on public.subscriptions (expires_at)
  where status in ('active', 'trial') and expires_at <> 'infinity';

-- What a provider needs to charge a user again: Stripe's customer (billing portal),
-- Paystack's reusable authorisation, Tripay's last payment channel. Never readable by apps.
create table private.billing_payment_methods (
  user_id uuid not null references public.profiles (id) on delete cascade,
  provider text not null check (provider in ('stripe', 'paystack', 'tripay')),
  customer text,
  authorization_code text,
  email text,
  channel text,
  updated_at timestamptz not null default now(),
  primary key (user_id, provider)
);

-- Reminders sent: one per subscription, period end and lead.
create table private.billing_reminders (
  subscription_id uuid not null references public.subscriptions (id) on delete cascade,
  period_end timestamptz not null,
  days_before integer not null,
  sent_at timestamptz not null default now(),
  primary key (subscription_id, period_end, days_before)
);

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

revoke all on public.credit_packs from anon, authenticated;
grant all on public.credit_packs to service_role;
grant select on public.credit_packs to anon, authenticated;
alter table public.credit_packs enable row level security;
create policy "Anyone can read credit packs for sale" on public.credit_packs
  for select to anon, authenticated using (is_active);
create policy "Admins can read every credit pack" on public.credit_packs
  for select to tradefleet_admin using (true);

revoke all on private.billing_payment_methods, private.billing_reminders from public, anon, authenticated;
grant all on private.billing_payment_methods, private.billing_reminders to service_role;

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- Dunning: retries after the period's end, and the grace period in which they happen.
create or replace function private.billing_retry_offsets() returns interval[]
language sql immutable
set search_path = ''
as $$ select array[interval '0', interval '1 day', interval '3 days', interval '5 days'] $$;

create or replace function private.billing_grace() returns interval
language sql immutable
set search_path = ''
as $$ select interval '7 days' $$;

revoke all on function private.billing_retry_offsets(), private.billing_grace() from public, anon, authenticated;
grant execute on function private.billing_retry_offsets(), private.billing_grace() to service_role;

-- Why a provider cannot take this amount in this currency (null: it can). Stripe takes any
-- ISO currency in minor units (zero-decimal currencies whole), at least 0.50; Paystack
-- NGN, GHS, ZAR, KES and USD in subunits; Tripay IDR in whole rupiah, at least 10,000.
create or replace function private.billing_currency_problem(p_provider text, p_amount numeric, p_currency text)
returns text
language sql immutable
set search_path = ''
as $$
  select case
    when p_provider = 'stripe' and lower(p_currency) = any (string_to_array('bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf', ' '))
         and p_amount <> trunc(p_amount)
      then format('stripe takes %s in whole units', p_currency)
    when p_provider = 'stripe' and p_amount < 0.5 then 'stripe takes at least 0.50'
    when p_provider = 'paystack' and p_currency not in ('NGN', 'GHS', 'ZAR', 'KES', 'USD')
      then format('paystack does not take %s (NGN, GHS, ZAR, KES, USD)', p_currency)
    when p_provider = 'tripay' and p_currency <> 'IDR'
      then format('tripay does not take %s (IDR only)', p_currency)
    when p_provider = 'tripay' and (p_amount <> trunc(p_amount) or p_amount < 10000)
      then 'tripay takes whole rupiah, at least 10000'
  end
$$;

revoke all on function private.billing_currency_problem(text, numeric, text) from public, anon, authenticated;
grant execute on function private.billing_currency_problem(text, numeric, text) to service_role;

-- The amount as the provider counts it: Stripe in minor units (whole units for its
-- zero-decimal currencies), Paystack in subunits (kobo, pesewas, cents), Tripay in rupiah.
create or replace function private.billing_amount_minor(p_provider text, p_amount numeric, p_currency text)
returns bigint
language sql immutable
set search_path = ''
as $$
  select case
    when p_provider = 'tripay' then p_amount
    when p_provider = 'stripe' and lower(p_currency) = any (string_to_array('bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf', ' '))
      then p_amount
    else p_amount * 100
  end::bigint
$$;

revoke all on function private.billing_amount_minor(text, numeric, text) from public, anon, authenticated;
grant execute on function private.billing_amount_minor(text, numeric, text) to service_role;

-- The pending invoice of a checkout: the user's open one for the same item and period and
-- provider if any (p_existing), else a new one (an open one of another provider is
-- cancelled). Amount and currency come from the plan or pack. Returns the invoice as JSON
-- (its amount as text), with "existing" and "amount_minor" (as the provider counts it).
create or replace function public.billing_checkout_open(
  p_user_id uuid,
  p_provider text,
  p_plan_id uuid default null,
  p_credit_pack_id uuid default null,
  p_period text default 'month'
) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_plan public.plans;
  v_pack public.credit_packs;
  v_amount numeric;
  v_currency text;
  v_key text;
  v_problem text;
  v_inv public.invoices;
begin
  if not private.is_service() then
    raise exception 'only the service role opens checkouts' using errcode = 'insufficient_privilege';
  end if;
  if p_provider is null or p_provider not in ('stripe', 'paystack', 'tripay') then
    raise exception 'provider must be stripe, paystack or tripay' using errcode = 'invalid_parameter_value',
      constraint = 'billing_provider_known';
  end if;
  if (p_plan_id is null) = (p_credit_pack_id is null) then
    raise exception 'name a plan or a credit pack' using errcode = 'invalid_parameter_value',
      constraint = 'billing_checkout_one_item';
  end if;
  if p_period is null or p_period not in ('month', 'year') then
    raise exception 'period must be month or year' using errcode = 'invalid_parameter_value',
      constraint = 'billing_period_known';
  end if;
  if not exists (select 1 from public.profiles p where p.id = p_user_id) then
    raise exception 'no such user' using errcode = 'no_data_found';
  end if;
  if p_plan_id is not null then
    select * into v_plan from public.plans p where p.id = p_plan_id and p.is_active;
    if not found then
      raise exception 'no plan for sale with this id' using errcode = 'no_data_found', constraint = 'billing_item_for_sale';
    end if;
    v_amount := case p_period when 'year' then v_plan.price_yearly else v_plan.price_monthly end;
    v_currency := v_plan.currency;
    v_key := format('plan:%s:%s', v_plan.id, p_period);
  else
    select * into v_pack from public.credit_packs c where c.id = p_credit_pack_id and c.is_active;
    if not found then
      raise exception 'no credit pack for sale with this id' using errcode = 'no_data_found', constraint = 'billing_item_for_sale';
    end if;
    v_amount := v_pack.price;
    v_currency := v_pack.currency;
    v_key := format('pack:%s', v_pack.id);
  end if;
  if v_amount is null or v_amount <= 0 then
    raise exception 'this plan is not sold for a %', p_period using errcode = 'check_violation',
      constraint = 'billing_item_for_sale';
  end if;
  v_problem := private.billing_currency_problem(p_provider, v_amount, v_currency);
  if v_problem is not null then
    raise exception '%', v_problem using errcode = 'check_violation', constraint = 'billing_currency_supported';
  end if;

  -- One checkout at a time per user and item: concurrent calls serialise here.
  perform pg_advisory_xact_lock(hashtextextended('billing-checkout:' || p_user_id || ':' || v_key, 0));
  select * into v_inv from public.invoices i
   where i.user_id = p_user_id and i.checkout_key = v_key and i.status = 'pending' for update;
  if found and v_inv.provider = p_provider and v_inv.checkout_url is not null
     and v_inv.amount = v_amount and v_inv.currency = v_currency then
    return to_jsonb(v_inv) || jsonb_build_object('existing', true, 'amount', v_inv.amount::text,
      'amount_minor', private.billing_amount_minor(p_provider, v_inv.amount, v_inv.currency));
  end if;
  if found and v_inv.checkout_url is null and v_inv.created_at > now() - interval '1 minute' then
    raise exception 'a checkout of this item is being started; try again in a minute' using errcode = 'check_violation',
      constraint = 'billing_checkout_in_progress';
  end if;
  if found then
    update public.invoices i set status = 'cancelled' where i.id = v_inv.id;
  end if;
  insert into public.invoices (user_id, plan_id, credit_pack_id, provider, amount, currency, credits, period,
                               checkout_key, description, expired_at, customer_email)
  values (p_user_id, v_plan.id, v_pack.id, p_provider, v_amount, v_currency, coalesce(v_pack.credits, 0), p_period,
          v_key, coalesce(v_plan.name || ' plan, 1 ' || p_period, v_pack.name), now() + interval '1 day',
          (select p.email from public.profiles p where p.id = p_user_id))
  returning * into v_inv;
  return to_jsonb(v_inv) || jsonb_build_object('existing', false, 'amount', v_inv.amount::text,
    'amount_minor', private.billing_amount_minor(p_provider, v_inv.amount, v_inv.currency));
end;
$$;

revoke execute on function public.billing_checkout_open(uuid, text, uuid, uuid, text) from public, anon, authenticated;
grant execute on function public.billing_checkout_open(uuid, text, uuid, uuid, text) to service_role;

-- The provider took the checkout: its payment URL and references find the invoice later.
create or replace function public.billing_checkout_started(
  p_invoice_id uuid, p_url text, p_provider_invoice_id text, p_refs text[] default '{}'
) returns public.invoices
language plpgsql security definer
set search_path = ''
as $$
declare
  v_inv public.invoices;
begin
  if not private.is_service() then
    raise exception 'only the service role records checkouts' using errcode = 'insufficient_privilege';
  end if;
  update public.invoices i
     set checkout_url = p_url,
         provider_invoice_id = coalesce(p_provider_invoice_id, i.provider_invoice_id),
         reference_id = coalesce(i.reference_id, p_provider_invoice_id),
         provider_refs = array(select distinct r from unnest(i.provider_refs || coalesce(p_refs, '{}')) r
                                where r is not null order by r)
   where i.id = p_invoice_id and i.status = 'pending'
  returning * into v_inv;
  if not found then
    raise exception 'no pending invoice with this id' using errcode = 'no_data_found';
  end if;
  return v_inv;
end;
$$;

revoke execute on function public.billing_checkout_started(uuid, text, text, text[]) from public, anon, authenticated;
grant execute on function public.billing_checkout_started(uuid, text, text, text[]) to service_role;

-- The provider refused the checkout: its invoice goes, as if never opened. Returns whether
-- one was removed (only a pending invoice that never got a payment URL).
create or replace function public.billing_checkout_abort(p_invoice_id uuid) returns boolean
language plpgsql security definer
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'only the service role aborts checkouts' using errcode = 'insufficient_privilege';
  end if;
  delete from public.invoices i
   where i.id = p_invoice_id and i.status = 'pending' and i.checkout_url is null and i.paid_at is null;
  return found;
end;
$$;

revoke execute on function public.billing_checkout_abort(uuid) from public, anon, authenticated;
grant execute on function public.billing_checkout_abort(uuid) to service_role;

-- What a provider told us about the payer: Stripe's customer, Paystack's reusable
-- authorisation, the Tripay channel. The fleet calls it for every applied payment.
create or replace function public.billing_save_payment_method(
  p_user_id uuid, p_provider text, p_customer text default null, p_authorization_code text default null,
  p_email text default null, p_channel text default null
) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'only the service role saves payment methods' using errcode = 'insufficient_privilege';
  end if;
  insert into private.billing_payment_methods as m (user_id, provider, customer, authorization_code, email, channel)
  values (p_user_id, p_provider, p_customer, p_authorization_code, p_email, p_channel)
  on conflict (user_id, provider) do update
    set customer = coalesce(excluded.customer, m.customer),
        authorization_code = coalesce(excluded.authorization_code, m.authorization_code),
        email = coalesce(excluded.email, m.email),
        channel = coalesce(excluded.channel, m.channel),
        updated_at = now();
end;
$$;

revoke execute on function public.billing_save_payment_method(uuid, text, text, text, text, text) from public, anon, authenticated;
grant execute on function public.billing_save_payment_method(uuid, text, text, text, text, text) to service_role;

-- The Stripe customer of a user (for the billing portal), or null.
create or replace function public.billing_customer(p_user_id uuid, p_provider text) returns text
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'only the service role reads payment methods' using errcode = 'insufficient_privilege';
  end if;
  return (select m.customer from private.billing_payment_methods m where m.user_id = p_user_id and m.provider = p_provider);
end;
$$;

revoke execute on function public.billing_customer(uuid, text) from public, anon, authenticated;
grant execute on function public.billing_customer(uuid, text) to service_role;

-- A paid invoice's effects (replaces the earlier version): as before, plus the provider and
-- period on the subscription, a trial or a renewal under way continuing into the paid
-- period (a renewal starts at the old period's end, not at the payment), and dunning
-- cleared.
create or replace function private.billing_on_paid(p_invoice public.invoices) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_cur public.subscriptions;
  v_period interval := case p_invoice.period when 'year' then interval '1 year' else interval '1 month' end;
  v_sub_id uuid;
  v_recovered boolean := false;
begin
  -- Credits bought with the invoice are added by the ledger's own trigger on invoices
  -- (credit_invoice_paid), in this same transaction.
  if p_invoice.plan_id is not null then
    select * into v_cur from public.subscriptions s
     where s.user_id = p_invoice.user_id and s.status in ('active', 'trial')
     for update;
    if found and v_cur.plan_id = p_invoice.plan_id and v_cur.expires_at <> 'infinity' then
      v_recovered := v_cur.past_due_since is not null;
      update public.subscriptions s
         set status = 'active',
             expires_at = case when s.status = 'trial' then greatest(s.expires_at, now())
                               else coalesce(s.renewal_due_at, greatest(s.expires_at, now())) end + v_period,
             invoice_id = p_invoice.id, cancelled_at = null,
             provider = p_invoice.provider, period = p_invoice.period, auto_renew = true,
             cancel_at_period_end = false, renewal_due_at = null, grace_until = null, past_due_since = null,
             renewal_attempts = 0, next_renewal_attempt_at = null
       where s.id = v_cur.id
      returning s.id into v_sub_id;
    else
      if found then
        update public.subscriptions s
           set status = 'cancelled', cancelled_at = now(), auto_renew = false
         where s.id = v_cur.id;
      end if;
      insert into public.subscriptions (user_id, plan_id, invoice_id, status, started_at, expires_at, auto_renew,
                                        provider, period)
      values (p_invoice.user_id, p_invoice.plan_id, p_invoice.id, 'active', now(), now() + v_period, true,
              p_invoice.provider, p_invoice.period)
      returning id into v_sub_id;
    end if;
    -- Other open renewal invoices of the subscription are no longer needed.
    update public.invoices i set status = 'cancelled'
     where i.subscription_id = v_sub_id and i.status = 'pending' and i.id <> p_invoice.id;
    perform public.credit_grant_monthly(v_sub_id);
    perform private.billing_enforce_plan_limits(p_invoice.user_id);
  end if;

  insert into public.notifications (user_id, kind, title, body, data)
  values (p_invoice.user_id, 'payment', case when v_recovered then 'Payment received: plan renewed' else 'Payment received' end,
          format('%s %s paid%s.', p_invoice.amount, p_invoice.currency,
                 case when p_invoice.plan_id is not null
                      then ' for the ' || (select p.name from public.plans p where p.id = p_invoice.plan_id) || ' plan'
                      else '' end),
          jsonb_build_object('invoice_id', p_invoice.id, 'status', 'paid', 'recovered', v_recovered));
end;
$$;

revoke all on function private.billing_on_paid(public.invoices) from public, anon, authenticated;

-- Tell the user about their renewal.
create or replace function private.billing_tell(p_sub public.subscriptions, p_title text, p_body text, p_data jsonb)
returns void
language sql security definer
set search_path = ''
as $$
  insert into public.notifications (user_id, kind, title, body, data)
  values (p_sub.user_id, 'payment', p_title, p_body,
          jsonb_build_object('subscription_id', p_sub.id, 'plan_id', p_sub.plan_id) || coalesce(p_data, '{}'))
$$;

revoke all on function private.billing_tell(public.subscriptions, text, text, jsonb) from public, anon, authenticated;

create or replace function private.billing_day(p_at timestamptz) returns text
language sql immutable
set search_path = ''
as $$ select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') $$;

revoke all on function private.billing_day(timestamptz) from public, anon, authenticated;

-- Renewals that need the fleet now. First every auto-renewing paid subscription whose
-- period ends within p_lead (Tripay: 3 days, so the user has the payment link before)
-- enters its renewal: the plan is kept until grace_until, and a Paystack or Tripay
-- subscription gets its pending renewal invoice. Then the renewal invoices due an attempt
-- are returned — a Paystack charge at the period's end and at each retry, a Tripay
-- transaction to create once — each claimed for 30 minutes so no other worker takes it.
create or replace function public.billing_renewals_due(
  p_now timestamptz default now(), p_lead interval default interval '1 hour', p_limit integer default 100
) returns table (
  invoice_id uuid, subscription_id uuid, user_id uuid, provider text, amount numeric, currency text,
  email text, authorization_code text, channel text, attempt integer
)
language plpgsql security definer
set search_path = ''
as $$
declare
  r record;
  v_amount numeric;
begin
  if not private.is_service() then
    raise exception 'only the service role runs renewals' using errcode = 'insufficient_privilege';
  end if;
  for r in select s.*, p.price_monthly, p.price_yearly, p.currency as plan_currency, p.name as plan_name
             from public.subscriptions s join public.plans p on p.id = s.plan_id
            where s.status = 'active' and s.auto_renew and not s.cancel_at_period_end
              and s.provider in ('stripe', 'paystack', 'tripay') and s.renewal_due_at is null
              and s.expires_at <> 'infinity'
              and s.expires_at <= p_now + case s.provider when 'tripay' then greatest(p_lead, interval '3 days') else p_lead end
            order by s.expires_at
            limit greatest(coalesce(p_limit, 100), 0)
            for update of s skip locked loop
    v_amount := case r.period when 'year' then r.price_yearly else r.price_monthly end;
    update public.subscriptions s
       set renewal_due_at = r.expires_at, grace_until = r.expires_at + private.billing_grace(),
           expires_at = r.expires_at + private.billing_grace(), renewal_attempts = 0,
           next_renewal_attempt_at = case when r.provider = 'stripe' then null
                                          when r.provider = 'paystack' then r.expires_at else p_now end
     where s.id = r.id;
    if r.provider <> 'stripe' and coalesce(v_amount, 0) > 0 then
      insert into public.invoices (user_id, plan_id, subscription_id, provider, amount, currency, period,
                                   checkout_key, description, expired_at, customer_email)
      values (r.user_id, r.plan_id, r.id, r.provider, v_amount, r.plan_currency, r.period,
              format('renewal:%s:%s', r.id, r.expires_at), r.plan_name || ' plan renewal, 1 ' || r.period,
              r.expires_at + private.billing_grace(), (select p.email from public.profiles p where p.id = r.user_id))
      on conflict do nothing;
    end if;
  end loop;

  return query
  with due as (
    select i.id, s.id as sub_id, i.user_id, i.provider, i.amount, i.currency, s.renewal_attempts
      from public.invoices i join public.subscriptions s on s.id = i.subscription_id
     where i.status in ('pending', 'failed') and s.status = 'active' and s.next_renewal_attempt_at <= p_now
       and s.renewal_due_at is not null and i.provider in ('paystack', 'tripay')
       and (i.provider = 'paystack' or i.checkout_url is null)
     order by s.next_renewal_attempt_at
     limit greatest(coalesce(p_limit, 100), 0)
     for update of s skip locked
  ), claimed as (
    update public.subscriptions s set next_renewal_attempt_at = p_now + interval '30 minutes'
      from due where s.id = due.sub_id
    returning s.id
  )
  select d.id, d.sub_id, d.user_id, d.provider, d.amount, d.currency,
         coalesce(m.email, (select p.email from public.profiles p where p.id = d.user_id)),
         m.authorization_code, m.channel, d.renewal_attempts + 1
    from due d join claimed c on c.id = d.sub_id
    left join private.billing_payment_methods m on m.user_id = d.user_id and m.provider = d.provider;
end;
$$;

revoke execute on function public.billing_renewals_due(timestamptz, interval, integer) from public, anon, authenticated;
grant execute on function public.billing_renewals_due(timestamptz, interval, integer) to service_role;

-- A renewal attempt's outcome, other than a payment (payments go through
-- billing_apply_invoice_event): 'failed' (the charge was declined: the next retry is
-- scheduled within the grace period, or none is left) or 'link' (a Tripay transaction the
-- user pays: its URL is recorded and sent). Returns the subscription.
create or replace function public.billing_renewal_attempted(
  p_invoice_id uuid, p_outcome text, p_reason text default null, p_url text default null,
  p_reference text default null, p_now timestamptz default now()
) returns public.subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_inv public.invoices;
  v_sub public.subscriptions;
  v_next timestamptz;
  v_plan text;
begin
  if not private.is_service() then
    raise exception 'only the service role records renewal attempts' using errcode = 'insufficient_privilege';
  end if;
  if p_outcome is null or p_outcome not in ('failed', 'link') then
    raise exception 'outcome must be failed or link' using errcode = 'invalid_parameter_value';
  end if;
  select * into v_inv from public.invoices i where i.id = p_invoice_id for update;
  if not found or v_inv.subscription_id is null then
    raise exception 'no renewal invoice with this id' using errcode = 'no_data_found';
  end if;
  select * into v_sub from public.subscriptions s where s.id = v_inv.subscription_id for update;
  if v_inv.status not in ('pending', 'failed') or v_sub.status <> 'active' or v_sub.renewal_due_at is null then
    return v_sub;  -- paid, cancelled or ended meanwhile: nothing to record
  end if;
  select p.name into v_plan from public.plans p where p.id = v_sub.plan_id;

  if p_outcome = 'link' then
    update public.invoices i
       set checkout_url = p_url, provider_invoice_id = coalesce(p_reference, i.provider_invoice_id),
           provider_refs = array(select distinct x from unnest(i.provider_refs || array[p_reference]) x
                                  where x is not null order by x)
     where i.id = v_inv.id;
    update public.subscriptions s set next_renewal_attempt_at = null where s.id = v_sub.id returning * into v_sub;
    perform private.billing_tell(v_sub, 'Renew your ' || v_plan || ' plan',
      format('Your %s plan renews on %s: pay %s %s here: %s', v_plan, private.billing_day(v_sub.renewal_due_at),
             v_inv.amount, v_inv.currency, p_url),
      jsonb_build_object('invoice_id', v_inv.id, 'status', 'renewal_invoice', 'url', p_url));
    return v_sub;
  end if;

  select min(v_sub.renewal_due_at + o) into v_next
    from unnest(private.billing_retry_offsets()) o
   where v_sub.renewal_due_at + o > p_now and v_sub.renewal_due_at + o < v_sub.grace_until;
  update public.invoices i set renewal_attempts = i.renewal_attempts + 1 where i.id = v_inv.id;
  update public.subscriptions s
     set renewal_attempts = s.renewal_attempts + 1, past_due_since = coalesce(s.past_due_since, p_now),
         next_renewal_attempt_at = v_next
   where s.id = v_sub.id
  returning * into v_sub;
  perform private.billing_tell(v_sub, 'Renewal payment failed',
    format('We could not charge %s %s for your %s plan%s. %s Your plan stays active until %s; after that you move to the Free plan.',
           v_inv.amount, v_inv.currency, v_plan, coalesce(' (' || p_reason || ')', ''),
           case when v_next is not null then 'We will try again on ' || private.billing_day(v_next) || '.'
                else 'We will not try again.' end,
           private.billing_day(v_sub.grace_until)),
    jsonb_build_object('invoice_id', v_inv.id, 'status', 'renewal_failed', 'attempt', v_sub.renewal_attempts,
                       'next_attempt_at', v_next, 'grace_until', v_sub.grace_until));
  return v_sub;
end;
$$;

revoke execute on function public.billing_renewal_attempted(uuid, text, text, text, text, timestamptz) from public, anon, authenticated;
grant execute on function public.billing_renewal_attempted(uuid, text, text, text, text, timestamptz) to service_role;

-- The current subscription a provider subscription (e.g. Stripe's sub_…) pays for: found
-- through the invoices that named it.
create or replace function private.billing_provider_subscription(p_provider text, p_ref text)
returns public.subscriptions
language sql stable security definer
set search_path = ''
as $$
  select s.* from public.subscriptions s
   where s.status in ('active', 'trial')
     and exists (select 1 from public.invoices i
                  where i.user_id = s.user_id and i.plan_id = s.plan_id and i.provider = p_provider
                    and i.provider_refs @> array[p_ref])
   order by s.created_at desc
   limit 1
$$;

revoke all on function private.billing_provider_subscription(text, text) from public, anon, authenticated;

-- A provider's own renewal charge failed (Stripe's invoice.payment_failed of a cycle): the
-- subscription enters (or stays in) dunning until the provider's next attempt, within the
-- grace period. A failure older than the subscription's current period changes nothing.
-- Returns 'applied', 'unchanged' or 'not_found'.
create or replace function public.billing_provider_renewal_failed(
  p_provider text, p_subscription_ref text, p_next_attempt_at timestamptz default null,
  p_reason text default null, p_occurred_at timestamptz default now()
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.subscriptions;
  v_plan text;
  v_due timestamptz;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  v_sub := private.billing_provider_subscription(p_provider, p_subscription_ref);
  if v_sub.id is null then
    -- Known but no longer current (ended or replaced): old news; unknown: not yet seen.
    return case when exists (select 1 from public.invoices i where i.provider = p_provider
                                and i.provider_refs @> array[p_subscription_ref])
                then 'unchanged' else 'not_found' end;
  end if;
  select * into v_sub from public.subscriptions s where s.id = v_sub.id for update;
  v_due := coalesce(v_sub.renewal_due_at, v_sub.expires_at);
  -- A failure of a period already paid (delivered after the recovery) is old news.
  if v_sub.status <> 'active' or p_occurred_at < v_due - interval '1 day' then return 'unchanged'; end if;
  select p.name into v_plan from public.plans p where p.id = v_sub.plan_id;
  update public.subscriptions s
     set renewal_due_at = v_due, grace_until = coalesce(s.grace_until, v_due + private.billing_grace()),
         expires_at = coalesce(s.grace_until, v_due + private.billing_grace()),
         renewal_attempts = s.renewal_attempts + 1, past_due_since = coalesce(s.past_due_since, p_occurred_at),
         next_renewal_attempt_at = null
   where s.id = v_sub.id
  returning * into v_sub;
  perform private.billing_tell(v_sub, 'Renewal payment failed',
    format('Your %s plan could not be renewed%s. %s Your plan stays active until %s; after that you move to the Free plan.',
           v_plan, coalesce(' (' || p_reason || ')', ''),
           case when p_next_attempt_at is not null
                then 'The payment will be tried again on ' || private.billing_day(p_next_attempt_at) || '.'
                else 'Update your payment method in the billing portal.' end,
           private.billing_day(v_sub.grace_until)),
    jsonb_build_object('status', 'renewal_failed', 'attempt', v_sub.renewal_attempts,
                       'next_attempt_at', p_next_attempt_at, 'grace_until', v_sub.grace_until));
  return 'applied';
end;
$$;

revoke execute on function public.billing_provider_renewal_failed(text, text, timestamptz, text, timestamptz) from public, anon, authenticated;
grant execute on function public.billing_provider_renewal_failed(text, text, timestamptz, text, timestamptz) to service_role;

-- The provider ended the subscription (Stripe's customer.subscription.deleted: retries
-- exhausted, or cancelled at the period's end): the plan ends now, the user is on Free and
-- their bots beyond its limits are paused. Returns 'applied', 'unchanged' or 'not_found'.
create or replace function public.billing_provider_subscription_ended(
  p_provider text, p_subscription_ref text, p_reason text default null
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.subscriptions;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  v_sub := private.billing_provider_subscription(p_provider, p_subscription_ref);
  if v_sub.id is null then
    return case when exists (select 1 from public.invoices i where i.provider = p_provider
                                and i.provider_refs @> array[p_subscription_ref])
                then 'unchanged' else 'not_found' end;
  end if;
  update public.subscriptions s
     set status = 'expired', expires_at = greatest(least(s.expires_at, now()), s.started_at + interval '1 second'),
         auto_renew = false, next_renewal_attempt_at = null
   where s.id = v_sub.id
  returning * into v_sub;
  update public.invoices i set status = 'cancelled'
   where i.subscription_id = v_sub.id and i.status = 'pending';
  perform private.billing_enforce_plan_limits(v_sub.user_id);
  perform private.billing_tell(v_sub, 'Subscription ended',
    format('Your %s plan ended%s; you are on the Free plan now.',
           (select p.name from public.plans p where p.id = v_sub.plan_id), coalesce(' (' || p_reason || ')', '')),
    jsonb_build_object('status', 'expired'));
  return 'applied';
end;
$$;

revoke execute on function public.billing_provider_subscription_ended(text, text, text) from public, anon, authenticated;
grant execute on function public.billing_provider_subscription_ended(text, text, text) to service_role;

-- The provider's subscription changed (Stripe's customer.subscription.updated, e.g. a
-- cancellation at period end made in the billing portal): the subscription follows it,
-- unless a later change was already applied. Returns 'applied', 'unchanged' or 'not_found'.
create or replace function public.billing_provider_subscription_updated(
  p_provider text, p_subscription_ref text, p_cancel_at_period_end boolean, p_occurred_at timestamptz
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.subscriptions;
  v_plan text;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  if p_cancel_at_period_end is null or p_occurred_at is null then
    raise exception 'cancel_at_period_end and the time of the change are required' using errcode = 'invalid_parameter_value';
  end if;
  v_sub := private.billing_provider_subscription(p_provider, p_subscription_ref);
  if v_sub.id is null then
    return case when exists (select 1 from public.invoices i where i.provider = p_provider
                                and i.provider_refs @> array[p_subscription_ref])
                then 'unchanged' else 'not_found' end;
  end if;
  select * into v_sub from public.subscriptions s where s.id = v_sub.id for update;
  if v_sub.provider_updated_at is not null and v_sub.provider_updated_at > p_occurred_at then
    return 'unchanged';
  end if;
  update public.subscriptions s set provider_updated_at = p_occurred_at where s.id = v_sub.id;
  if v_sub.cancel_at_period_end = p_cancel_at_period_end then
    return 'unchanged';
  end if;
  update public.subscriptions s
     set cancel_at_period_end = p_cancel_at_period_end, auto_renew = not p_cancel_at_period_end
   where s.id = v_sub.id
  returning * into v_sub;
  select p.name into v_plan from public.plans p where p.id = v_sub.plan_id;
  perform private.billing_tell(v_sub, case when p_cancel_at_period_end then 'Plan cancelled' else 'Plan renews again' end,
    case when p_cancel_at_period_end
         then format('Your %s plan ends on %s and will not renew.', v_plan, private.billing_day(coalesce(v_sub.renewal_due_at, v_sub.expires_at)))
         else format('Your %s plan renews on %s.', v_plan, private.billing_day(coalesce(v_sub.renewal_due_at, v_sub.expires_at))) end,
    jsonb_build_object('status', case when p_cancel_at_period_end then 'cancel_at_period_end' else 'renews' end));
  return 'applied';
end;
$$;

revoke execute on function public.billing_provider_subscription_updated(text, text, boolean, timestamptz) from public, anon, authenticated;
grant execute on function public.billing_provider_subscription_updated(text, text, boolean, timestamptz) to service_role;

-- Reminders 3 days and 1 day before a trial or a paid period ends (only the nearer one
-- when both are due), once each, in the app and on the user's channels. Returns how many.
create or replace function public.billing_send_reminders(p_now timestamptz default now()) returns integer
language plpgsql security definer
set search_path = ''
as $$
declare
  r record;
  v_n integer := 0;
  v_end timestamptz;
  v_what text;
  v_url text;
begin
  if not private.is_service() then
    raise exception 'only the service role sends reminders' using errcode = 'insufficient_privilege';
  end if;
  for r in select s.*, p.name as plan_name, d.days
             from public.subscriptions s
             join public.plans p on p.id = s.plan_id
             cross join lateral (select min(x) as days from unnest(array[1, 3]) x
                                  where coalesce(s.renewal_due_at, s.expires_at) - p_now <= make_interval(days => x)) d
            where s.status in ('active', 'trial') and s.expires_at <> 'infinity' and p.price_monthly > 0
              and d.days is not null and coalesce(s.renewal_due_at, s.expires_at) > p_now
              and s.past_due_since is null
              and not exists (select 1 from private.billing_reminders b
                               where b.subscription_id = s.id and b.period_end = coalesce(s.renewal_due_at, s.expires_at)
                                 and b.days_before <= d.days)
            order by s.id loop
    v_end := coalesce(r.renewal_due_at, r.expires_at);
    insert into private.billing_reminders (subscription_id, period_end, days_before)
    values (r.id, v_end, r.days) on conflict do nothing;
    select i.checkout_url into v_url from public.invoices i
     where i.subscription_id = r.id and i.status = 'pending' and i.checkout_url is not null
     order by i.created_at desc limit 1;
    v_what := case
      when r.status = 'trial' then format('Your %s trial ends on %s. Check out to keep the plan.', r.plan_name, private.billing_day(v_end))
      when r.cancel_at_period_end or not r.auto_renew
        then format('Your %s plan ends on %s and will not renew; you then move to the Free plan.', r.plan_name, private.billing_day(v_end))
      when r.provider = 'tripay' and v_url is not null
        then format('Your %s plan renews on %s: pay here: %s', r.plan_name, private.billing_day(v_end), v_url)
      else format('Your %s plan renews on %s; your saved payment method will be charged.', r.plan_name, private.billing_day(v_end))
    end;
    insert into public.notifications (user_id, kind, title, body, data)
    values (r.user_id, 'payment',
            format('%s %s in %s day%s', r.plan_name, case when r.status = 'trial' then 'trial ends' else 'plan ends' end,
                   r.days, case when r.days = 1 then '' else 's' end),
            v_what,
            jsonb_build_object('subscription_id', r.id, 'plan_id', r.plan_id, 'status', 'reminder',
                               'days_before', r.days, 'ends_at', v_end, 'url', v_url));
    v_n := v_n + 1;
  end loop;
  return v_n;
end;
$$;

revoke execute on function public.billing_send_reminders(timestamptz) from public, anon, authenticated;
grant execute on function public.billing_send_reminders(timestamptz) to service_role;

-- A user on Free tries a plan with trial days, once per user: the plan is theirs until
-- trial_ends_at; paying for it during the trial starts the paid period at the trial's end.
create or replace function public.billing_start_trial(p_plan_id uuid) returns public.subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_user uuid := (select auth.uid());
  v_plan public.plans;
  v_sub public.subscriptions;
begin
  if v_user is null or private.is_service() then
    raise exception 'only a signed-in user starts a trial' using errcode = 'insufficient_privilege';
  end if;
  select * into v_plan from public.plans p where p.id = p_plan_id and p.is_active and p.trial_days > 0;
  if not found then
    raise exception 'no plan with a trial has this id' using errcode = 'no_data_found';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('billing-trial:' || v_user, 0));
  if exists (select 1 from public.subscriptions s where s.user_id = v_user and s.trial_ends_at is not null) then
    raise exception 'you have already had a trial' using errcode = 'check_violation', constraint = 'billing_one_trial_per_user';
  end if;
  select * into v_sub from public.subscriptions s
   where s.user_id = v_user and s.status in ('active', 'trial') for update;
  if found and v_sub.expires_at <> 'infinity' then
    raise exception 'you are already on a paid plan' using errcode = 'check_violation', constraint = 'billing_trial_from_free';
  end if;
  if found then
    update public.subscriptions s set status = 'cancelled', cancelled_at = now(), auto_renew = false where s.id = v_sub.id;
  end if;
  insert into public.subscriptions (user_id, plan_id, status, started_at, expires_at, trial_ends_at, auto_renew)
  values (v_user, v_plan.id, 'trial', now(), now() + make_interval(days => v_plan.trial_days),
          now() + make_interval(days => v_plan.trial_days), false)
  returning * into v_sub;
  perform private.billing_tell(v_sub, v_plan.name || ' trial started',
    format('You are on the %s plan until %s.', v_plan.name, private.billing_day(v_sub.trial_ends_at)),
    jsonb_build_object('status', 'trial', 'trial_ends_at', v_sub.trial_ends_at));
  return v_sub;
end;
$$;

revoke execute on function public.billing_start_trial(uuid) from public, anon;
grant execute on function public.billing_start_trial(uuid) to authenticated;

-- The user cancels their paid plan at its period's end (p_cancel = false takes it back):
-- no renewal is charged or invoiced, and on Stripe the fleet sets cancel_at_period_end on
-- the provider's subscription (job billing.provider_cancel). The plan ends at expires_at.
create or replace function public.billing_cancel_at_period_end(p_cancel boolean default true)
returns public.subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_user uuid := (select auth.uid());
  v_sub public.subscriptions;
  v_plan text;
begin
  if v_user is null or private.is_service() then
    raise exception 'only a signed-in user cancels their plan' using errcode = 'insufficient_privilege';
  end if;
  if p_cancel is null then
    raise exception 'p_cancel must be true or false' using errcode = 'invalid_parameter_value';
  end if;
  select * into v_sub from public.subscriptions s
   where s.user_id = v_user and s.status in ('active', 'trial') and s.expires_at <> 'infinity' for update;
  if not found then
    raise exception 'you have no paid plan to cancel' using errcode = 'no_data_found';
  end if;
  if v_sub.cancel_at_period_end = p_cancel then
    return v_sub;
  end if;
  update public.subscriptions s
     set cancel_at_period_end = p_cancel, auto_renew = not p_cancel and s.status = 'active'
   where s.id = v_sub.id
  returning * into v_sub;
  if p_cancel then
    update public.invoices i set status = 'cancelled' where i.subscription_id = v_sub.id and i.status = 'pending';
  end if;
  if v_sub.provider = 'stripe' then
    perform public.enqueue_job('billing.provider_cancel',
      jsonb_build_object('subscription_id', v_sub.id, 'cancel', p_cancel), 'default', null, 0, 10,
      format('billing-provider-cancel:%s:%s:%s', v_sub.id, p_cancel, extract(epoch from clock_timestamp())));
  end if;
  select p.name into v_plan from public.plans p where p.id = v_sub.plan_id;
  perform private.billing_tell(v_sub, case when p_cancel then 'Plan cancelled' else 'Plan renews again' end,
    case when p_cancel
         then format('Your %s plan ends on %s and will not renew.', v_plan, private.billing_day(coalesce(v_sub.renewal_due_at, v_sub.expires_at)))
         else format('Your %s plan renews on %s.', v_plan, private.billing_day(coalesce(v_sub.renewal_due_at, v_sub.expires_at))) end,
    jsonb_build_object('status', case when p_cancel then 'cancel_at_period_end' else 'renews' end));
  return v_sub;
end;
$$;

revoke execute on function public.billing_cancel_at_period_end(boolean) from public, anon;
grant execute on function public.billing_cancel_at_period_end(boolean) to authenticated;

-- The Stripe subscription id of one of ours (for cancel_at_period_end), or null.
create or replace function public.billing_provider_subscription_ref(p_subscription_id uuid) returns text
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'only the service role reads provider references' using errcode = 'insufficient_privilege';
  end if;
  return (select r from public.subscriptions s
            join public.invoices i on i.user_id = s.user_id and i.plan_id = s.plan_id and i.provider = s.provider
            cross join unnest(i.provider_refs) r
           where s.id = p_subscription_id and r like 'sub\_%'
           order by i.created_at desc limit 1);
end;
$$;

revoke execute on function public.billing_provider_subscription_ref(uuid) from public, anon, authenticated;
grant execute on function public.billing_provider_subscription_ref(uuid) to service_role;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger credit_packs_updated_at before update on public.credit_packs
  for each row execute function private.set_updated_at();
