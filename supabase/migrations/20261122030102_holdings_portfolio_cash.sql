-- Portfolio value with the cash of the user's linked accounts (brokerage_accounts.cash:
-- Alpaca's account, SnapTrade's balances fetched by full syncs). New columns come last;
-- a user with cash and no holdings has a row too. Like market_value, sums are in each
-- account's own currency (no FX conversion yet).
create or replace view public.portfolio_value
with (security_invoker = true) as
with held as (
  select ph.user_id,
         sum(ph.market_value) as market_value,
         sum(ph.unrealized_pnl) as unrealized_pnl,
         coalesce(sum(ph.day_change), 0) as day_change,
         round(100 * sum(ph.day_change) / nullif(sum(ph.total_units * ph.previous_close), 0), 4) as day_change_percent,
         count(*) as holdings_count,
         max(ph.updated_at) as updated_at
    from public.portfolio_holdings ph
   group by ph.user_id
), cash as (
  select a.user_id, sum(a.cash) as cash, max(a.updated_at) as updated_at
    from public.brokerage_accounts a
    join public.brokerage_connections c on c.id = a.connection_id
   where c.status <> 'deleted' and a.cash is not null
   group by a.user_id
)
select coalesce(h.user_id, c.user_id) as user_id,
       h.market_value,
       h.unrealized_pnl,
       coalesce(h.day_change, 0) as day_change,
       h.day_change_percent,
       coalesce(h.holdings_count, 0) as holdings_count,
       greatest(h.updated_at, c.updated_at) as updated_at,
       coalesce(c.cash, 0) as cash,
       coalesce(h.market_value, 0) + coalesce(c.cash, 0) as total_value
  from held h
  full join cash c on c.user_id = h.user_id;
