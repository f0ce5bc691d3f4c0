-- Organisation policies that cost the planner one function call, not a tree of subqueries.
--
-- The members' policies on the bots' child tables (orders, trades, bot_logs,
-- position_requests, protective_orders) and the organisation keys' restrictive policies
-- on orders and trades collect an organisation's bots with a subquery on public.bots, which
-- PostgreSQL plans with the bots table's own policies, whose subquery on
-- public.organisation_members is planned with that table's policy in turn: about forty
-- InitPlans for one read of public.trades, each planned on every statement although, for a
-- user's own rows, none of them runs (the owner's `user_id = (select auth.uid())` already
-- holds). Planning them cost a user's dashboard 2 to 3 ms a statement at 1,000,000 trades
-- (bench rls, `explain` as the user; the service role plans the same statements in well
-- under 1 ms), every time a statement is planned: the first five runs of each statement in
-- a session, and every run after the connection's role changed (PostgreSQL plans a query
-- that reads tables with row-level security again for another role, and PostgREST's
-- connections take turns serving anon, users and the service role).
--
-- The same bots are now collected by two functions that run with the caller's rights
-- (security invoker), so the bots table's policies still decide what they return:
--   private.organisation_bot_ids()      the bots of the caller's organisations
--   private.organisation_key_bot_ids()  the bots of the organisation the caller's JWT is
--                                       limited to (an organisation API key)
-- A policy calls one as an uncorrelated InitPlan, `(select private.…())`: one node to plan,
-- run at most once per statement and only when a row needs it. PL/pgSQL keeps each
-- function's plan for the session. The bots table's members' policy compares with
-- private.organisation_ids() (the caller's organisations, as organisation_members' own
-- policy does) instead of reading organisation_members through its policies.
--
-- Who sees what is unchanged: the same organisations, the same bots read through the
-- same policies, the same comparisons.

-- ======================================================================================
-- Functions
-- ======================================================================================

-- The bots of the organisations the caller is a member of, as the caller may read them.
create or replace function private.organisation_bot_ids()
returns uuid[]
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  return array(select b.id from public.bots b where b.organisation_id = any (private.organisation_ids()));
end;
$$;

revoke all on function private.organisation_bot_ids() from public, anon, service_role;
grant execute on function private.organisation_bot_ids() to authenticated;

-- The bots of the organisation the caller's JWT is limited to (claim organisation_id, set
-- for an organisation's API key), as the caller may read them; empty without the claim.
create or replace function private.organisation_key_bot_ids()
returns uuid[]
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  return array(select b.id from public.bots b
                where b.organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid);
end;
$$;

revoke all on function private.organisation_key_bot_ids() from public, anon, service_role;
grant execute on function private.organisation_key_bot_ids() to authenticated;

-- ======================================================================================
-- RLS
-- ======================================================================================
drop policy "Organisation members can read its bots" on public.bots;
create policy "Organisation members can read its bots" on public.bots
  for select to authenticated using (organisation_id = any ((select private.organisation_ids())::uuid[]));

drop policy "Organisation members can read its bots' orders" on public.orders;
create policy "Organisation members can read its bots' orders" on public.orders
  for select to authenticated using (bot_id = any ((select private.organisation_bot_ids())::uuid[]));

drop policy "Organisation members can read its bots' trades" on public.trades;
create policy "Organisation members can read its bots' trades" on public.trades
  for select to authenticated using (bot_id = any ((select private.organisation_bot_ids())::uuid[]));

drop policy "Organisation members can read its bots' logs" on public.bot_logs;
create policy "Organisation members can read its bots' logs" on public.bot_logs
  for select to authenticated using (bot_id = any ((select private.organisation_bot_ids())::uuid[]));

drop policy "Organisation members can read its bots' position requests" on public.position_requests;
create policy "Organisation members can read its bots' position requests" on public.position_requests
  for select to authenticated using (bot_id = any ((select private.organisation_bot_ids())::uuid[]));

drop policy "Organisation members can read its bots' protective orders" on public.protective_orders;
create policy "Organisation members can read its bots' protective orders" on public.protective_orders
  for select to authenticated using (bot_id = any ((select private.organisation_bot_ids())::uuid[]));

drop policy "Organisation API keys reach only its orders" on public.orders;
create policy "Organisation API keys reach only its orders" on public.orders
  as restrictive for select to authenticated
  using (((select auth.jwt()) ->> 'organisation_id') is null
         or bot_id = any ((select private.organisation_key_bot_ids())::uuid[]));

drop policy "Organisation API keys reach only its trades" on public.trades;
create policy "Organisation API keys reach only its trades" on public.trades
  as restrictive for select to authenticated
  using (((select auth.jwt()) ->> 'organisation_id') is null
         or bot_id = any ((select private.organisation_key_bot_ids())::uuid[]));
