-- Billing: invoices and plan subscriptions, the current plan of a user, sign-up (a
-- profile, a credit account and the Free plan for every new user), and payment webhooks
-- turned into invoice state, plan changes and credits. Owned by worker.billing.
--
-- Payment webhooks from the inbox become invoice state, plan subscriptions and
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

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.invoices (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  plan_id uuid references public.plans (id) on delete set null,
  provider text not null default 'manual' constraint invoices_provider_known check (provider in ('stripe', 'paystack', 'tripay', 'manual')),
  provider_invoice_id text,
  merchant_id text,
  reference_id text,
  amount numeric(12, 2) not null constraint invoices_amount_positive check (amount > 0),
  currency text not null default 'USD',
  credits numeric(20, 8) not null default 0 constraint invoices_credits_not_negative check (credits >= 0),
  status text not null default 'pending' constraint invoices_status_known check (status in ('pending', 'paid', 'failed', 'expired', 'cancelled', 'refunded')),
  payment_method text,
  payment_channel text,
  transaction_id text,
  description text,
  customer_name text,
  customer_email text,
  customer_phone text,
  expired_at timestamptz,
  paid_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- The billing period the invoice pays for (plan renewals are monthly or yearly).
  period text not null default 'month' constraint invoices_period_known check (period in ('month', 'year')),
  constraint invoices_provider_invoice_unique unique (provider, provider_invoice_id)
);

create index invoices_user_id_idx on public.invoices (user_id, created_at desc);
create index invoices_plan_id_idx on public.invoices (plan_id);

create table public.subscriptions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  plan_id uuid not null references public.plans (id) on delete restrict,
  invoice_id uuid references public.invoices (id) on delete set null,
  status text not null constraint subscriptions_status_known check (status in ('active', 'cancelled', 'expired', 'trial')),
  started_at timestamptz not null default now(),
  expires_at timestamptz not null,
  cancelled_at timestamptz,
  auto_renew boolean not null default true,
  trial_ends_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint subscriptions_expire_after_start check (expires_at > started_at)
);

create index subscriptions_user_id_idx on public.subscriptions (user_id);
create index subscriptions_plan_id_idx on public.subscriptions (plan_id);
create index subscriptions_invoice_id_idx on public.subscriptions (invoice_id);

-- One current subscription per user.
create unique index subscriptions_one_current_per_user on public.subscriptions (user_id)
  where status in ('active', 'trial');

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

revoke all on public.invoices, public.subscriptions from anon, authenticated;
grant all on public.invoices, public.subscriptions to service_role;
grant select on public.invoices, public.subscriptions to authenticated;
grant update (auto_renew) on public.subscriptions to authenticated;
alter table public.invoices enable row level security;
alter table public.subscriptions enable row level security;
create policy "Users can read their own invoices" on public.invoices
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every invoice" on public.invoices
  for select to tradefleet_admin using (true);
create policy "Users can read their own subscriptions" on public.subscriptions
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every subscription" on public.subscriptions
  for select to tradefleet_admin using (true);
create policy "Users can change auto-renew of their own subscriptions" on public.subscriptions
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

-- The plan a user is on now: their current subscription's plan, or the Free plan.
create or replace function private.current_plan(p_user_id uuid) returns public.plans
language sql stable security definer
set search_path = ''
as $$
  select p.*
  from public.plans p
  where p.id = coalesce(
    (select s.plan_id from public.subscriptions s
      where s.user_id = p_user_id and s.status in ('active', 'trial') and s.expires_at > now()
      limit 1),
    (select f.id from public.plans f where f.name = 'Free')
  )
$$;

revoke all on function private.current_plan(uuid) from public, anon, authenticated;
grant execute on function private.current_plan(uuid) to service_role;

-- Sign-up: a profile, a credit account and the Free plan appear with every new user.
create or replace function private.handle_new_user() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_free uuid;
begin
  insert into public.profiles (id, email, full_name, avatar_url, role)
  values (
    new.id,
    new.email,
    new.raw_user_meta_data ->> 'full_name',
    new.raw_user_meta_data ->> 'avatar_url',
    case when new.raw_app_meta_data ->> 'role' in ('user', 'provider', 'admin')
         then new.raw_app_meta_data ->> 'role' else 'user' end
  );
  insert into public.credit_accounts (user_id, kind) values (new.id, 'user');
  select id into v_free from public.plans where name = 'Free';
  if v_free is not null then
    insert into public.subscriptions (user_id, plan_id, status, started_at, expires_at, auto_renew)
    values (new.id, v_free, 'active', now(), 'infinity', false);
  end if;
  return new;
end;
$$;

revoke all on function private.handle_new_user() from public, anon, authenticated;

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

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger invoices_updated_at before update on public.invoices
  for each row execute function private.set_updated_at();
create trigger subscriptions_updated_at before update on public.subscriptions
  for each row execute function private.set_updated_at();
create trigger on_auth_user_created after insert on auth.users
  for each row execute function private.handle_new_user();
create trigger webhook_events_enqueue_billing after insert on public.webhook_events
  for each row when (new.provider in ('stripe', 'paystack', 'tripay'))
  execute function private.billing_enqueue_webhook_event();
