-- Ledger follow-ups: a usage element of a batch without "quantity" means one unit, as
-- credit_charge_usage's p_quantity defaults to 1.

create or replace function private.credit_parse_batch(p_transfers jsonb)
returns setof private.credit_batch_item
language sql
stable
security definer
set search_path = ''
as $$
  with e as (
    select (x.n - 1)::integer as idx, x.v, coalesce(x.v ->> 'action', 'transfer') as action
      from jsonb_array_elements(p_transfers) with ordinality as x(v, n)
  ),
  u as (
    select e.*,
           case when e.action = 'usage' then
             (select a.id from public.credit_accounts a
               where a.user_id = (e.v ->> 'user_id')::uuid and a.kind = 'user') end as user_account_id,
           -- The plan's price, chosen as private.current_plan chooses the plan (the current
           -- subscription's, else Free), written out so that it is planned with the batch.
           case when e.action = 'usage' and e.v ->> 'usage' in ('trade', 'backtest_second', 'ai_request') then
             (select (p.features ->> ('credits_per_' || (e.v ->> 'usage')))::numeric
                from public.plans p
               where p.id = coalesce(
                       (select s.plan_id from public.subscriptions s
                         where s.user_id = (e.v ->> 'user_id')::uuid and s.status in ('active', 'trial')
                           and s.expires_at > now()
                         limit 1),
                       (select f.id from public.plans f where f.name = 'Free'))) end as price,
           coalesce((e.v ->> 'quantity')::numeric, 1) as quantity
      from e
  )
  select u.idx,
         (u.v ->> 'id')::uuid,
         u.action,
         case when u.action = 'usage' then u.user_account_id else (u.v ->> 'debit_account_id')::uuid end,
         case when u.action = 'usage' then (select a.id from public.credit_accounts a where a.code = 'system:usage')
              else (u.v ->> 'credit_account_id')::uuid end,
         case when u.action = 'usage' then round(u.price * u.quantity, 8) else (u.v ->> 'amount')::numeric end,
         case when u.action = 'usage' then 'usage' else u.v ->> 'kind' end,
         (u.v ->> 'pending_id')::uuid,
         case when u.v ->> 'timeout_seconds' is not null
              then now() + make_interval(secs => (u.v ->> 'timeout_seconds')::double precision) end,
         u.v ->> 'reference_type',
         u.v ->> 'reference_id',
         case when u.action = 'usage'
              then coalesce(u.v -> 'metadata', '{}') || jsonb_build_object(
                     'usage', u.v ->> 'usage', 'quantity', u.quantity, 'unit_price', u.price)
              else coalesce(u.v -> 'metadata', '{}') end,
         case when u.action = 'usage' then
           case when u.user_account_id is null then 'user_account_not_found'
                when u.price is null then 'price_not_found'
                when u.quantity is null or u.quantity <= 0 then 'quantity_must_be_positive'
                when round(u.price * u.quantity, 8) = 0 then 'free' end
         end
    from u
$$;
revoke all on function private.credit_parse_batch(jsonb) from public, anon, authenticated, service_role;
