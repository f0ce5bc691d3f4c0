-- Provider payouts that pay.
--
-- A provider connects one payout destination (connect_payout_destination): a Stripe
-- Connect account (the fleet creates it and an onboarding link; Stripe's account.updated
-- makes it ready once transfers are active) or a Paystack transfer recipient (the fleet
-- validates the bank details with Paystack's resolve-account API, then creates the
-- recipient; details Paystack rejects leave the destination 'rejected' with its reason).
--
-- request_payout holds the amount (credit_request_payout: at least the minimum, at most
-- what is available) and records the payout. It is approved at once when the amount is at
-- most private.payout_settings.auto_approve_max (500 credits by default); anything larger
-- waits for an admin (admin_review_payout, which may also reject it and so void the hold).
-- Without a ready destination nothing is held (23514, payouts_destination_ready).
--
-- The fleet sends approved payouts (a Stripe transfer or a Paystack transfer, the payout id
-- as idempotency key and reference) and records the provider's transfer (payout_mark_sent).
-- The providers' outcome settles it (payout_settle), in any order and as often as it comes:
--   paid     the hold is posted (Stripe transfer.created, Paystack transfer.success)
--   failed   the hold is voided (Paystack transfer.failed, a transfer the API refused)
--   reversed the hold is voided, or, once posted, the amount goes back to the provider's
--            earnings with a new transfer (Stripe transfer.reversed, Paystack transfer.reversed)
-- A payout settles once: later outcomes change nothing, except a reversal of a paid one.
--
-- payout_request_monthly asks, once per month and provider, for everything available of
-- every provider with a ready destination whose earnings reach the minimum.
--
-- provider_statement (security invoker) lists a provider's earnings, the platform fee kept
-- from each payment, clawbacks and payouts; payouts and payout_destinations are readable by
-- their owner (RLS) and admins.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table private.payout_settings (
  id boolean primary key default true constraint payout_settings_single_row check (id),
  auto_approve_max numeric(24, 8) not null default 500
    constraint payout_settings_auto_approve_max_not_negative check (auto_approve_max >= 0),
  updated_at timestamptz not null default now()
);

insert into private.payout_settings default values;

create table public.payout_destinations (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  provider text not null constraint payout_destinations_provider_known check (provider in ('stripe', 'paystack')),
  status text not null default 'pending' constraint payout_destinations_status_known
    check (status in ('pending', 'ready', 'rejected')),
  currency text not null constraint payout_destinations_currency_format check (currency ~ '^[A-Z]{3}$'),
  stripe_account_id text constraint payout_destinations_stripe_account_length check (char_length(stripe_account_id) <= 255),
  onboarding_url text constraint payout_destinations_onboarding_url_length check (char_length(onboarding_url) <= 2000),
  paystack_recipient_code text
    constraint payout_destinations_recipient_length check (char_length(paystack_recipient_code) <= 255),
  bank_code text constraint payout_destinations_bank_code_format check (bank_code ~ '^[0-9A-Za-z]{1,20}$'),
  account_last4 text constraint payout_destinations_account_last4_format check (account_last4 ~ '^[0-9]{1,4}$'),
  account_name text constraint payout_destinations_account_name_length check (char_length(account_name) <= 255),
  error text constraint payout_destinations_error_length check (char_length(error) <= 1000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint payout_destinations_one_per_user unique (user_id)
);

create table public.payouts (
  id uuid primary key,
  user_id uuid not null references public.profiles (id) on delete cascade,
  destination_id uuid not null references public.payout_destinations (id) on delete restrict,
  hold_id uuid not null constraint payouts_one_per_hold unique,
  amount numeric(24, 8) not null constraint payouts_amount_positive check (amount > 0),
  status text not null default 'requested' constraint payouts_status_known
    check (status in ('requested', 'approved', 'sent', 'paid', 'failed', 'reversed', 'rejected')),
  source text not null default 'request' constraint payouts_source_known check (source in ('request', 'monthly')),
  approved_by uuid references public.profiles (id) on delete set null,
  approved_at timestamptz,
  provider_transfer_id text constraint payouts_provider_transfer_id_length check (char_length(provider_transfer_id) <= 255),
  failure text constraint payouts_failure_length check (char_length(failure) <= 1000),
  settled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint payouts_amount_finite check (amount not in ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric))
);

