-- Views apps read, and the tables they watch live through Realtime.

create or replace view public.bot_performance_summary
with (security_invoker = true) as
select b.*,
       case when b.total_trades > 0
            then round(b.winning_trades::numeric / b.total_trades * 100, 2)
            else 0 end as win_rate_percentage,
       p.email as user_email,
       p.full_name as user_name
  from public.bots b
  join public.profiles p on p.id = b.user_id;

-- The public name of a marketplace author, and nothing else of their profile.
create or replace function private.author_name(p_user_id uuid) returns text
language sql stable security definer
set search_path = ''
as $$
  select p.full_name
    from public.profiles p
   where p.id = p_user_id
     and exists (select 1 from public.strategies s
                  where s.user_id = p_user_id and s.is_public and s.strategy_type = 'marketplace' and s.is_verified)
$$;
revoke all on function private.author_name(uuid) from public;
grant execute on function private.author_name(uuid) to anon, authenticated, service_role;

create or replace view public.strategy_marketplace
with (security_invoker = true) as
select s.id,
       s.user_id as author_id,
       private.author_name(s.user_id) as author_name,
       s.name,
       s.description,
       s.engine,
       s.category,
       s.tags,
       s.risk_level,
       s.monthly_price,
       s.performance,
       s.avg_backtest_return as avg_return_percentage,
       s.backtest_count,
       coalesce(r.avg_rating, 0) as avg_rating,
       coalesce(r.review_count, 0) as review_count,
       s.created_at
  from public.strategies s
  left join lateral (
    select round(avg(rv.rating), 2) as avg_rating, count(*) as review_count
      from public.reviews rv where rv.strategy_id = s.id
  ) r on true
 where s.is_public and s.strategy_type = 'marketplace' and s.is_verified;

revoke all on public.bot_performance_summary, public.strategy_marketplace from anon, authenticated;
grant select on public.bot_performance_summary to authenticated, service_role;
grant select on public.strategy_marketplace to anon, authenticated, service_role;

alter publication supabase_realtime add table
  public.bots, public.orders, public.trades, public.bot_logs, public.signals, public.notifications,
  public.aggregated_holdings, public.sync_runs, public.backtest_runs, public.jobs;
