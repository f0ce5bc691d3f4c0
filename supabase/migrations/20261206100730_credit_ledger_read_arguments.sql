-- The ledger's read RPCs refuse arguments they cannot honour instead of quietly answering
-- with nothing or with a different page size: a user's accounts are of kind 'user' or
-- 'provider_earnings', and a statement page holds 1 to 500 rows (50 when not given).

create or replace function private.credit_user_kind(p_kind text) returns text
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_kind is null or p_kind not in ('user', 'provider_earnings') then
    raise exception 'a user''s credit accounts are of kind user or provider_earnings, not %',
      coalesce(quote_literal(left(p_kind, 40)), 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  return p_kind;
end;
$$;
revoke all on function private.credit_user_kind(text) from public;
grant execute on function private.credit_user_kind(text) to authenticated, service_role;

create or replace function public.get_credit_balance(p_kind text default 'user')
returns setof public.credit_balances
language sql
stable
security invoker
set search_path = ''
as $$
  select b.* from public.credit_balances b
   where b.user_id = (select auth.uid()) and b.kind = private.credit_user_kind(p_kind)
$$;

create or replace function public.get_credit_statement(
  p_limit integer default 50,
  p_before timestamptz default null,
  p_kind text default 'user'
) returns setof public.credit_statement
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if p_limit is not null and (p_limit < 1 or p_limit > 500) then
    raise exception 'a statement page holds 1 to 500 rows, not %', p_limit
      using errcode = 'invalid_parameter_value';
  end if;
  return query
  select s.* from public.credit_statement s
   where s.account_id = (select a.id from public.credit_accounts a
                          where a.user_id = (select auth.uid()) and a.kind = private.credit_user_kind(p_kind))
     and (p_before is null or s.created_at < p_before)
   order by s.created_at desc, s.transfer_id
   limit coalesce(p_limit, 50);
end;
$$;