create index payouts_user_id_idx on public.payouts (user_id, created_at desc);
create index payouts_destination_id_idx on public.payouts (destination_id);
create index payouts_approved_by_idx on public.payouts (approved_by);
create index payouts_to_send_idx on public.payouts (created_at) where status = 'approved';

-- ======================================================================================
-- RLS
-- ======================================================================================

alter table public.payout_destinations enable row level security;
alter table public.payouts enable row level security;

create policy "Providers can read their own payout destination" on public.payout_destinations
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every payout destination" on public.payout_destinations
  for select to tradefleet_admin using (true);
create policy "Providers can read their own payouts" on public.payouts
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every payout" on public.payouts
  for select to tradefleet_admin using (true);

revoke all on public.payout_destinations, public.payouts from anon, authenticated;
grant select on public.payout_destinations, public.payouts to authenticated;
grant all on public.payout_destinations, public.payouts to service_role;
revoke all on private.payout_settings from public, anon, authenticated;

-- A provider's earnings account, line by line: what each payment earned and the fee the
-- platform kept, clawbacks, payouts held, paid and released. Security invoker over
-- credit_statement: each provider sees their own account only.
create or replace view public.provider_statement with (security_invoker = true) as
select s.user_id, s.transfer_id, s.created_at,
       case
         when s.kind = 'revenue_share' then 'earning'
         when s.kind = 'refund' then 'clawback'
         when s.kind = 'payout' and s.phase = 'pending' then 'payout_held'
         when s.kind = 'payout' and s.phase = 'post_pending' then 'payout_paid'
         when s.kind = 'payout' and s.phase = 'void_pending' then 'payout_released'
         when s.kind = 'payout' then 'payout_reversed'
         else s.kind
       end as entry,
       case when s.kind = 'revenue_share' then (s.metadata ->> 'payment')::numeric end as gross,
       case when s.kind = 'revenue_share'
            then (s.metadata ->> 'payment')::numeric - s.amount end as fee,
       s.amount, s.available_change, s.reference_type, s.reference_id
  from public.credit_statement s
 where s.account_kind = 'provider_earnings';

revoke all on public.provider_statement from anon, authenticated;
grant select on public.provider_statement to authenticated, service_role;

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- A provider asks to connect a payout destination; the fleet does the provider calls
-- (billing.payout_destination) and fills in the row. Connecting again replaces it.
create or replace function public.connect_payout_destination(
  p_provider text,
  p_currency text default null,
  p_bank_code text default null,
  p_account_number text default null
) returns public.payout_destinations
language plpgsql security definer
set search_path = ''
as $$
declare
  v_user uuid := (select auth.uid());
  v_row public.payout_destinations;
