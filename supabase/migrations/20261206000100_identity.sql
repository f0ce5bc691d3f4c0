-- Identity: profiles (1:1 with auth.users), plans, the role shown on a profile, and the
-- custom access token hook that gives admins their database role. Plans carry the Free
-- plan every new user starts on. Read by every worker package; written by apps and
-- worker.billing.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  email text,
  full_name text check (char_length(full_name) <= 200),
  avatar_url text,
  role text not null default 'user' constraint profiles_role_known check (role in ('user', 'provider', 'admin')),
  preferences jsonb not null default '{}',
  telegram_chat_id text,
  discord_webhook_url text,
  is_active boolean not null default true,
  last_login_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table public.plans (
  id uuid primary key default gen_random_uuid(),
  name text not null unique,
  description text,
  price_monthly numeric(12, 2) not null constraint plans_price_monthly_not_negative check (price_monthly >= 0),
  price_yearly numeric(12, 2) constraint plans_price_yearly_not_negative check (price_yearly >= 0),
  currency text not null default 'USD',
  features jsonb not null default '{}',
  max_bots integer not null constraint plans_max_bots_not_negative check (max_bots >= 0),
  max_strategies integer not null constraint plans_max_strategies_not_negative check (max_strategies >= 0),
  ai_requests_per_month integer check (ai_requests_per_month >= 0),
  backtest_minutes_per_month integer not null default 0 check (backtest_minutes_per_month >= 0),
  priority_support boolean not null default false,
  custom_strategies boolean not null default false,
  api_access boolean not null default false,
  live_trading boolean not null default false,
  is_active boolean not null default true,
  sort_order integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- The Free plan must exist before anyone signs up.
insert into public.plans (name, description, price_monthly, price_yearly, max_bots, max_strategies,
                          ai_requests_per_month, backtest_minutes_per_month, features, sort_order)
values ('Free', 'Paper trading to get started', 0, 0, 2, 3, 10, 30,
        '{"credits_per_trade": 1, "credits_per_backtest_second": 0.1, "credits_per_ai_request": 5, "monthly_credits": 100}', 0)
on conflict (name) do nothing;

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

-- Grants: apps read; users edit only their own presentational profile columns.
revoke all on public.profiles, public.plans from anon, authenticated;
grant all on public.profiles, public.plans to service_role;
grant select on public.plans to anon, authenticated;
grant select on public.profiles to authenticated;
grant update (full_name, avatar_url, preferences, telegram_chat_id, discord_webhook_url) on public.profiles to authenticated;
alter table public.profiles enable row level security;
alter table public.plans enable row level security;
create policy "Users can read their own profile" on public.profiles
  for select to authenticated using (id = (select auth.uid()));
create policy "Admins can read every profile" on public.profiles
  for select to tradefleet_admin using (true);
create policy "Users can update their own profile" on public.profiles
  for update to authenticated using (id = (select auth.uid())) with check (id = (select auth.uid()));
create policy "Anyone can read active plans" on public.plans
  for select to anon, authenticated using (is_active);
create policy "Admins can read every plan" on public.plans
  for select to tradefleet_admin using (true);

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

-- Supabase Auth's custom access token hook: admins (app_metadata.role = 'admin') get the
-- tradefleet_admin database role in their JWT, which PostgREST then switches to.
-- Enabled in supabase/config.toml ([auth.hook.custom_access_token]).
create or replace function public.custom_access_token_hook(event jsonb) returns jsonb
language sql stable
set search_path = ''
as $$
  select case
    when event -> 'claims' -> 'app_metadata' ->> 'role' = 'admin'
      then jsonb_set(event, '{claims,role}', '"tradefleet_admin"')
    else event
  end
$$;

revoke all on function public.custom_access_token_hook(jsonb) from public, anon, authenticated;
grant execute on function public.custom_access_token_hook(jsonb) to supabase_auth_admin, service_role;

-- The role shown on the profile follows app_metadata (which only the service can write).
create or replace function private.sync_user_role() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.profiles
     set role = case when new.raw_app_meta_data ->> 'role' in ('user', 'provider', 'admin')
                     then new.raw_app_meta_data ->> 'role' else 'user' end,
         email = new.email
   where id = new.id;
  return new;
end;
$$;

revoke all on function private.sync_user_role() from public, anon, authenticated;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger profiles_updated_at before update on public.profiles
  for each row execute function private.set_updated_at();
create trigger plans_updated_at before update on public.plans
  for each row execute function private.set_updated_at();
create trigger on_auth_user_updated after update of raw_app_meta_data, email on auth.users
  for each row execute function private.sync_user_role();
