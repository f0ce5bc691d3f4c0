-- The single-call hot path without per-call planning. A SQL-language function that cannot
-- be inlined (security definer, or with a SET clause) re-plans its body on every top-level
-- call; plpgsql caches its plans for the session. So the functions every charge goes
-- through are plpgsql here, and the plan and service checks are written out in them.

-- As private.is_service(), for use inside the ledger's security-definer functions: there
-- current_user is the owner, so the request's JWT role decides (none on direct
-- connections, 'service_role' from the service key).
create or replace function private.credit_require_service() returns void
language plpgsql stable
set search_path = ''
as $$
declare
  v_stack text;
begin
  if coalesce(nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', 'service_role')
     = 'service_role' then
    return;
  end if;
  -- An app request: allowed only through another (platform) function, see 20261122020400.
  get diagnostics v_stack = pg_context;
  if exists (
    select 1 from pg_catalog.regexp_split_to_table(v_stack, E'\n') as frame
     where frame !~ '(function (public\.|private\.)?(get_)?credit_[a-z_]+\(|function "(get_)?credit_[a-z_]+")'
  ) then
    return;
  end if;
  raise exception 'only the service role can move credits' using errcode = 'insufficient_privilege';
end;
$$;
revoke all on function private.credit_require_service() from public, anon, authenticated, service_role;

create or replace function private.credit_system_account(p_code text) returns uuid
language plpgsql stable
set search_path = ''
as $$
begin
  return (select a.id from public.credit_accounts a where a.code = p_code);
end;
$$;
revoke all on function private.credit_system_account(text) from public, anon, authenticated, service_role;

-- The user's 'user' account and the price of one unit of p_usage on their current plan
-- (chosen as private.current_plan chooses: the current subscription's plan, else Free).
create or replace function private.credit_usage_price(p_user_id uuid, p_usage text,
                                                      out account_id uuid, out price numeric, out plan text)
language plpgsql stable
set search_path = ''
as $$
begin
  if p_usage is null or p_usage not in ('trade', 'backtest_second', 'ai_request') then
    raise exception 'unknown usage %; expected trade, backtest_second or ai_request', p_usage
      using errcode = 'invalid_parameter_value';
  end if;
  select a.id into account_id from public.credit_accounts a where a.user_id = p_user_id and a.kind = 'user';
  select (p.features ->> ('credits_per_' || p_usage))::numeric, p.name into price, plan
    from public.plans p
   where p.id = coalesce(
           (select s.plan_id from public.subscriptions s
             where s.user_id = p_user_id and s.status in ('active', 'trial') and s.expires_at > now()
             limit 1),
           (select f.id from public.plans f where f.name = 'Free'));
  if price is null then
    raise exception 'plan % has no price for %', plan, p_usage
      using errcode = 'invalid_parameter_value', hint = 'set plans.features.credits_per_' || p_usage;
  end if;
end;
$$;
revoke all on function private.credit_usage_price(uuid, text) from public, anon, authenticated, service_role;

create or replace function public.credit_price(p_user_id uuid, p_usage text) returns numeric
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.credit_require_service();
  return (private.credit_usage_price(p_user_id, p_usage)).price;
end;
$$;

create or replace function public.credit_quote(p_user_id uuid, p_usage text, p_quantity numeric) returns numeric
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.credit_require_service();
  return round((private.credit_usage_price(p_user_id, p_usage)).price * p_quantity, 8);
end;
$$;

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
  v record;
  v_amount numeric;
begin
  perform private.credit_require_service();
  if p_quantity is null or p_quantity <= 0 then
    raise exception 'usage quantity must be positive, got %', p_quantity
      using errcode = 'check_violation', constraint = 'credit_usage_quantity_positive';
  end if;
  v := private.credit_usage_price(p_user_id, p_usage);
  if v.account_id is null then
    raise exception 'user % has no credit account', p_user_id
      using errcode = 'foreign_key_violation', constraint = 'credit_transfers_debit_account_id_fkey',
            detail = 'result: debit_account_not_found';
  end if;
  v_amount := round(v.price * p_quantity, 8);
  if v_amount = 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    p_id, 'transfer', v.account_id, private.credit_system_account('system:usage'), v_amount, 'usage', null, null,
    p_reference_type, p_reference_id,
    coalesce(p_metadata, '{}') || jsonb_build_object('usage', p_usage, 'quantity', p_quantity, 'unit_price', v.price));
end;
$$;

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
  v record;
  v_amount numeric;
begin
  perform private.credit_require_service();
  if p_quantity is null or p_quantity <= 0 then
    raise exception 'usage quantity must be positive, got %', p_quantity
      using errcode = 'check_violation', constraint = 'credit_usage_quantity_positive';
  end if;
  v := private.credit_usage_price(p_user_id, p_usage);
  v_amount := round(v.price * p_quantity, 8);
  if v_amount = 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    p_id, 'hold', coalesce(v.account_id, private.credit_user_account(p_user_id)),
    private.credit_system_account('system:usage'), v_amount, 'usage', null,
    now() + coalesce(p_timeout, (select s.default_hold_timeout from private.credit_settings s)),
    p_reference_type, p_reference_id,
    coalesce(p_metadata, '{}') || jsonb_build_object('usage', p_usage, 'quantity', p_quantity, 'unit_price', v.price));
end;
$$;

create or replace function public.credit_hold(
  p_id uuid,
  p_debit_account_id uuid,
  p_credit_account_id uuid,
  p_amount numeric,
  p_kind text,
  p_timeout interval default interval '15 minutes',
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
  return private.credit_apply_or_raise(p_id, 'hold', p_debit_account_id, p_credit_account_id, p_amount, p_kind,
                                       null, case when p_timeout is not null then now() + p_timeout end,
                                       p_reference_type, p_reference_id, p_metadata);
end;
$$;