begin
  if v_user is null or private.is_service() then
    raise exception 'providers connect their own payout destination' using errcode = 'insufficient_privilege';
  end if;
  if coalesce(auth.jwt() -> 'app_metadata' ->> 'role', '') <> 'provider' then
    raise exception 'only providers connect a payout destination' using errcode = 'insufficient_privilege';
  end if;
  if p_provider is null or p_provider not in ('stripe', 'paystack') then
    raise exception 'payouts go through stripe or paystack, not %', p_provider
      using errcode = 'invalid_parameter_value';
  end if;
  if p_currency is not null and p_currency !~ '^[A-Za-z]{3}$' then
    raise exception 'a currency is a three-letter code' using errcode = 'check_violation',
      constraint = 'payout_destinations_currency_format';
  end if;
  if p_provider = 'paystack' and (p_bank_code is null or p_bank_code !~ '^[0-9A-Za-z]{1,20}$') then
    raise exception 'a paystack destination needs a bank code' using errcode = 'check_violation',
      constraint = 'payout_destinations_bank_code_format';
  end if;
  if p_provider = 'paystack' and (p_account_number is null or p_account_number !~ '^[0-9]{6,20}$') then
    raise exception 'a paystack destination needs an account number of 6 to 20 digits'
      using errcode = 'check_violation', constraint = 'payout_destinations_account_number_format';
  end if;
  if exists (select 1 from public.payouts p
              where p.user_id = v_user and p.status in ('requested', 'approved', 'sent')) then
    raise exception 'a payout is on its way: change the destination once it has settled'
      using errcode = 'check_violation', constraint = 'payout_destinations_no_payout_in_flight';
  end if;
  insert into public.payout_destinations as d (user_id, provider, status, currency, bank_code, account_last4)
  values (v_user, p_provider, 'pending',
          upper(coalesce(p_currency, case p_provider when 'stripe' then 'USD' else 'NGN' end)),
          case when p_provider = 'paystack' then p_bank_code end,
          case when p_provider = 'paystack' then right(p_account_number, 4) end)
  on conflict (user_id) do update
     set provider = excluded.provider, status = 'pending', currency = excluded.currency,
         bank_code = excluded.bank_code, account_last4 = excluded.account_last4,
         -- A Stripe account already created is kept: onboarding continues where it stopped.
         stripe_account_id = case when excluded.provider = 'stripe' then d.stripe_account_id end,
         paystack_recipient_code = null, account_name = null, onboarding_url = null, error = null,
         updated_at = now()
  returning * into v_row;
  perform public.enqueue_job('billing.payout_destination',
                             jsonb_build_object('destination_id', v_row.id, 'account_number', p_account_number),
                             'default', null, 0, 5,
                             'payout-destination:' || v_row.id || ':' || extract(epoch from v_row.updated_at));
  return v_row;
end;
$$;

revoke execute on function public.connect_payout_destination(text, text, text, text) from public, anon;
grant execute on function public.connect_payout_destination(text, text, text, text) to authenticated, service_role;

-- Holds the amount and records the payout, approved at once up to auto_approve_max.
-- p_id is the caller's idempotency key, as for credit_request_payout.
create or replace function public.request_payout(
  p_amount numeric default null,
  p_id uuid default null,
  p_user_id uuid default null,
  p_source text default 'request'
) returns public.payouts
language plpgsql security definer
set search_path = ''
as $$
declare
  v_user uuid;
  v_dest public.payout_destinations;
  v_hold public.credit_transfers;
  v_row public.payouts;
  v_auto boolean;
begin
  if private.is_service() then
    v_user := coalesce(p_user_id, (select auth.uid()));
  else
    v_user := (select auth.uid());
    if v_user is null or (p_user_id is not null and p_user_id <> v_user) or p_source is distinct from 'request' then
      raise exception 'providers can request payouts of their own earnings only' using errcode = 'insufficient_privilege';
    end if;
  end if;
  if p_source is null or p_source not in ('request', 'monthly') then
    raise exception 'a payout comes from a request or the monthly run, not %', p_source
      using errcode = 'invalid_parameter_value';
  end if;
  select * into v_dest from public.payout_destinations d where d.user_id = v_user;
  if not found or v_dest.status <> 'ready' then
    raise exception 'connect a payout destination first (%)', coalesce(v_dest.status, 'none')
      using errcode = 'check_violation', constraint = 'payouts_destination_ready',
            detail = 'result: payout_destination_not_ready';
  end if;
  v_hold := public.credit_request_payout(p_amount, p_id, v_user);
  select * into v_row from public.payouts p where p.hold_id = v_hold.id;
  if found then
    return v_row;
  end if;
  v_auto := v_hold.amount <= (select s.auto_approve_max from private.payout_settings s);
  insert into public.payouts (id, user_id, destination_id, hold_id, amount, status, source, approved_at)
  values (md5('payout:' || v_hold.id)::uuid, v_user, v_dest.id, v_hold.id, v_hold.amount,
          case when v_auto then 'approved' else 'requested' end, p_source,
          case when v_auto then now() end)
  returning * into v_row;
  return v_row;
end;
$$;

revoke execute on function public.request_payout(numeric, uuid, uuid, text) from public, anon;
grant execute on function public.request_payout(numeric, uuid, uuid, text) to authenticated, service_role;

