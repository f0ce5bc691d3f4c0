-- The platform overview's revenue counts what a partly refunded invoice kept.
--
-- Partial refunds (20261212400000_billing_partial_refunds.sql) leave an invoice
-- 'partially_refunded' with amount_refunded; the overview counted only 'paid' invoices, so
-- a partly refunded sale vanished from revenue. It now counts amount - amount_refunded for
-- both states (a fully refunded invoice still counts nothing). The rest of the function is
-- unchanged.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================
drop index public.invoices_paid_at_idx;
create index invoices_paid_at_idx on public.invoices (paid_at) include (provider, currency, amount, amount_refunded)
  where status in ('paid', 'partially_refunded');

-- ======================================================================================
-- Functions
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
    -- Paid invoices per day, provider and currency; a partly refunded one counts what was
    -- kept (a fully refunded one nothing).
    'revenue_per_day', coalesce((
      select jsonb_agg(jsonb_build_object('day', r.day, 'provider', r.provider, 'currency', r.currency,
                                          'invoices', r.n, 'amount', r.amount) order by r.day, r.provider, r.currency)
      from (
        select (i.paid_at at time zone 'utc')::date as day, i.provider, i.currency, count(*) as n,
               sum(i.amount - i.amount_refunded) as amount
        from public.invoices i
        where i.status in ('paid', 'partially_refunded') and i.paid_at >= v_from_ts
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
          select t.day, t.quote, sum(t.trades) as trades, round(sum(t.volume), 8) as volume
          from private.trade_daily_totals t
          where t.day >= v_from
          group by 1, 2
          having sum(t.trades) <> 0) q
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
