-- Brokerage: linked connections, their accounts and positions, holdings aggregated per
-- user and symbol, and sync runs (which double as manual refresh requests).

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
create trigger brokerage_connections_updated_at before update on public.brokerage_connections
  for each row execute function private.set_updated_at();

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
create trigger brokerage_accounts_updated_at before update on public.brokerage_accounts
  for each row execute function private.set_updated_at();

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
create trigger brokerage_positions_updated_at before update on public.brokerage_positions
  for each row execute function private.set_updated_at();

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
create trigger sync_runs_updated_at before update on public.sync_runs
  for each row execute function private.set_updated_at();

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
create trigger sync_runs_rate_limit before insert on public.sync_runs
  for each row execute function private.limit_manual_sync_requests();

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
