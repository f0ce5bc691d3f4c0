-- Caller-chosen idempotency keys live in their own namespace. An id an app passes is
-- never used as a transfer id as is: the transfer id is derived from the caller's account
-- (or, for corrections, a corrections namespace) and the key, so it can never equal an id
-- the platform derives (renewals, copy-trade charges, the worker's order holds), and a
-- retried call with the same key still finds the same transfer. Amounts are finite,
-- positive and bounded (private.credit_amount).

create or replace function public.credit_request_payout(
  p_amount numeric default null,
  p_id uuid default null,
  p_user_id uuid default null
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid;
  v_account public.credit_accounts;
  v_available numeric;
  v_amount numeric;
  v_min numeric := (select s.min_payout from private.credit_settings s);
begin
  perform p_amount::private.credit_amount;
  if private.is_service() then
    v_user := coalesce(p_user_id, (select auth.uid()));
  else
    v_user := (select auth.uid());
    if v_user is null or (p_user_id is not null and p_user_id <> v_user) then
      raise exception 'providers can request payouts of their own earnings only' using errcode = 'insufficient_privilege';
    end if;
  end if;
  select * into v_account from public.credit_accounts a
   where a.user_id = v_user and a.kind = 'provider_earnings' for no key update;
  if not found then
    raise exception 'no provider earnings to pay out' using errcode = 'no_data_found',
      detail = 'result: debit_account_not_found';
  end if;
  v_available := v_account.credits_posted - v_account.debits_posted - v_account.debits_pending;
  v_amount := coalesce(p_amount, v_available);
  if v_amount < v_min then
    raise exception 'payouts start at % credits; % requested, % available', v_min, v_amount, v_available
      using errcode = 'check_violation', constraint = 'credit_payouts_minimum', detail = 'result: below_min_payout';
  end if;
  return private.credit_apply_or_raise(
    case when p_id is null then gen_random_uuid()
         else md5('credit-payout-request:' || v_account.id::text || ':' || p_id::text)::uuid end,
    'hold', v_account.id, private.credit_system_account('system:payouts'),
    v_amount, 'payout', null, null, 'payout_request', p_id::text,
    jsonb_build_object('requested_by', (select auth.uid())));
end;
$$;
revoke execute on function public.credit_request_payout(numeric, uuid, uuid) from public, anon;
grant execute on function public.credit_request_payout(numeric, uuid, uuid) to authenticated, service_role;

create or replace function public.credit_correct(
  p_id uuid,
  p_debit_account_id uuid,
  p_credit_account_id uuid,
  p_amount numeric,
  p_reason text
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not (private.is_service() or private.is_admin()) then
    raise exception 'only admins can correct the credit ledger' using errcode = 'insufficient_privilege';
  end if;
  perform p_amount::private.credit_amount;
  if p_reason is null or btrim(p_reason) = '' then
    raise exception 'a correction needs a reason' using errcode = 'check_violation',
      constraint = 'credit_corrections_reason_required';
  end if;
  if char_length(p_reason) > 1000 then
    raise exception 'a correction''s reason is at most 1000 characters' using errcode = 'check_violation',
      constraint = 'credit_corrections_reason_length';
  end if;
  return private.credit_apply_or_raise(
    case when private.is_service() then p_id else md5('credit-correction:' || p_id::text)::uuid end,
    'transfer', p_debit_account_id, p_credit_account_id, p_amount, 'correction', null, null,
    'correction', p_id::text, jsonb_build_object('reason', p_reason, 'corrected_by', (select auth.uid())));
end;
$$;
revoke execute on function public.credit_correct(uuid, uuid, uuid, numeric, text) from public, anon;
grant execute on function public.credit_correct(uuid, uuid, uuid, numeric, text) to authenticated, service_role;