-- An admin approves a payout waiting for review, or rejects it (the hold is released).
create or replace function public.admin_review_payout(
  p_payout_id uuid,
  p_approve boolean,
  p_reason text
) returns public.payouts
language plpgsql security definer
set search_path = ''
as $$
declare
  v_actor uuid := private.require_admin();
  v_row public.payouts;
begin
  perform private.admin_check_reason(p_reason);
  if p_approve is null then
    raise exception 'approve (true) or reject (false)' using errcode = 'invalid_parameter_value';
  end if;
  select * into v_row from public.payouts p where p.id = p_payout_id for update;
  if not found then
    raise exception 'no payout %', p_payout_id using errcode = 'no_data_found';
  end if;
  if v_row.status <> 'requested' then
    raise exception 'payout % is % already', p_payout_id, v_row.status using errcode = 'check_violation',
      constraint = 'payouts_review_once';
  end if;
  if not p_approve then
    -- Admins are no service role: the ledger's own void, as credit_correct does.
    perform private.credit_apply_or_raise(md5('payout-void:' || v_row.id)::uuid, 'void', null, null, null, null,
                                          v_row.hold_id, null, null, null,
                                          jsonb_build_object('payout_id', v_row.id, 'rejected', p_reason));
  end if;
  update public.payouts p
     set status = case when p_approve then 'approved' else 'rejected' end,
         approved_by = v_actor, approved_at = case when p_approve then now() end,
         failure = case when p_approve then null else p_reason end,
         settled_at = case when p_approve then null else now() end,
         updated_at = now()
   where p.id = v_row.id
  returning * into v_row;
  perform private.admin_audit(v_actor, case when p_approve then 'approve_payout' else 'reject_payout' end,
                              'payout', v_row.id::text, p_reason, '{}', jsonb_build_object('status', v_row.status));
  insert into public.notifications (user_id, kind, title, body, data)
  values (v_row.user_id, 'payment', case when p_approve then 'Payout approved' else 'Payout rejected' end,
          format('Your payout of %s credits was %s.', v_row.amount, case when p_approve then 'approved' else 'rejected: ' || p_reason end),
          jsonb_build_object('payout_id', v_row.id, 'status', v_row.status));
  return v_row;
end;
$$;

revoke execute on function public.admin_review_payout(uuid, boolean, text) from public, anon;
grant execute on function public.admin_review_payout(uuid, boolean, text) to authenticated, service_role;

-- The fleet sent an approved payout: the provider's transfer id.
create or replace function public.payout_mark_sent(p_payout_id uuid, p_provider_transfer_id text)
returns text
language plpgsql security definer
set search_path = ''
as $$
begin
  if not private.is_service() then
    raise exception 'only the service role records payouts' using errcode = 'insufficient_privilege';
  end if;
  update public.payouts p
     set status = case when p.status = 'approved' then 'sent' else p.status end,
         provider_transfer_id = coalesce(p.provider_transfer_id, p_provider_transfer_id), updated_at = now()
   where p.id = p_payout_id and p.status in ('approved', 'sent', 'paid');
  return case when found then 'applied' else 'unchanged' end;
end;
$$;

revoke execute on function public.payout_mark_sent(uuid, text) from public, anon, authenticated;
grant execute on function public.payout_mark_sent(uuid, text) to service_role;

