-- The platform at a glance for operators: admin_platform_overview() returns users,
-- subscriptions per plan and MRR, revenue per day and per provider, credits, trades and
-- volume per day, running bots per exchange, signals and copy executions, and backtest
-- compute, in one JSON document. Days are UTC dates; windows are the last 30 days
-- including today. Every part reads an index or a small table, so the call stays fast
-- with millions of trades (scripts/bench overview).

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

-- Trades per day: an index-only scan over the window instead of the table. It replaces
-- trades_entry_time_idx (same key).
create index trades_entry_time_covering_idx on public.trades (entry_time) include (trading_pair, amount, price);
drop index public.trades_entry_time_idx;
create index invoices_paid_at_idx on public.invoices (paid_at) include (provider, currency, amount) where status = 'paid';
create index signals_created_at_idx on public.signals (created_at);
create index signal_executions_created_at_idx on public.signal_executions (created_at) include (status);
create index backtest_runs_finished_at_idx on public.backtest_runs (finished_at) include (compute_seconds)
  where finished_at is not null;

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

create or replace function public.admin_platform_overview() returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_today date := (now() at time zone 'utc')::date;
  v_from date := v_today - 29;
  v_from_ts timestamptz := (v_today - 29)::timestamp at time zone 'utc';
  v_today_ts timestamptz := v_today::timestamp at time zone 'utc';
  v_month_ts timestamptz := date_trunc('month', v_today)::timestamp at time zone 'utc';
begin
  perform private.require_admin();
  return jsonb_build_object(
    'as_of', now(),
    'window', jsonb_build_object('from', v_from, 'to', v_today),
    -- Active: signed in during the last 7 days.
    'users', (
      select jsonb_build_object(
        'total', count(*),
        'new_today', count(*) filter (where u.created_at >= v_today_ts),
        'active_7d', count(*) filter (where u.last_sign_in_at >= now() - interval '7 days'))
      from auth.users u),
    -- Current subscriptions per plan; MRR counts paid active ones at the plan's monthly
    -- price (a yearly invoice at a twelfth of the yearly price), per currency.
    'subscriptions', coalesce((
      select jsonb_agg(jsonb_build_object('plan', x.name, 'currency', x.currency, 'active', x.active,
                                          'trial', x.trial, 'mrr', x.mrr) order by x.sort_order, x.name)
      from (
        select p.name, p.currency, p.sort_order,
               count(*) filter (where s.status = 'active') as active,
               count(*) filter (where s.status = 'trial') as trial,
               coalesce(sum(case when i.period = 'year' then round(coalesce(p.price_yearly, p.price_monthly * 12) / 12, 2)
                                 else p.price_monthly end) filter (where s.status = 'active'), 0) as mrr
        from public.subscriptions s
        join public.plans p on p.id = s.plan_id
        left join public.invoices i on i.id = s.invoice_id
        where s.status in ('active', 'trial') and s.expires_at > now()
        group by p.id, p.name, p.currency, p.sort_order) x), '[]'),
    'mrr', coalesce((
      select jsonb_object_agg(y.currency, y.mrr)
      from (
        select p.currency,
               sum(case when i.period = 'year' then round(coalesce(p.price_yearly, p.price_monthly * 12) / 12, 2)
                        else p.price_monthly end) as mrr
        from public.subscriptions s
        join public.plans p on p.id = s.plan_id
        left join public.invoices i on i.id = s.invoice_id
        where s.status = 'active' and s.expires_at > now()
        group by p.currency) y), '{}'),
    -- Paid invoices per day, provider and currency.
    'revenue_per_day', coalesce((
      select jsonb_agg(jsonb_build_object('day', r.day, 'provider', r.provider, 'currency', r.currency,
                                          'invoices', r.n, 'amount', r.amount) order by r.day, r.provider, r.currency)
      from (
        select (i.paid_at at time zone 'utc')::date as day, i.provider, i.currency, count(*) as n, sum(i.amount) as amount
        from public.invoices i
        where i.status = 'paid' and i.paid_at >= v_from_ts
        group by 1, 2, 3) r), '[]'),
    -- All-time credits from the system accounts' running totals; held is what holds
    -- reserve now.
    'credits', (
      select jsonb_build_object(
        'granted', coalesce(sum(a.debits_posted - a.credits_posted) filter (where a.code = 'system:grants'), 0),
        'purchased', coalesce(sum(a.debits_posted - a.credits_posted) filter (where a.code = 'system:purchases'), 0),
        'spent', coalesce(sum(a.credits_posted - a.debits_posted) filter (where a.code = 'system:usage'), 0),
        'held', coalesce((select sum(h.debits_pending) from public.credit_accounts h where h.debits_pending > 0), 0))
      from public.credit_accounts a
      where a.user_id is null),
    -- Trades opened per day; volume (amount × price) per quote currency.
    'trades_per_day', coalesce((
      select jsonb_agg(jsonb_build_object('day', d.day, 'trades', d.trades, 'volume', d.volume) order by d.day)
      from (
        select q.day, sum(q.trades) as trades, jsonb_object_agg(q.quote, q.volume) as volume
        from (
          select (t.entry_time at time zone 'utc')::date as day, split_part(t.trading_pair, '/', 2) as quote,
                 count(*) as trades, round(sum(t.amount * t.price), 8) as volume
          from public.trades t
          where t.entry_time >= v_from_ts
          group by 1, 2) q
        group by q.day) d), '[]'),
    'bots_running', coalesce((
      select jsonb_object_agg(b.exchange, b.n)
      from (select b.exchange, count(*) as n from public.bots b where b.status = 'running' group by b.exchange) b), '{}'),
    'signals', jsonb_build_object(
      'today', (select count(*) from public.signals s where s.created_at >= v_today_ts),
      'last_30_days', (select count(*) from public.signals s where s.created_at >= v_from_ts)),
    'copy_executions', (
      select jsonb_build_object(
        'today', count(*) filter (where e.created_at >= v_today_ts),
        'last_30_days', count(*),
        'executed_30_days', count(*) filter (where e.status = 'executed'),
        'skipped_30_days', count(*) filter (where e.status = 'skipped'))
      from public.signal_executions e
      where e.created_at >= v_from_ts),
    'backtest_minutes', (
      select jsonb_build_object(
        'today', round(coalesce(sum(r.compute_seconds) filter (where r.finished_at >= v_today_ts), 0) / 60, 2),
        'month_to_date', round(coalesce(sum(r.compute_seconds) filter (where r.finished_at >= v_month_ts), 0) / 60, 2),
        'last_30_days', round(coalesce(sum(r.compute_seconds) filter (where r.finished_at >= v_from_ts), 0) / 60, 2))
      from public.backtest_runs r
      where r.finished_at >= least(v_from_ts, v_month_ts))
  );
end;
$$;

revoke execute on function public.admin_platform_overview() from public, anon;
grant execute on function public.admin_platform_overview() to authenticated, service_role;
