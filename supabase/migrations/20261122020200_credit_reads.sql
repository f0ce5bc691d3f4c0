-- What users read about their credits through PostgREST: balances and a statement. Both
-- views are security_invoker, so the RLS of credit_accounts and credit_transfers decides
-- what each caller sees (their own accounts; admins everything). Nobody writes through them.

create or replace view public.credit_balances with (security_invoker = true) as
select a.id as account_id,
       a.user_id,
       a.kind,
       a.code,
       a.currency,
       a.balance,
       a.debits_pending as held,
       a.credits_posted - a.debits_posted - a.debits_pending as available,
       a.credits_pending as incoming,
       a.low_balance_threshold,
       a.updated_at
  from public.credit_accounts a;

-- One row per transfer and side, seen from the account: amount is the change to the
-- posted balance, available_change the change to what can still be spent (a hold lowers
-- it at once; its post or void gives back what was held).
create or replace view public.credit_statement with (security_invoker = true) as
select a.id as account_id, a.user_id, a.kind as account_kind,
       t.id as transfer_id, t.created_at, t.kind, t.phase,
       case when t.phase in ('posted', 'post_pending') then -t.amount else 0 end as amount,
       case t.phase when 'posted' then -t.amount
                    when 'pending' then -t.amount
                    when 'post_pending' then h.amount - t.amount
                    when 'void_pending' then t.amount end as available_change,
       t.credit_account_id as counterparty_account_id,
       t.pending_id, t.timeout_at, t.reference_type, t.reference_id, t.metadata
  from public.credit_transfers t
  join public.credit_accounts a on a.id = t.debit_account_id
  left join public.credit_transfers h on h.id = t.pending_id
union all
select a.id, a.user_id, a.kind,
       t.id, t.created_at, t.kind, t.phase,
       case when t.phase in ('posted', 'post_pending') then t.amount else 0 end,
       case when t.phase in ('posted', 'post_pending') then t.amount else 0 end,
       t.debit_account_id,
       t.pending_id, t.timeout_at, t.reference_type, t.reference_id, t.metadata
  from public.credit_transfers t
  join public.credit_accounts a on a.id = t.credit_account_id;

revoke all on public.credit_balances, public.credit_statement from anon, authenticated;
grant select on public.credit_balances, public.credit_statement to authenticated, service_role;

-- RPC: the caller's balance (their 'user' account, or 'provider_earnings').
create or replace function public.get_credit_balance(p_kind text default 'user')
returns setof public.credit_balances
language sql
stable
security invoker
set search_path = ''
as $$
  select b.* from public.credit_balances b
   where b.user_id = (select auth.uid()) and b.kind = p_kind
$$;
revoke execute on function public.get_credit_balance(text) from public, anon;
grant execute on function public.get_credit_balance(text) to authenticated;

-- RPC: the caller's statement, newest first, p_limit rows (at most 500) before p_before.
create or replace function public.get_credit_statement(
  p_limit integer default 50,
  p_before timestamptz default null,
  p_kind text default 'user'
) returns setof public.credit_statement
language sql
stable
security invoker
set search_path = ''
as $$
  select s.* from public.credit_statement s
   where s.account_id = (select a.id from public.credit_accounts a
                          where a.user_id = (select auth.uid()) and a.kind = p_kind)
     and (p_before is null or s.created_at < p_before)
   order by s.created_at desc, s.transfer_id
   limit least(greatest(coalesce(p_limit, 50), 1), 500)
$$;
revoke execute on function public.get_credit_statement(integer, timestamptz, text) from public, anon;
grant execute on function public.get_credit_statement(integer, timestamptz, text) to authenticated;