-- The provider's outcome of a payout: 'paid' posts the hold, 'failed' voids it,
-- 'reversed' voids it or, once paid, gives the amount back. Returns 'applied',
-- 'unchanged' (a replay or an outcome that came too late) or 'not_found'.
create or replace function public.payout_settle(
  p_payout_id uuid,
  p_outcome text,
  p_provider_transfer_id text default null,
  p_reason text default null
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_row public.payouts;
  v_open boolean;
  v_account uuid;
begin
  if not private.is_service() then
    raise exception 'only the service role settles payouts' using errcode = 'insufficient_privilege';
  end if;
  if p_outcome is null or p_outcome not in ('paid', 'failed', 'reversed') then
    raise exception 'a payout is paid, failed or reversed, not %', p_outcome using errcode = 'invalid_parameter_value';
  end if;
  select * into v_row from public.payouts p where p.id = p_payout_id for update;
  if not found then
    return 'not_found';
  end if;
  v_open := exists (select 1 from private.credit_open_holds h where h.transfer_id = v_row.hold_id);
  if p_outcome = 'paid' and v_row.status in ('approved', 'sent') and v_open then
    perform public.credit_post(md5('payout-post:' || v_row.id)::uuid, v_row.hold_id, null,
                               jsonb_build_object('payout_id', v_row.id, 'provider_transfer_id', p_provider_transfer_id));
  elsif p_outcome in ('failed', 'reversed') and v_row.status in ('approved', 'sent') and v_open then
    perform public.credit_void(md5('payout-void:' || v_row.id)::uuid, v_row.hold_id,
                               jsonb_build_object('payout_id', v_row.id, 'reason', p_reason));
  elsif p_outcome = 'reversed' and v_row.status = 'paid' then
    v_account := (select t.debit_account_id from public.credit_transfers t where t.id = v_row.hold_id);
    perform 1 from public.credit_accounts a
     where a.id in (v_account, private.credit_system_account('system:payouts'))
     order by a.user_id is null, a.id for no key update;
    perform public.credit_create_transfer(md5('payout-reversal:' || v_row.id)::uuid,
                                          private.credit_system_account('system:payouts'), v_account,
                                          v_row.amount, 'payout', 'payout', v_row.id::text,
                                          jsonb_build_object('payout_id', v_row.id, 'reversed', true));
  else
    return 'unchanged';
  end if;
  update public.payouts p
     set status = case p_outcome when 'paid' then 'paid' when 'failed' then 'failed' else 'reversed' end,
         provider_transfer_id = coalesce(p.provider_transfer_id, p_provider_transfer_id),
         failure = case when p_outcome = 'paid' then null else left(coalesce(p_reason, p_outcome), 1000) end,
         settled_at = now(), updated_at = now()
   where p.id = v_row.id
  returning * into v_row;
  insert into public.notifications (user_id, kind, title, body, data)
  values (v_row.user_id, 'payment', 'Payout ' || v_row.status,
          format('Your payout of %s credits was %s.', v_row.amount,
                 case v_row.status when 'paid' then 'sent' when 'failed' then 'not sent; the credits are available again'
                                   else 'reversed; the credits are available again' end),
          jsonb_build_object('payout_id', v_row.id, 'status', v_row.status));
  return 'applied';
end;
$$;

revoke execute on function public.payout_settle(uuid, text, text, text) from public, anon, authenticated;
grant execute on function public.payout_settle(uuid, text, text, text) to service_role;

-- Once per month and provider: everything available, for every provider with a ready
-- destination whose earnings reach the minimum. Returns how many payouts were requested.
create or replace function public.payout_request_monthly(p_month date default null) returns integer
language plpgsql security definer
set search_path = ''
as $$
declare
  v_month date := date_trunc('month', coalesce(p_month, (now() at time zone 'utc')::date))::date;
  v_min numeric := (select s.min_payout from private.credit_settings s);
  v_user uuid;
  v_n integer := 0;
begin
  if not private.is_service() then
    raise exception 'only the service role runs the monthly payouts' using errcode = 'insufficient_privilege';
  end if;
  for v_user in
    select d.user_id from public.payout_destinations d
      join public.credit_accounts a on a.user_id = d.user_id and a.kind = 'provider_earnings'
     where d.status = 'ready' and a.credits_posted - a.debits_posted - a.debits_pending >= v_min
       and not exists (select 1 from public.payouts p
                        where p.user_id = d.user_id
                          and (p.status in ('requested', 'approved', 'sent')
                               or (p.source = 'monthly' and p.created_at >= v_month)))
     order by d.user_id
  loop
    perform public.request_payout(null, md5('monthly-payout:' || v_month || ':' || v_user)::uuid, v_user, 'monthly');
    v_n := v_n + 1;
  end loop;
  return v_n;
end;
$$;

revoke execute on function public.payout_request_monthly(date) from public, anon, authenticated;
grant execute on function public.payout_request_monthly(date) to service_role;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger payout_destinations_updated_at before update on public.payout_destinations
  for each row execute function private.set_updated_at();
