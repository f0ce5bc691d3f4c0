-- Stripe trials through the subscription's trial_period_days.
--
-- billing-checkout asks public.billing_trial_days whether the user may have the plan's
-- trial (one trial per user, from Free only); if so the Stripe Checkout Session starts the
-- subscription with subscription_data[trial_period_days]. Stripe then reports a
-- subscription in status 'trialing' (customer.subscription.created / .updated, with
-- trial_end): public.billing_provider_trial links the provider subscription to the
-- checkout's invoice and puts the user on the plan in 'trial' until trial_end
-- (subscriptions.trial_ends_at). The invoice stays pending: the first paid invoice of the
-- subscription, billed by Stripe when the trial ends, pays it and the plan continues from
-- the trial's end (billing_on_paid). A second trial is never granted here: the
-- subscription is linked, and the plan starts only when paid ('no_trial').

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- How many trial days a checkout of the plan may start for the user: the plan's, if the
-- user never had a trial and is not on a paid plan; otherwise 0.
create or replace function public.billing_trial_days(p_user_id uuid, p_plan_id uuid) returns integer
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'only the service role opens checkouts' using errcode = 'insufficient_privilege';
  end if;
  if exists (select 1 from public.subscriptions s where s.user_id = p_user_id and s.trial_ends_at is not null)
     or exists (select 1 from public.subscriptions s where s.user_id = p_user_id and s.status in ('active', 'trial')
                   and s.expires_at <> 'infinity') then
    return 0;
  end if;
  return coalesce((select p.trial_days from public.plans p where p.id = p_plan_id and p.is_active), 0);
end;
$$;

revoke execute on function public.billing_trial_days(uuid, uuid) from public, anon, authenticated;
grant execute on function public.billing_trial_days(uuid, uuid) to service_role;

-- A provider subscription in trial (Stripe status 'trialing'): its checkout invoice (the
-- user's pending one for the plan) remembers the subscription, and the user is on the
-- plan in 'trial' until p_trial_ends_at. A later report moves trial_ends_at (an earlier
-- one changes nothing). Returns 'applied', 'unchanged' (the invoice was paid already, or
-- an older report), 'no_trial' (the user had a trial or is on a paid plan: the plan
-- starts when paid) or 'not_found' (no checkout invoice: the event waits).
create or replace function public.billing_provider_trial(
  p_provider text,
  p_subscription_ref text,
  p_user_id uuid,
  p_plan_id uuid,
  p_trial_ends_at timestamptz,
  p_occurred_at timestamptz
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_inv public.invoices;
  v_sub public.subscriptions;
  v_plan public.plans;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  if p_provider is null or p_provider not in ('stripe', 'paystack', 'tripay')
     or p_subscription_ref is null or btrim(p_subscription_ref) = '' or char_length(p_subscription_ref) > 200
     or p_user_id is null or p_plan_id is null or p_trial_ends_at is null or p_occurred_at is null
     or p_trial_ends_at = 'infinity' then
    raise exception 'a trial names its provider, subscription, user, plan, end and the time of the report'
      using errcode = 'invalid_parameter_value', constraint = 'billing_trial_arguments';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('billing-trial:' || p_user_id, 0));
  select * into v_inv from public.invoices i
   where i.provider = p_provider and i.provider_refs @> array[p_subscription_ref]
   order by i.created_at limit 1 for update;
  if not found then
    select * into v_inv from public.invoices i
     where i.provider = p_provider and i.user_id = p_user_id and i.plan_id = p_plan_id and i.status = 'pending'
       and i.subscription_id is null and i.checkout_key like 'plan:%'
     order by i.created_at desc limit 1 for update;
    if not found then
      return 'not_found';
    end if;
    update public.invoices i
       set provider_refs = array(select distinct r from unnest(i.provider_refs || array[p_subscription_ref]) r order by r)
     where i.id = v_inv.id;
  end if;
  if v_inv.status <> 'pending' then
    return 'unchanged';
  end if;

  select * into v_sub from public.subscriptions s
   where s.user_id = v_inv.user_id and s.invoice_id = v_inv.id and s.status = 'trial' for update;
  if found then
    if v_sub.provider_updated_at is not null and v_sub.provider_updated_at > p_occurred_at
       or v_sub.trial_ends_at = p_trial_ends_at then
      return 'unchanged';
    end if;
    update public.subscriptions s
       set trial_ends_at = p_trial_ends_at, expires_at = p_trial_ends_at, provider_updated_at = p_occurred_at
     where s.id = v_sub.id;
    return 'applied';
  end if;
  if exists (select 1 from public.subscriptions s where s.user_id = v_inv.user_id and s.trial_ends_at is not null)
     or exists (select 1 from public.subscriptions s where s.user_id = v_inv.user_id and s.status in ('active', 'trial')
                   and s.expires_at <> 'infinity') then
    return 'no_trial';
  end if;

  select * into v_plan from public.plans p where p.id = v_inv.plan_id;
  update public.subscriptions s set status = 'cancelled', cancelled_at = now(), auto_renew = false
   where s.user_id = v_inv.user_id and s.status in ('active', 'trial');
  insert into public.subscriptions (user_id, plan_id, invoice_id, status, started_at, expires_at, trial_ends_at,
                                    auto_renew, provider, period, provider_updated_at)
  values (v_inv.user_id, v_inv.plan_id, v_inv.id, 'trial', now(), p_trial_ends_at, p_trial_ends_at,
          true, v_inv.provider, v_inv.period, p_occurred_at)
  returning * into v_sub;
  perform private.billing_enforce_plan_limits(v_inv.user_id);
  perform private.billing_tell(v_sub, v_plan.name || ' trial started',
    format('You are on the %s plan until %s; your card is charged then unless you cancel.', v_plan.name,
           private.billing_day(p_trial_ends_at)),
    jsonb_build_object('status', 'trial', 'trial_ends_at', p_trial_ends_at));
  return 'applied';
end;
$$;

revoke execute on function public.billing_provider_trial(text, text, uuid, uuid, timestamptz, timestamptz)
  from public, anon, authenticated;
grant execute on function public.billing_provider_trial(text, text, uuid, uuid, timestamptz, timestamptz) to service_role;
