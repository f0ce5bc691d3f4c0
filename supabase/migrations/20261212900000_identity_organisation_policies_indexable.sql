-- Organisation policies on the bots' child tables, in a form the planner can use an index for.
--
-- The members' policies read `exists (select 1 from bots b where b.id = bot_id and …)`: a
-- correlated subquery, OR'ed by PostgreSQL with the owner's `user_id = (select auth.uid())`.
-- An OR with a correlated subplan cannot become an index condition, so "my last 50 trades"
-- walked trades by entry_time and ran the subplan for every row until it found 50 of the
-- user's: 157 ms at 100,000 trades, and growing with the table (tests/bench/rls.py).
--
-- Here the organisation's bots are collected once per statement (an uncorrelated InitPlan,
-- empty for a user in no organisation) and compared with `bot_id = any (…)`, so the two
-- permissive policies become a BitmapOr over trades_user_entry_idx and trades_bot_id_idx.
-- Who sees what is unchanged: the same bots, read through the bots table's own policies.

-- ======================================================================================
-- RLS
-- ======================================================================================
drop policy "Organisation members can read its bots' orders" on public.orders;
create policy "Organisation members can read its bots' orders" on public.orders
  for select to authenticated using (bot_id = any ((select array(
    select b.id from public.bots b where b.organisation_id = any ((select array(
      select m.organisation_id from public.organisation_members m where m.user_id = (select auth.uid())))::uuid[])))::uuid[]));

drop policy "Organisation members can read its bots' trades" on public.trades;
create policy "Organisation members can read its bots' trades" on public.trades
  for select to authenticated using (bot_id = any ((select array(
    select b.id from public.bots b where b.organisation_id = any ((select array(
      select m.organisation_id from public.organisation_members m where m.user_id = (select auth.uid())))::uuid[])))::uuid[]));

drop policy "Organisation members can read its bots' logs" on public.bot_logs;
create policy "Organisation members can read its bots' logs" on public.bot_logs
  for select to authenticated using (bot_id = any ((select array(
    select b.id from public.bots b where b.organisation_id = any ((select array(
      select m.organisation_id from public.organisation_members m where m.user_id = (select auth.uid())))::uuid[])))::uuid[]));

drop policy "Organisation members can read its bots' position requests" on public.position_requests;
create policy "Organisation members can read its bots' position requests" on public.position_requests
  for select to authenticated using (bot_id = any ((select array(
    select b.id from public.bots b where b.organisation_id = any ((select array(
      select m.organisation_id from public.organisation_members m where m.user_id = (select auth.uid())))::uuid[])))::uuid[]));

drop policy "Organisation members can read its bots' protective orders" on public.protective_orders;
create policy "Organisation members can read its bots' protective orders" on public.protective_orders
  for select to authenticated using (bot_id = any ((select array(
    select b.id from public.bots b where b.organisation_id = any ((select array(
      select m.organisation_id from public.organisation_members m where m.user_id = (select auth.uid())))::uuid[])))::uuid[]));

-- An organisation key's restriction: its organisation's bots, also collected once.
drop policy "Organisation API keys reach only its orders" on public.orders;
create policy "Organisation API keys reach only its orders" on public.orders
  as restrictive for select to authenticated
  using (((select auth.jwt()) ->> 'organisation_id') is null
         or bot_id = any ((select array(
              select b.id from public.bots b
               where b.organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid))::uuid[]));

drop policy "Organisation API keys reach only its trades" on public.trades;
create policy "Organisation API keys reach only its trades" on public.trades
  as restrictive for select to authenticated
  using (((select auth.jwt()) ->> 'organisation_id') is null
         or bot_id = any ((select array(
              select b.id from public.bots b
               where b.organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid))::uuid[]));
