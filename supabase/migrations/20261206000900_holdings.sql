-- Holdings (brokerage): linked connections, their accounts and positions, holdings
-- aggregated per user and symbol, sync runs (which double as manual refresh requests),
-- symbol prices and the portfolio views. Owned by worker.holdings.
--
-- Stored SnapTrade webhooks and sync requests become jobs, positions are applied per
-- account behind a provider as-of guard, holdings are aggregated set-based, watched
-- symbols get prices, and a portfolio view values it all for the user.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.brokerage_connections (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  provider text not null constraint brokerage_connections_provider_known check (provider in ('snaptrade', 'alpaca')),
  provider_user_id text,
  provider_connection_id text,
  -- AES-256-GCM envelope of the provider's per-user secret; readable by the service only.
  sealed_user_secret text,
  brokerage_name text,
  status text not null default 'pending' constraint brokerage_connections_status_known
    check (status in ('pending', 'active', 'broken', 'deleted')),
  status_reason text,
  last_synced_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint brokerage_connections_provider_connection_unique unique (provider, provider_connection_id)
);

create index brokerage_connections_user_id_idx on public.brokerage_connections (user_id);

create table public.brokerage_accounts (
  id uuid primary key default gen_random_uuid(),
  connection_id uuid not null references public.brokerage_connections (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  provider_account_id text not null,
  name text,
  number_masked text,
  institution_name text,
  currency text not null default 'USD',
  total_value numeric(24, 8),
  cash numeric(24, 8),
  provider_as_of timestamptz,
  last_synced_at timestamptz,
  sync_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint brokerage_accounts_provider_account_unique unique (connection_id, provider_account_id)
);

create index brokerage_accounts_user_id_idx on public.brokerage_accounts (user_id);

create table public.brokerage_positions (
  id uuid primary key default gen_random_uuid(),
  account_id uuid not null references public.brokerage_accounts (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  symbol text not null,
  description text,
  instrument_type text,
  units numeric(28, 12) not null,
  price numeric(28, 12),
  average_cost numeric(28, 12),
  currency text not null default 'USD',
  provider_as_of timestamptz not null default now(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint brokerage_positions_one_per_symbol unique (account_id, symbol)
);

create index brokerage_positions_user_symbol_idx on public.brokerage_positions (user_id, symbol);

create table public.aggregated_holdings (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  symbol text not null,
  currency text not null default 'USD',
  total_units numeric(28, 12) not null,
  market_value numeric(24, 8),
  average_cost numeric(28, 12),
  unrealized_pnl numeric(24, 8),
  account_ids uuid[] not null default '{}',
  account_count integer not null default 0,
  last_price numeric(28, 12),
  updated_at timestamptz not null default now(),
  constraint aggregated_holdings_one_per_symbol unique (user_id, symbol)
);

create table public.sync_runs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  connection_id uuid references public.brokerage_connections (id) on delete cascade,
  account_id uuid references public.brokerage_accounts (id) on delete cascade,
  trigger text not null default 'manual' constraint sync_runs_trigger_known
    check (trigger in ('manual', 'webhook', 'nightly', 'connection_added')),
  scope text not null default 'full' constraint sync_runs_scope_known check (scope in ('full', 'incremental', 'accounts')),
  status text not null default 'requested' constraint sync_runs_status_known
    check (status in ('requested', 'running', 'completed', 'partial', 'failed')),
  accounts_synced integer not null default 0,
  positions_upserted integer not null default 0,
  positions_removed integer not null default 0,
  duration_ms integer,
  errors jsonb not null default '[]',
  started_at timestamptz,
  finished_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index sync_runs_user_id_idx on public.sync_runs (user_id, created_at desc);
create index sync_runs_connection_id_idx on public.sync_runs (connection_id);
create index sync_runs_account_id_idx on public.sync_runs (account_id);
create index sync_runs_requested_idx on public.sync_runs (created_at) where status = 'requested';

-- Prices of watched symbols (market data: readable by every signed-in user).
create table public.symbol_prices (
  symbol text primary key,
  price numeric(28, 12) not null constraint symbol_prices_price_positive check (price > 0),
  previous_close numeric(28, 12) constraint symbol_prices_previous_close_positive check (previous_close > 0),
  currency text not null default 'USD',
  source text not null,
  as_of timestamptz not null,
  updated_at timestamptz not null default now()
);

-- The webhook's account lookup walks (provider, provider_user_id): index it.
create index brokerage_connections_provider_user_idx
  on public.brokerage_connections (provider, provider_user_id);

-- Users whose positions changed since their holdings were last aggregated, and the
-- holdings.aggregate job that will aggregate them.
create table private.holdings_pending_aggregates (
  user_id uuid primary key references public.profiles (id) on delete cascade,
  job_id bigint,
  requested_at timestamptz not null default now()
);

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

revoke all on public.brokerage_connections, public.brokerage_accounts, public.brokerage_positions,
  public.aggregated_holdings, public.sync_runs from anon, authenticated;
grant all on public.brokerage_connections, public.brokerage_accounts, public.brokerage_positions,
  public.aggregated_holdings, public.sync_runs to service_role;
grant select (id, user_id, provider, provider_connection_id, brokerage_name, status, status_reason, last_synced_at,
              created_at, updated_at)
  on public.brokerage_connections to authenticated;
grant delete on public.brokerage_connections to authenticated;
grant select on public.brokerage_accounts, public.brokerage_positions, public.aggregated_holdings, public.sync_runs
  to authenticated;
grant insert (user_id, connection_id) on public.sync_runs to authenticated;
alter table public.brokerage_connections enable row level security;
alter table public.brokerage_accounts enable row level security;
alter table public.brokerage_positions enable row level security;
alter table public.aggregated_holdings enable row level security;
alter table public.sync_runs enable row level security;
create policy "Users can read their own brokerage connections" on public.brokerage_connections
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Users can unlink their own brokerage connections" on public.brokerage_connections
  for delete to authenticated using (user_id = (select auth.uid()));
create policy "Users can read their own brokerage accounts" on public.brokerage_accounts
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Users can read their own brokerage positions" on public.brokerage_positions
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Users can read their own aggregated holdings" on public.aggregated_holdings
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Users can read their own sync runs" on public.sync_runs
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Users can request a refresh of their own holdings" on public.sync_runs
  for insert to authenticated with check (
    user_id = (select auth.uid())
    and (connection_id is null
         or exists (select 1 from public.brokerage_connections c where c.id = connection_id and c.user_id = (select auth.uid())))
  );

create policy "Admins can read every sync run" on public.sync_runs
  for select to tradefleet_admin using (true);
revoke all on public.symbol_prices from anon, authenticated;
grant all on public.symbol_prices to service_role;
grant select on public.symbol_prices to authenticated;
alter table public.symbol_prices enable row level security;
create policy "Signed-in users can read prices" on public.symbol_prices
  for select to authenticated using (true);
revoke all on private.holdings_pending_aggregates from public, anon, authenticated;
grant select, insert, update, delete on private.holdings_pending_aggregates to service_role;

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

-- Manual refreshes are rate-limited per user: one request a minute.
create or replace function private.limit_manual_sync_requests() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.trigger = 'manual' then
    perform pg_advisory_xact_lock(hashtextextended('sync_runs:' || new.user_id::text, 0));
    if exists (select 1 from public.sync_runs
                where user_id = new.user_id and trigger = 'manual' and created_at > now() - interval '60 seconds') then
      raise exception 'a manual refresh was requested less than a minute ago; try again shortly'
        using errcode = 'check_violation', constraint = 'sync_runs_manual_rate_limit';
    end if;
  end if;
  return new;
end;
$$;

revoke all on function private.limit_manual_sync_requests() from public, anon, authenticated;

-- Webhook inbox -> jobs. The Edge Function stores the event once per webhook id; this
-- trigger turns it into the job kind that handles it, exactly once (idempotency key).
create or replace function private.holdings_enqueue_snaptrade_event() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_kind text;
begin
  v_kind := case new.event_type
    when 'CONNECTION_ADDED' then 'holdings.connection_added'
    when 'CONNECTION_UPDATED' then 'holdings.connection_added'
    when 'CONNECTION_FIXED' then 'holdings.connection_added'
    when 'ACCOUNT_HOLDINGS_UPDATED' then 'holdings.sync_account'
    when 'CONNECTION_BROKEN' then 'holdings.connection_status'
    when 'CONNECTION_DELETED' then 'holdings.connection_status'
    else null end;
  if v_kind is null then
    update public.webhook_events set status = 'ignored', processed_at = now() where id = new.id;
    return null;
  end if;
  insert into public.jobs (queue, kind, payload, idempotency_key)
  values ('default', v_kind,
          jsonb_build_object(
            'webhook_event_id', new.id,
            'event_type', new.event_type,
            'provider_user_id', new.payload ->> 'userId',
            'provider_account_id', new.payload ->> 'accountId',
            'provider_connection_id', coalesce(new.payload ->> 'connectionId', new.payload ->> 'brokerageAuthorizationId'),
            'occurred_at', new.occurred_at),
          'snaptrade-webhook:' || new.event_id)
  on conflict (idempotency_key) do nothing;
  return null;
end;
$$;

revoke all on function private.holdings_enqueue_snaptrade_event() from public, anon, authenticated;

-- A sync request (manual through PostgREST, or nightly from the scheduler) -> a full sync job.
create or replace function private.holdings_enqueue_sync_run() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into public.jobs (queue, kind, payload, idempotency_key)
  values ('default', 'holdings.full_sync', jsonb_build_object('sync_run_id', new.id), 'holdings.full_sync:' || new.id)
  on conflict (idempotency_key) do nothing;
  return null;
end;
$$;

revoke all on function private.holdings_enqueue_sync_run() from public, anon, authenticated;

-- Positions of one account, as the provider reported them at p_as_of. Older data never
-- overwrites newer: a snapshot older than what the account already holds changes nothing.
-- Positions the provider no longer reports are removed. Lots of one symbol are merged.
create or replace function private.holdings_apply_positions(
  p_account_id uuid, p_as_of timestamptz, p_positions jsonb,
  out applied boolean, out upserted integer, out removed integer)
language plpgsql
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_as_of timestamptz;
begin
  select a.user_id, a.provider_as_of into v_user_id, v_as_of
    from public.brokerage_accounts a where a.id = p_account_id for update;
  if not found then
    raise exception 'unknown brokerage account %', p_account_id using errcode = 'no_data_found';
  end if;
  applied := false; upserted := 0; removed := 0;
  if v_as_of is not null and v_as_of > p_as_of then
    return;
  end if;

  with incoming as (
    select p.symbol,
           max(p.description) as description,
           max(p.instrument_type) as instrument_type,
           sum(p.units) as units,
           max(p.price) as price,
           sum(p.units * p.average_cost) filter (where p.average_cost is not null)
             / nullif(sum(p.units) filter (where p.average_cost is not null), 0) as average_cost,
           coalesce(max(p.currency), 'USD') as currency
      from jsonb_to_recordset(p_positions)
           as p(symbol text, description text, instrument_type text, units numeric, price numeric,
                average_cost numeric, currency text)
     where p.symbol is not null and p.units is not null and p.units <> 0
     group by p.symbol
  ), written as (
    insert into public.brokerage_positions as bp
      (account_id, user_id, symbol, description, instrument_type, units, price, average_cost, currency, provider_as_of)
    select p_account_id, v_user_id, i.symbol, i.description, i.instrument_type, i.units, i.price, i.average_cost,
           i.currency, p_as_of
      from incoming i
    on conflict (account_id, symbol) do update
       set description = excluded.description, instrument_type = excluded.instrument_type, units = excluded.units,
           price = excluded.price, average_cost = excluded.average_cost, currency = excluded.currency,
           provider_as_of = excluded.provider_as_of
     where bp.provider_as_of <= excluded.provider_as_of
    returning 1
  )
  select count(*) into upserted from written;

  delete from public.brokerage_positions bp
   where bp.account_id = p_account_id
     and bp.symbol not in (select p.symbol from jsonb_to_recordset(p_positions) as p(symbol text, units numeric)
                            where p.symbol is not null and p.units is not null and p.units <> 0);
  get diagnostics removed = row_count;

  update public.brokerage_accounts
     set provider_as_of = p_as_of, last_synced_at = now(), sync_error = null
   where id = p_account_id;
  applied := true;
end;
$$;

revoke all on function private.holdings_apply_positions(uuid, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function private.holdings_apply_positions(uuid, timestamptz, jsonb) to service_role;

-- Symbols whose prices we keep fresh: held in a linked brokerage or traded by a running bot.
create or replace view private.watched_symbols
with (security_invoker = true) as
select bp.symbol, 'brokerage'::text as source, count(distinct bp.user_id) as holders
  from public.brokerage_positions bp
 group by bp.symbol
union all
select b.trading_pair, 'bot', count(distinct b.user_id)
  from public.bots b
 where b.status = 'running'
 group by b.trading_pair;

revoke all on private.watched_symbols from public, anon, authenticated;
grant select on private.watched_symbols to service_role;

-- Aggregation: one row per user and symbol across every live account, set-based.
create or replace function private.holdings_refresh_aggregates(p_user_ids uuid[]) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_changed integer;
  v_removed integer;
begin
  perform pg_advisory_xact_lock(hashtextextended('holdings_aggregate:' || u::text, 0))
     from (select distinct unnest(p_user_ids) as u order by 1) users;

  -- New statement, new snapshot (read committed): everything committed before the lock.
  with per_symbol as (
    select bp.user_id, bp.symbol,
           min(bp.currency) as currency,
           sum(bp.units) as total_units,
           coalesce(max(sp.price), max(bp.price)) as last_price,
           sum(bp.units * bp.average_cost) filter (where bp.average_cost is not null)
             / nullif(sum(bp.units) filter (where bp.average_cost is not null), 0) as average_cost,
           array_agg(distinct bp.account_id order by bp.account_id) as account_ids
      from public.brokerage_positions bp
      join public.brokerage_accounts a on a.id = bp.account_id
      join public.brokerage_connections c on c.id = a.connection_id
      left join public.symbol_prices sp on sp.symbol = bp.symbol
     where bp.user_id = any (p_user_ids) and c.status <> 'deleted'
     group by bp.user_id, bp.symbol
  ), valued as (
    select s.*, s.total_units * s.last_price as market_value,
           s.total_units * (s.last_price - s.average_cost) as unrealized_pnl
      from per_symbol s
     where s.total_units <> 0
  ), written as (
    insert into public.aggregated_holdings as h
      (user_id, symbol, currency, total_units, market_value, average_cost, unrealized_pnl, account_ids,
       account_count, last_price, updated_at)
    select v.user_id, v.symbol, v.currency, v.total_units, v.market_value, v.average_cost, v.unrealized_pnl,
           v.account_ids, cardinality(v.account_ids), v.last_price, now()
      from valued v
    on conflict (user_id, symbol) do update
       set currency = excluded.currency, total_units = excluded.total_units, market_value = excluded.market_value,
           average_cost = excluded.average_cost, unrealized_pnl = excluded.unrealized_pnl,
           account_ids = excluded.account_ids, account_count = excluded.account_count,
           last_price = excluded.last_price, updated_at = now()
     where (h.currency, h.total_units, h.market_value, h.average_cost, h.unrealized_pnl, h.account_ids, h.last_price)
           is distinct from
           (excluded.currency, excluded.total_units, excluded.market_value, excluded.average_cost,
            excluded.unrealized_pnl, excluded.account_ids, excluded.last_price)
    returning 1
  )
  select count(*) into v_changed from written;

  delete from public.aggregated_holdings h
   where h.user_id = any (p_user_ids)
     and not exists (
       select 1 from public.brokerage_positions bp
         join public.brokerage_accounts a on a.id = bp.account_id
         join public.brokerage_connections c on c.id = a.connection_id
        where bp.user_id = h.user_id and bp.symbol = h.symbol and c.status <> 'deleted');
  get diagnostics v_removed = row_count;
  return v_changed + v_removed;
end;
$$;

revoke all on function private.holdings_refresh_aggregates(uuid[]) from public, anon, authenticated;
grant execute on function private.holdings_refresh_aggregates(uuid[]) to service_role;

-- New prices revalue every holding of those symbols (one statement; Realtime then streams
-- the changed aggregated_holdings rows to their owners).
create or replace function private.holdings_apply_prices(p_prices jsonb) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_changed integer;
begin
  insert into public.symbol_prices as sp (symbol, price, previous_close, currency, source, as_of, updated_at)
  select p.symbol, p.price, p.previous_close, coalesce(p.currency, 'USD'), p.source, p.as_of, now()
    from jsonb_to_recordset(p_prices)
         as p(symbol text, price numeric, previous_close numeric, currency text, source text, as_of timestamptz)
   where p.symbol is not null and p.price > 0
  on conflict (symbol) do update
     set price = excluded.price, previous_close = coalesce(excluded.previous_close, sp.previous_close),
         currency = excluded.currency, source = excluded.source, as_of = excluded.as_of, updated_at = now()
   where sp.as_of <= excluded.as_of;

  update public.aggregated_holdings h
     set last_price = sp.price,
         market_value = h.total_units * sp.price,
         unrealized_pnl = h.total_units * (sp.price - h.average_cost),
         updated_at = now()
    from public.symbol_prices sp
   where sp.symbol = h.symbol
     and sp.symbol in (select p.symbol from jsonb_to_recordset(p_prices) as p(symbol text))
     and h.last_price is distinct from sp.price;
  get diagnostics v_changed = row_count;
  return v_changed;
end;
$$;

revoke all on function private.holdings_apply_prices(jsonb) from public, anon, authenticated;
grant execute on function private.holdings_apply_prices(jsonb) to service_role;

-- Latest candle close of every market a running bot trades: shared market data, no API call.
create or replace function private.holdings_prices_from_candles() returns integer
language sql
set search_path = ''
as $$
  select private.holdings_apply_prices(coalesce(jsonb_agg(jsonb_build_object(
           'symbol', c.symbol, 'price', c.close, 'currency', split_part(c.symbol, '/', 2),
           'source', 'candles:' || c.exchange, 'as_of', c.open_time)), '[]'))
    from (select distinct on (c.symbol) c.symbol, c.close, c.exchange, c.open_time
            from public.candles c
           where c.symbol in (select b.trading_pair from public.bots b where b.status = 'running')
           order by c.symbol, c.open_time desc) c
$$;

revoke all on function private.holdings_prices_from_candles() from public, anon, authenticated;
grant execute on function private.holdings_prices_from_candles() to service_role;

-- What the user sees: their portfolio's value and today's change (RLS of the tables applies).
create or replace view public.portfolio_holdings
with (security_invoker = true) as
select h.user_id, h.symbol, h.currency, h.total_units, h.average_cost, h.account_count, h.account_ids,
       coalesce(sp.price, h.last_price) as price,
       sp.previous_close,
       h.total_units * coalesce(sp.price, h.last_price) as market_value,
       h.total_units * (coalesce(sp.price, h.last_price) - h.average_cost) as unrealized_pnl,
       h.total_units * (sp.price - sp.previous_close) as day_change,
       greatest(h.updated_at, sp.updated_at) as updated_at
  from public.aggregated_holdings h
  left join public.symbol_prices sp on sp.symbol = h.symbol;

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

revoke all on public.portfolio_holdings, public.portfolio_value from anon, authenticated;
grant select on public.portfolio_holdings, public.portfolio_value to authenticated, service_role;

-- The connection row for a SnapTrade connection id, whichever event names it first
-- (CONNECTION_ADDED, or an account listing that already shows it). The user's SnapTrade
-- login (user id and sealed secret) is copied from a row brokerage-connect made.
-- A deleted connection is never brought back by a late or replayed event.
create or replace function private.holdings_ensure_connection(
  p_provider text, p_provider_user_id text, p_provider_connection_id text, p_brokerage_name text default null)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  v_id uuid;
  v_status text;
  v_login record;
begin
  select c.id, c.status into v_id, v_status
    from public.brokerage_connections c
   where c.provider = p_provider and c.provider_connection_id = p_provider_connection_id
   for update;
  if found then
    if v_status = 'deleted' then
      return null;
    end if;
    update public.brokerage_connections
       set status = case when status = 'pending' then 'active' else status end,
           brokerage_name = coalesce(p_brokerage_name, brokerage_name)
     where id = v_id;
    return v_id;
  end if;

  update public.brokerage_connections c
     set provider_connection_id = p_provider_connection_id, status = 'active',
         brokerage_name = coalesce(p_brokerage_name, c.brokerage_name)
   where c.id = (select p.id from public.brokerage_connections p
                  where p.provider = p_provider and p.provider_user_id = p_provider_user_id
                    and p.provider_connection_id is null
                  order by p.created_at limit 1 for update skip locked)
  returning c.id into v_id;
  if v_id is not null then
    return v_id;
  end if;

  select c.user_id, c.sealed_user_secret into v_login
    from public.brokerage_connections c
   where c.provider = p_provider and c.provider_user_id = p_provider_user_id and c.sealed_user_secret is not null
   order by c.created_at desc limit 1;
  if not found then
    raise exception '% user % is not linked to any Tradefleet user', p_provider, p_provider_user_id
      using errcode = 'no_data_found';
  end if;
  insert into public.brokerage_connections as c
    (user_id, provider, provider_user_id, provider_connection_id, sealed_user_secret, brokerage_name, status)
  values (v_login.user_id, p_provider, p_provider_user_id, p_provider_connection_id, v_login.sealed_user_secret,
          p_brokerage_name, 'active')
  on conflict (provider, provider_connection_id) do update set brokerage_name = coalesce(excluded.brokerage_name, c.brokerage_name)
  returning c.id into v_id;
  return v_id;
end;
$$;

revoke all on function private.holdings_ensure_connection(text, text, text, text) from public, anon, authenticated;
grant execute on function private.holdings_ensure_connection(text, text, text, text) to service_role;

-- Ask for the user's holdings to be aggregated after this transaction's writes. The first
-- request of a burst enqueues a holdings.aggregate job; later ones only touch the pending
-- row while that job is still queued or running. The row lock taken here is what makes it
-- safe: the job deletes the row before aggregating, so it either waits for this
-- transaction to commit (and then sees its writes) or has already deleted the row (and
-- this transaction inserts a new one with a new job). Returns the job's id.
create or replace function private.holdings_request_aggregate(p_user_id uuid) returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_job_id bigint;
begin
  insert into private.holdings_pending_aggregates as p (user_id) values (p_user_id)
  on conflict (user_id) do update set requested_at = now()
  returning p.job_id into v_job_id;
  if v_job_id is null
     or not exists (select 1 from public.jobs j where j.id = v_job_id and j.status in ('queued', 'running')) then
    -- A new burst, or its job died (out of attempts) or was pruned: a new job.
    v_job_id := public.enqueue_job('holdings.aggregate', jsonb_build_object('user_id', p_user_id));
    update private.holdings_pending_aggregates set job_id = v_job_id where user_id = p_user_id;
  end if;
  return v_job_id;
end;
$$;

revoke all on function private.holdings_request_aggregate(uuid) from public, anon, authenticated;
grant execute on function private.holdings_request_aggregate(uuid) to service_role;

-- The holdings.aggregate job: aggregate the users still pending (none when an earlier job
-- of the same burst already did). Returns how many aggregated rows changed.
create or replace function private.holdings_aggregate_pending(p_user_ids uuid[]) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_users uuid[];
begin
  -- Waits for syncs that are between their writes and their commit (they hold the row).
  with locked as (
    select p.user_id from private.holdings_pending_aggregates p
     where p.user_id = any (p_user_ids)
     order by p.user_id
       for update
  ), gone as (
    delete from private.holdings_pending_aggregates p using locked l where p.user_id = l.user_id
    returning p.user_id
  )
  select array_agg(g.user_id order by g.user_id) into v_users from gone g;
  if v_users is null then
    return 0;
  end if;
  return private.holdings_refresh_aggregates(v_users);
end;
$$;

revoke all on function private.holdings_aggregate_pending(uuid[]) from public, anon, authenticated;
grant execute on function private.holdings_aggregate_pending(uuid[]) to service_role;

-- Batched sync: an incremental (webhook) account sync writes everything in one call after
-- its provider fetch, and aggregation runs once per user per burst of syncs, not once per
-- account.
--
-- Rules kept: the as-of guard and removal of unreported positions (holdings_apply_positions),
-- set-based aggregation in SQL (holdings_refresh_aggregates), and no lost update: every
-- applied snapshot is followed by an aggregation that sees it (see holdings_request_aggregate).
--
-- Everything an incremental account sync writes after its provider fetch, in one call:
-- the positions (as-of guard, removal), the aggregation request, the sync run with its
-- stats, and the webhook event marked processed.
create or replace function private.holdings_finish_account_sync(
  p_account_id uuid, p_as_of timestamptz, p_positions jsonb,
  p_webhook_event_id uuid default null, p_duration_ms integer default null,
  out applied boolean, out upserted integer, out removed integer)
language plpgsql
set search_path = ''
as $$
declare
  v_user_id uuid;
begin
  select w.applied, w.upserted, w.removed, w.user_id into applied, upserted, removed, v_user_id
    from private.holdings_write_account_sync(p_account_id, p_as_of, p_positions, p_webhook_event_id,
                                             p_duration_ms) w;
  -- Last: the pending row stays locked only until this transaction commits.
  if applied then
    perform private.holdings_request_aggregate(v_user_id);
  end if;
end;
$$;

revoke all on function private.holdings_finish_account_sync(uuid, timestamptz, jsonb, uuid, integer)
  from public, anon, authenticated;
grant execute on function private.holdings_finish_account_sync(uuid, timestamptz, jsonb, uuid, integer)
  to service_role;

-- Incremental account syncs that finish at the same time in one worker are written in one
-- call: one round trip and one commit for many accounts instead of one each. Each account
-- is written in its own subtransaction, so one that fails is reported alone and the others
-- are kept; aggregation requests come last, in user order (no lock-order deadlocks).
create or replace function private.holdings_finish_account_syncs(p_items jsonb)
returns table (idx integer, applied boolean, upserted integer, removed integer, error text)
language plpgsql
set search_path = ''
as $$
declare
  v_item record;
  v_user_id uuid;
  v_users uuid[] := '{}';
begin
  -- Account rows are locked in id order, so concurrent batches never wait on each other in a cycle.
  for v_item in
    select (i.ord - 1)::integer as idx, i.value as item
      from jsonb_array_elements(p_items) with ordinality as i(value, ord)
     order by (i.value ->> 'account_id')::uuid, i.ord
  loop
    idx := v_item.idx; applied := null; upserted := null; removed := null; error := null;
    begin
      select w.applied, w.upserted, w.removed, w.user_id into applied, upserted, removed, v_user_id
        from private.holdings_write_account_sync(
               (v_item.item ->> 'account_id')::uuid, (v_item.item ->> 'as_of')::timestamptz,
               v_item.item -> 'positions', (v_item.item ->> 'webhook_event_id')::uuid,
               (v_item.item ->> 'duration_ms')::integer) w;
      if applied then
        v_users := v_users || v_user_id;
      end if;
    exception when others then
      error := sqlerrm;
    end;
    return next;
  end loop;
  for v_user_id in select distinct u from unnest(v_users) u order by u loop
    perform private.holdings_request_aggregate(v_user_id);
  end loop;
end;
$$;

-- One account's incremental sync (holdings_finish_account_sync without the aggregation request).
create or replace function private.holdings_write_account_sync(
  p_account_id uuid, p_as_of timestamptz, p_positions jsonb,
  p_webhook_event_id uuid default null, p_duration_ms integer default null,
  out applied boolean, out upserted integer, out removed integer, out user_id uuid)
language plpgsql
set search_path = ''
as $$
begin
  select r.applied, r.upserted, r.removed into applied, upserted, removed
    from private.holdings_apply_positions(p_account_id, p_as_of, p_positions) r;
  select a.user_id into user_id from public.brokerage_accounts a where a.id = p_account_id;

  insert into public.sync_runs (user_id, trigger, scope, status, accounts_synced, positions_upserted,
                                positions_removed, errors, duration_ms, started_at, finished_at)
  values (user_id, 'webhook', 'incremental', 'completed', 1, upserted, removed, '[]', p_duration_ms,
          now() - make_interval(secs => coalesce(p_duration_ms, 0) / 1000.0), now());

  if p_webhook_event_id is not null then
    update public.webhook_events
       set status = 'processed', processed_at = now(), attempts = attempts + 1, error = null
     where id = p_webhook_event_id;
  end if;
end;
$$;

revoke all on function private.holdings_write_account_sync(uuid, timestamptz, jsonb, uuid, integer)
  from public, anon, authenticated;
grant execute on function private.holdings_write_account_sync(uuid, timestamptz, jsonb, uuid, integer)
  to service_role;
revoke all on function private.holdings_finish_account_syncs(jsonb) from public, anon, authenticated;
grant execute on function private.holdings_finish_account_syncs(jsonb) to service_role;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger brokerage_connections_updated_at before update on public.brokerage_connections
  for each row execute function private.set_updated_at();
create trigger brokerage_accounts_updated_at before update on public.brokerage_accounts
  for each row execute function private.set_updated_at();
create trigger brokerage_positions_updated_at before update on public.brokerage_positions
  for each row execute function private.set_updated_at();
create trigger sync_runs_updated_at before update on public.sync_runs
  for each row execute function private.set_updated_at();
create trigger sync_runs_rate_limit before insert on public.sync_runs
  for each row execute function private.limit_manual_sync_requests();
create trigger webhook_events_enqueue_snaptrade after insert on public.webhook_events
  for each row when (new.provider = 'snaptrade') execute function private.holdings_enqueue_snaptrade_event();
create trigger sync_runs_enqueue_requested after insert on public.sync_runs
  for each row when (new.status = 'requested') execute function private.holdings_enqueue_sync_run();

-- ======================================================================================
-- Realtime
-- ======================================================================================

alter publication supabase_realtime add table public.aggregated_holdings, public.sync_runs;
alter publication supabase_realtime add table public.symbol_prices;
