-- Credit flows built on the ledger core: usage pricing from the plan, grants (one-off and
-- monthly), purchases from paid invoices, revenue share of strategy subscriptions,
-- provider payouts and admin corrections. Ids that the platform derives itself (monthly
-- grants, purchases, the platform's half of a revenue share) are md5-based uuids of what
-- they stand for, so every flow is idempotent however often it runs.

-- Accounts --------------------------------------------------------------------------------

create or replace function private.credit_system_account(p_code text) returns uuid
language sql stable
set search_path = ''
as $$
  select a.id from public.credit_accounts a where a.code = p_code
$$;
revoke all on function private.credit_system_account(text) from public, anon, authenticated, service_role;

-- The user's account of p_kind ('user' or 'provider_earnings'), created when missing.
create or replace function private.credit_user_account(p_user_id uuid, p_kind text default 'user') returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  select a.id into v_id from public.credit_accounts a where a.user_id = p_user_id and a.kind = p_kind;
  if v_id is null then
    insert into public.credit_accounts (user_id, kind) values (p_user_id, p_kind)
    on conflict (user_id, kind) do nothing;
    select a.id into v_id from public.credit_accounts a where a.user_id = p_user_id and a.kind = p_kind;
  end if;
  return v_id;
end;
$$;
revoke all on function private.credit_user_account(uuid, text) from public, anon, authenticated, service_role;

-- Applies one transfer and raises its rejection; 'ok' and 'exists' return the transfer.
create or replace function private.credit_apply_or_raise(
  p_id uuid, p_action text, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text,
  p_pending_id uuid default null, p_timeout_at timestamptz default null, p_reference_type text default null,
  p_reference_id text default null, p_metadata jsonb default '{}'
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_code text;
  v_row public.credit_transfers;
begin
  v_code := private.credit_apply(p_id, p_action, p_debit_account_id, p_credit_account_id, p_amount, p_kind,
                                 p_pending_id, p_timeout_at, p_reference_type, p_reference_id, p_metadata);
  if v_code not in ('ok', 'exists') then
    perform private.credit_raise(v_code, p_id, p_debit_account_id, p_amount);
  end if;
  select * into v_row from public.credit_transfers t where t.id = p_id;
  return v_row;
end;
$$;
revoke all on function private.credit_apply_or_raise(uuid, text, uuid, uuid, numeric, text, uuid, timestamptz, text, text, jsonb)
  from public, anon, authenticated, service_role;

-- Pricing ---------------------------------------------------------------------------------

-- The price of one unit of p_usage ('trade', 'backtest_second', 'ai_request') on the
-- user's current plan: plans.features ->> 'credits_per_<usage>'.
create or replace function public.credit_price(p_user_id uuid, p_usage text) returns numeric
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_plan public.plans;
  v_price numeric;
begin
  perform private.credit_require_service();
  if p_usage is null or p_usage not in ('trade', 'backtest_second', 'ai_request') then
    raise exception 'unknown usage %; expected trade, backtest_second or ai_request', p_usage
      using errcode = 'invalid_parameter_value';
  end if;
  v_plan := private.current_plan(p_user_id);
  v_price := (v_plan.features ->> ('credits_per_' || p_usage))::numeric;
  if v_price is null then
    raise exception 'plan % has no price for %', v_plan.name, p_usage
      using errcode = 'invalid_parameter_value', hint = 'set plans.features.credits_per_' || p_usage;
  end if;
  return v_price;
end;
$$;
revoke execute on function public.credit_price(uuid, text) from public, anon, authenticated;
grant execute on function public.credit_price(uuid, text) to service_role;

-- What p_quantity units of p_usage cost the user now (rounded to the ledger's 8 decimals).
create or replace function public.credit_quote(p_user_id uuid, p_usage text, p_quantity numeric) returns numeric
language sql
stable
security definer
set search_path = ''
as $$
  select round(public.credit_price(p_user_id, p_usage) * p_quantity, 8)
$$;
revoke execute on function public.credit_quote(uuid, text, numeric) from public, anon, authenticated;
grant execute on function public.credit_quote(uuid, text, numeric) to service_role;

-- Charge the user for usage at their plan's price, posted at once, to system:usage.
-- Returns null when the plan makes this usage free (nothing is written).
create or replace function public.credit_charge_usage(
  p_id uuid,
  p_user_id uuid,
  p_usage text,
  p_quantity numeric default 1,
  p_reference_type text default null,
  p_reference_id text default null,
  p_metadata jsonb default '{}'
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_price numeric;
  v_plan text;
  v_amount numeric;
  v_account uuid;
begin
  perform private.credit_require_service();
  if p_quantity is null or p_quantity <= 0 then
    raise exception 'usage quantity must be positive, got %', p_quantity
      using errcode = 'check_violation', constraint = 'credit_usage_quantity_positive';
  end if;
  if p_usage is null or p_usage not in ('trade', 'backtest_second', 'ai_request') then
    raise exception 'unknown usage %; expected trade, backtest_second or ai_request', p_usage
      using errcode = 'invalid_parameter_value';
  end if;
  -- One statement for the account and the plan's price: this is the hottest call.
  select a.id, (p.features ->> ('credits_per_' || p_usage))::numeric, p.name
    into v_account, v_price, v_plan
    from public.credit_accounts a cross join private.current_plan(p_user_id) p
   where a.user_id = p_user_id and a.kind = 'user';
  if v_account is null then
    raise exception 'user % has no credit account', p_user_id
      using errcode = 'foreign_key_violation', constraint = 'credit_transfers_debit_account_id_fkey',
            detail = 'result: debit_account_not_found';
  end if;
  if v_price is null then
    raise exception 'plan % has no price for %', v_plan, p_usage
      using errcode = 'invalid_parameter_value', hint = 'set plans.features.credits_per_' || p_usage;
  end if;
  v_amount := round(v_price * p_quantity, 8);
  if v_amount = 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    p_id, 'transfer', v_account, private.credit_system_account('system:usage'), v_amount, 'usage', null, null,
    p_reference_type, p_reference_id,
    coalesce(p_metadata, '{}') || jsonb_build_object('usage', p_usage, 'quantity', p_quantity, 'unit_price', v_price));
end;
$$;
revoke execute on function public.credit_charge_usage(uuid, uuid, text, numeric, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.credit_charge_usage(uuid, uuid, text, numeric, text, text, jsonb) to service_role;

-- Hold credits for usage about to happen (e.g. an estimated backtest duration); post the
-- actual cost later with credit_post(…, credit_quote(…)) or void it.
create or replace function public.credit_hold_usage(
  p_id uuid,
  p_user_id uuid,
  p_usage text,
  p_quantity numeric default 1,
  p_timeout interval default interval '15 minutes',
  p_reference_type text default null,
  p_reference_id text default null,
  p_metadata jsonb default '{}'
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_price numeric;
  v_amount numeric;
begin
  perform private.credit_require_service();
  if p_quantity is null or p_quantity <= 0 then
    raise exception 'usage quantity must be positive, got %', p_quantity
      using errcode = 'check_violation', constraint = 'credit_usage_quantity_positive';
  end if;
  v_price := public.credit_price(p_user_id, p_usage);
  v_amount := round(v_price * p_quantity, 8);
  if v_amount = 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    p_id, 'hold', private.credit_user_account(p_user_id), private.credit_system_account('system:usage'),
    v_amount, 'usage', null, now() + coalesce(p_timeout, (select s.default_hold_timeout from private.credit_settings s)),
    p_reference_type, p_reference_id,
    coalesce(p_metadata, '{}') || jsonb_build_object('usage', p_usage, 'quantity', p_quantity, 'unit_price', v_price));
end;
$$;
revoke execute on function public.credit_hold_usage(uuid, uuid, text, numeric, interval, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.credit_hold_usage(uuid, uuid, text, numeric, interval, text, text, jsonb) to service_role;

-- Grants ----------------------------------------------------------------------------------

-- Grant credits to a user from system:grants (promotions, compensation, sign-up bonus).
create or replace function public.credit_grant(
  p_id uuid,
  p_user_id uuid,
  p_amount numeric,
  p_reference_type text default null,
  p_reference_id text default null,
  p_metadata jsonb default '{}'
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.credit_require_service();
  return private.credit_apply_or_raise(
    p_id, 'transfer', private.credit_system_account('system:grants'), private.credit_user_account(p_user_id),
    p_amount, 'grant', null, null, p_reference_type, p_reference_id, p_metadata);
end;
$$;
revoke execute on function public.credit_grant(uuid, uuid, numeric, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.credit_grant(uuid, uuid, numeric, text, text, jsonb) to service_role;

-- The monthly cycle a subscription is in (0 from started_at, +1 every calendar month
-- after) and the transfer id of that cycle's grant.
create or replace function private.credit_monthly_grant_id(p_subscription_id uuid, p_started_at timestamptz)
returns uuid
language sql stable
set search_path = ''
as $$
  select md5('credit-monthly-grant:' || p_subscription_id::text || ':' ||
             (extract(year from age(now(), p_started_at)) * 12 + extract(month from age(now(), p_started_at)))::integer::text)::uuid
$$;
revoke all on function private.credit_monthly_grant_id(uuid, timestamptz) from public, anon, authenticated, service_role;

-- Grant the plan's monthly_credits for the subscription's current monthly cycle, once:
-- on activation (cycle 0) and on every renewal month after. Returns the grant, or null
-- when the subscription is not current or its plan grants nothing.
create or replace function public.credit_grant_monthly(p_subscription_id uuid) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_sub public.subscriptions;
  v_credits numeric;
begin
  perform private.credit_require_service();
  select * into v_sub from public.subscriptions s where s.id = p_subscription_id;
  if not found or v_sub.status not in ('active', 'trial') or v_sub.expires_at <= now() then
    return null;
  end if;
  select (p.features ->> 'monthly_credits')::numeric into v_credits from public.plans p where p.id = v_sub.plan_id;
  if coalesce(v_credits, 0) <= 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    private.credit_monthly_grant_id(v_sub.id, v_sub.started_at), 'transfer',
    private.credit_system_account('system:grants'), private.credit_user_account(v_sub.user_id),
    v_credits, 'grant', null, null, 'subscription', v_sub.id::text,
    jsonb_build_object('reason', 'monthly_credits', 'plan_id', v_sub.plan_id));
end;
$$;
revoke execute on function public.credit_grant_monthly(uuid) from public, anon, authenticated;
grant execute on function public.credit_grant_monthly(uuid) to service_role;

-- The periodic sweep: grant every current subscription its cycle's credits, up to p_limit
-- per call, through one batch. Returns the result codes and how many of each.
create or replace function public.credit_grant_monthly_all(p_limit integer default 5000)
returns table (result text, transfers bigint)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_grants uuid := private.credit_system_account('system:grants');
begin
  perform private.credit_require_service();
  return query
  select r.result, count(*)
    from public.credit_create_transfers(coalesce((
      select jsonb_agg(jsonb_build_object(
               'action', 'transfer', 'id', g.grant_id, 'debit_account_id', v_grants,
               'credit_account_id', a.id, 'amount', g.credits, 'kind', 'grant',
               'reference_type', 'subscription', 'reference_id', g.subscription_id::text,
               'metadata', jsonb_build_object('reason', 'monthly_credits', 'plan_id', g.plan_id)))
        from (select s.id as subscription_id, s.user_id, s.plan_id,
                     private.credit_monthly_grant_id(s.id, s.started_at) as grant_id,
                     (p.features ->> 'monthly_credits')::numeric as credits
                from public.subscriptions s join public.plans p on p.id = s.plan_id
               where s.status in ('active', 'trial') and s.expires_at > now()
                 and coalesce((p.features ->> 'monthly_credits')::numeric, 0) > 0
                 and not exists (select 1 from public.credit_transfers t
                                  where t.id = private.credit_monthly_grant_id(s.id, s.started_at))
               order by s.id
               limit p_limit) g
        join public.credit_accounts a on a.user_id = g.user_id and a.kind = 'user'), '[]')) r
   group by r.result;
end;
$$;
revoke execute on function public.credit_grant_monthly_all(integer) from public, anon, authenticated;
grant execute on function public.credit_grant_monthly_all(integer) to service_role;

-- Purchases -------------------------------------------------------------------------------

-- Credit a paid invoice's credits to its user, once per invoice (from system:purchases).
create or replace function public.credit_purchase_from_invoice(p_invoice_id uuid) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_invoice public.invoices;
begin
  perform private.credit_require_service();
  select * into v_invoice from public.invoices i where i.id = p_invoice_id;
  if not found then
    raise exception 'invoice % does not exist', p_invoice_id using errcode = 'no_data_found';
  end if;
  if v_invoice.status <> 'paid' then
    raise exception 'invoice % is %, not paid: no credits to add', p_invoice_id, v_invoice.status
      using errcode = 'check_violation', constraint = 'credit_purchases_invoice_paid';
  end if;
  if v_invoice.credits <= 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    md5('credit-purchase:' || v_invoice.id::text)::uuid, 'transfer',
    private.credit_system_account('system:purchases'), private.credit_user_account(v_invoice.user_id),
    v_invoice.credits, 'purchase', null, null, 'invoice', v_invoice.id::text,
    jsonb_build_object('amount', v_invoice.amount, 'currency', v_invoice.currency, 'provider', v_invoice.provider));
end;
$$;
revoke execute on function public.credit_purchase_from_invoice(uuid) from public, anon, authenticated;
grant execute on function public.credit_purchase_from_invoice(uuid) to service_role;

-- An invoice that becomes paid credits its purchase in the same transaction.
create or replace function private.credit_invoice_paid() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.status = 'paid' and new.credits > 0 and (tg_op = 'INSERT' or old.status is distinct from 'paid') then
    perform private.credit_apply_or_raise(
      md5('credit-purchase:' || new.id::text)::uuid, 'transfer',
      private.credit_system_account('system:purchases'), private.credit_user_account(new.user_id),
      new.credits, 'purchase', null, null, 'invoice', new.id::text,
      jsonb_build_object('amount', new.amount, 'currency', new.currency, 'provider', new.provider));
  end if;
  return null;
end;
$$;
revoke all on function private.credit_invoice_paid() from public, anon, authenticated, service_role;
create trigger invoices_paid_credit_purchase after insert or update of status on public.invoices
  for each row execute function private.credit_invoice_paid();

-- Revenue share ---------------------------------------------------------------------------

-- The subscriber pays a strategy subscription's period in credits: the provider's share
-- (strategies.provider_share, default 0.80) goes to their provider_earnings account, the
-- rest to system:platform_revenue. Both transfers or neither. p_id identifies the payment
-- (one per subscription period); the platform's transfer id is derived from it.
-- Returns the provider's transfer and the platform's.
create or replace function public.credit_pay_strategy_subscription(
  p_id uuid,
  p_strategy_subscription_id uuid,
  p_amount numeric default null
) returns setof public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions;
  v_strategy public.strategies;
  v_amount numeric;
  v_provider_part numeric;
  v_subscriber_account uuid;
  v_provider_account uuid;
  v_platform_account uuid := private.credit_system_account('system:platform_revenue');
  v_platform_id uuid := md5('credit-revenue-share-platform:' || p_id::text)::uuid;
  v_reference text;
begin
  perform private.credit_require_service();
  select * into v_sub from public.strategy_subscriptions s where s.id = p_strategy_subscription_id;
  if not found then
    raise exception 'strategy subscription % does not exist', p_strategy_subscription_id using errcode = 'no_data_found';
  end if;
  select * into v_strategy from public.strategies s where s.id = v_sub.strategy_id;
  v_amount := coalesce(p_amount, nullif(v_sub.price, 0), v_strategy.monthly_price);
  if v_amount is null or v_amount <= 0 then
    perform private.credit_raise('amount_must_be_positive', p_id, null, v_amount);
  end if;
  v_provider_part := round(v_amount * v_strategy.provider_share, 8);
  v_subscriber_account := private.credit_user_account(v_sub.subscriber_id);
  v_provider_account := private.credit_user_account(v_strategy.user_id, 'provider_earnings');
  v_reference := v_sub.id::text;

  perform 1 from public.credit_accounts a
   where a.id in (v_subscriber_account, v_provider_account, v_platform_account)
   order by a.user_id is null, a.id for no key update;

  if v_provider_part > 0 then
    return next private.credit_apply_or_raise(
      p_id, 'transfer', v_subscriber_account, v_provider_account, v_provider_part, 'revenue_share', null, null,
      'strategy_subscription', v_reference,
      jsonb_build_object('share', 'provider', 'provider_share', v_strategy.provider_share, 'payment', v_amount));
  end if;
  if v_amount - v_provider_part > 0 then
    return next private.credit_apply_or_raise(
      case when v_provider_part > 0 then v_platform_id else p_id end, 'transfer', v_subscriber_account,
      v_platform_account, v_amount - v_provider_part, 'revenue_share', null, null,
      'strategy_subscription', v_reference,
      jsonb_build_object('share', 'platform', 'provider_share', v_strategy.provider_share, 'payment', v_amount));
  end if;
end;
$$;
revoke execute on function public.credit_pay_strategy_subscription(uuid, uuid, numeric) from public, anon, authenticated;
grant execute on function public.credit_pay_strategy_subscription(uuid, uuid, numeric) to service_role;

-- Payouts ---------------------------------------------------------------------------------

-- The minimum a provider may request, from private.credit_settings (default 50).
create or replace function public.credit_min_payout() returns numeric
language sql stable
security definer
set search_path = ''
as $$
  select s.min_payout from private.credit_settings s
$$;
revoke execute on function public.credit_min_payout() from public, anon;
grant execute on function public.credit_min_payout() to authenticated, service_role;

-- A provider asks to be paid out: their earnings (all available by default) are held
-- toward system:payouts once they reach the minimum payout. The worker posts the hold
-- when the money is sent, or voids it when the payout fails (the credits come back).
-- Providers call it for themselves (p_user_id null); the service may name anyone.
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
    coalesce(p_id, gen_random_uuid()), 'hold', v_account.id, private.credit_system_account('system:payouts'),
    v_amount, 'payout', null, null, 'payout_request', null,
    jsonb_build_object('requested_by', (select auth.uid())));
end;
$$;
revoke execute on function public.credit_request_payout(numeric, uuid, uuid) from public, anon;
grant execute on function public.credit_request_payout(numeric, uuid, uuid) to authenticated, service_role;

-- Corrections -----------------------------------------------------------------------------

-- Admins (and the service) correct mistakes with a new transfer; the reason is recorded.
-- A correction obeys the same rules as any transfer (a user account cannot go negative).
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
  if p_reason is null or btrim(p_reason) = '' then
    raise exception 'a correction needs a reason' using errcode = 'check_violation',
      constraint = 'credit_corrections_reason_required';
  end if;
  return private.credit_apply_or_raise(
    p_id, 'transfer', p_debit_account_id, p_credit_account_id, p_amount, 'correction', null, null,
    'correction', null, jsonb_build_object('reason', p_reason, 'corrected_by', (select auth.uid())));
end;
$$;
revoke execute on function public.credit_correct(uuid, uuid, uuid, numeric, text) from public, anon;
grant execute on function public.credit_correct(uuid, uuid, uuid, numeric, text) to authenticated, service_role;
