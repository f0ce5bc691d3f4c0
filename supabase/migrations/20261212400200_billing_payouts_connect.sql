-- Connecting a payout destination from the Edge Function payouts-connect (user JWT).
--
-- The function makes the provider's calls while the provider waits — a Stripe Connect
-- Express account and its onboarding link, or Paystack's bank/resolve then a transfer
-- recipient — and writes the destination only once they all succeeded, so bank details the
-- provider rejects leave nothing behind (the previous destination, if any, stays as it
-- was). public.payout_connect_begin says whether the caller may connect one now (and which
-- Stripe account onboarding continues with); public.payout_connect_save writes it with the
-- same checks, under a per-user lock. A Stripe destination stays 'pending' until Stripe
-- says transfers are active (as before); a Paystack one is 'ready' at once.

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- The refusals every connection checks first: a provider account, a known payout
-- provider, no payout on its way.
create or replace function private.payout_connect_check(p_user_id uuid, p_provider text) returns void
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if p_provider is null or p_provider not in ('stripe', 'paystack') then
    raise exception 'payouts go through stripe or paystack, not %', p_provider
      using errcode = 'invalid_parameter_value', constraint = 'payout_destinations_provider_known';
  end if;
  if not exists (select 1 from public.profiles p where p.id = p_user_id and p.role = 'provider') then
    raise exception 'only providers connect a payout destination' using errcode = 'insufficient_privilege';
  end if;
  if exists (select 1 from public.payouts p
              where p.user_id = p_user_id and p.status in ('requested', 'approved', 'sent')) then
    raise exception 'a payout is on its way: change the destination once it has settled'
      using errcode = 'check_violation', constraint = 'payout_destinations_no_payout_in_flight';
  end if;
end;
$$;

revoke all on function private.payout_connect_check(uuid, text) from public, anon, authenticated;

-- May the user connect a destination with p_provider now? Raises the refusal; returns
-- {"stripe_account_id": the Stripe account onboarding continues with, or null}.
create or replace function public.payout_connect_begin(p_user_id uuid, p_provider text) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'only the service role connects payout destinations' using errcode = 'insufficient_privilege';
  end if;
  perform private.payout_connect_check(p_user_id, p_provider);
  return jsonb_build_object('stripe_account_id',
    (select d.stripe_account_id from public.payout_destinations d
      where d.user_id = p_user_id and d.provider = 'stripe' and p_provider = 'stripe'));
end;
$$;

revoke execute on function public.payout_connect_begin(uuid, text) from public, anon, authenticated;
grant execute on function public.payout_connect_begin(uuid, text) to service_role;

-- The destination the provider's calls produced, replacing the user's previous one.
create or replace function public.payout_connect_save(
  p_user_id uuid,
  p_provider text,
  p_currency text,
  p_stripe_account_id text default null,
  p_onboarding_url text default null,
  p_bank_code text default null,
  p_account_last4 text default null,
  p_recipient_code text default null,
  p_account_name text default null
) returns public.payout_destinations
language plpgsql security definer
set search_path = ''
as $$
declare
  v_row public.payout_destinations;
begin
  if not private.is_service() then
    raise exception 'only the service role connects payout destinations' using errcode = 'insufficient_privilege';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('payout-connect:' || p_user_id, 0));
  perform private.payout_connect_check(p_user_id, p_provider);
  if p_currency is null or p_currency !~ '^[A-Z]{3}$' then
    raise exception 'a currency is a three-letter code' using errcode = 'check_violation',
      constraint = 'payout_destinations_currency_format';
  end if;
  if p_provider = 'stripe' and (p_stripe_account_id is null or p_onboarding_url is null) then
    raise exception 'a stripe destination needs its account and onboarding link' using errcode = 'invalid_parameter_value';
  end if;
  if p_provider = 'paystack' and (p_recipient_code is null or p_bank_code is null or p_account_last4 is null) then
    raise exception 'a paystack destination needs its recipient and bank details' using errcode = 'invalid_parameter_value';
  end if;
  insert into public.payout_destinations as d (user_id, provider, status, currency, stripe_account_id, onboarding_url,
                                               paystack_recipient_code, bank_code, account_last4, account_name)
  values (p_user_id, p_provider, case p_provider when 'paystack' then 'ready' else 'pending' end, p_currency,
          case when p_provider = 'stripe' then p_stripe_account_id end,
          case when p_provider = 'stripe' then p_onboarding_url end,
          case when p_provider = 'paystack' then p_recipient_code end,
          case when p_provider = 'paystack' then p_bank_code end,
          case when p_provider = 'paystack' then p_account_last4 end,
          case when p_provider = 'paystack' then p_account_name end)
  on conflict (user_id) do update
     set provider = excluded.provider, status = excluded.status, currency = excluded.currency,
         stripe_account_id = excluded.stripe_account_id, onboarding_url = excluded.onboarding_url,
         paystack_recipient_code = excluded.paystack_recipient_code, bank_code = excluded.bank_code,
         account_last4 = excluded.account_last4, account_name = excluded.account_name, error = null,
         updated_at = now()
  returning * into v_row;
  return v_row;
end;
$$;

revoke execute on function public.payout_connect_save(uuid, text, text, text, text, text, text, text, text)
  from public, anon, authenticated;
grant execute on function public.payout_connect_save(uuid, text, text, text, text, text, text, text, text) to service_role;
