-- The platform at a glance for operators: admin_platform_overview() returns users,
-- subscriptions per plan and MRR, revenue per day and per provider, credits, trades and
-- volume per day, running bots per exchange, signals and copy executions, and backtest
-- compute, in one JSON document. Days are UTC dates; windows are the last 30 days
-- including today. Every part reads an index, a small table or a total kept by triggers,
-- so the call stays fast with millions of trades (scripts/bench overview).

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

-- Trades and volume per UTC day and quote currency, kept current by statement triggers on
-- trades (a scan of a month of trades would take a large part of a second at a million
-- trades). Each connection adds to its own shard of a day's row, so workers writing trades
-- at the same time do not queue on one row; readers sum the shards.
create table private.trade_daily_totals (
  day date not null,
  quote text not null,
  shard smallint not null,
  trades bigint not null default 0,
  volume numeric not null default 0,
  primary key (day, quote, shard)
);

create index invoices_paid_at_idx on public.invoices (paid_at) include (provider, currency, amount) where status = 'paid';
create index signals_created_at_idx on public.signals (created_at);
create index signal_executions_created_at_idx on public.signal_executions (created_at) include (status);
create index backtest_runs_finished_at_idx on public.backtest_runs (finished_at) include (compute_seconds)
  where finished_at is not null;

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

-- Private: only the owner (the triggers and the overview, both definers) touches it.
revoke all on private.trade_daily_totals from public, anon, authenticated, service_role;

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

-- Add what a statement on trades changed to trade_daily_totals: inserted rows count, deleted
-- rows count negatively, updated rows move when their day, pair, amount or price changed.
-- Rows are applied in (day, quote) order, so two statements never wait on each other in a
-- cycle.
create or replace function private.trade_totals_apply() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_shard smallint := (pg_backend_pid() % 16)::smallint;
begin
  if tg_op = 'INSERT' then
    insert into private.trade_daily_totals as t (day, quote, shard, trades, volume)
    select (n.entry_time at time zone 'utc')::date, split_part(n.trading_pair, '/', 2), v_shard, count(*),
           sum(n.amount * n.price)
      from new_rows n group by 1, 2 order by 1, 2
    on conflict (day, quote, shard) do update
      set trades = t.trades + excluded.trades, volume = t.volume + excluded.volume;
  elsif tg_op = 'DELETE' then
    insert into private.trade_daily_totals as t (day, quote, shard, trades, volume)
    select (o.entry_time at time zone 'utc')::date, split_part(o.trading_pair, '/', 2), v_shard, -count(*),
           -sum(o.amount * o.price)
      from old_rows o group by 1, 2 order by 1, 2
    on conflict (day, quote, shard) do update
      set trades = t.trades + excluded.trades, volume = t.volume + excluded.volume;
  else
    insert into private.trade_daily_totals as t (day, quote, shard, trades, volume)
    select c.day, c.quote, v_shard, sum(c.trades), sum(c.volume)
      from (
        select (o.entry_time at time zone 'utc')::date as day, split_part(o.trading_pair, '/', 2) as quote,
               -1 as trades, -(o.amount * o.price) as volume
          from old_rows o join new_rows n on n.id = o.id
         where (o.entry_time, o.trading_pair, o.amount, o.price) is distinct from (n.entry_time, n.trading_pair, n.amount, n.price)
        union all
        select (n.entry_time at time zone 'utc')::date, split_part(n.trading_pair, '/', 2), 1, n.amount * n.price
          from old_rows o join new_rows n on n.id = o.id
         where (o.entry_time, o.trading_pair, o.amount, o.price) is distinct from (n.entry_time, n.trading_pair, n.amount, n.price)
      ) c
     group by c.day, c.quote order by c.day, c.quote
    on conflict (day, quote, shard) do update
      set trades = t.trades + excluded.trades, volume = t.volume + excluded.volume;
  end if;
  return null;
end;
$$;

revoke all on function private.trade_totals_apply() from public, anon, authenticated;

create or replace function private.trade_totals_truncate() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from private.trade_daily_totals;
  return null;
end;
$$;

revoke all on function private.trade_totals_truncate() from public, anon, authenticated;

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

revoke execute on function public.admin_platform_overview() from public, anon;
grant execute on function public.admin_platform_overview() to authenticated, service_role;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger trades_daily_totals_insert after insert on public.trades
  referencing new table as new_rows
  for each statement execute function private.trade_totals_apply();
create trigger trades_daily_totals_update after update on public.trades
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.trade_totals_apply();
create trigger trades_daily_totals_delete after delete on public.trades
  referencing old table as old_rows
  for each statement execute function private.trade_totals_apply();
create trigger trades_daily_totals_truncate after truncate on public.trades
  for each statement execute function private.trade_totals_truncate();

-- Trades written before this migration.
insert into private.trade_daily_totals (day, quote, shard, trades, volume)
select (t.entry_time at time zone 'utc')::date, split_part(t.trading_pair, '/', 2), 0, count(*), sum(t.amount * t.price)
  from public.trades t group by 1, 2;
