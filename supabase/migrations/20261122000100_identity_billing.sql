-- Identity and billing: profiles, plans, subscriptions, invoices.

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
create trigger profiles_updated_at before update on public.profiles
  for each row execute function private.set_updated_at();

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
create trigger plans_updated_at before update on public.plans
  for each row execute function private.set_updated_at();

create table public.invoices (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  plan_id uuid references public.plans (id) on delete set null,
  provider text not null default 'manual' constraint invoices_provider_known check (provider in ('stripe', 'paystack', 'tripay', 'manual')),
  provider_invoice_id text,
  merchant_id text,
  reference_id text,
  amount numeric(12, 2) not null constraint invoices_amount_positive check (amount > 0),
  currency text not null default 'USD',
  credits numeric(20, 8) not null default 0 constraint invoices_credits_not_negative check (credits >= 0),
  status text not null default 'pending' constraint invoices_status_known check (status in ('pending', 'paid', 'failed', 'expired', 'cancelled', 'refunded')),
  payment_method text,
  payment_channel text,
  transaction_id text,
  description text,
  customer_name text,
  customer_email text,
  customer_phone text,
  expired_at timestamptz,
  paid_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint invoices_provider_invoice_unique unique (provider, provider_invoice_id)
);
create index invoices_user_id_idx on public.invoices (user_id, created_at desc);
create index invoices_plan_id_idx on public.invoices (plan_id);
create trigger invoices_updated_at before update on public.invoices
  for each row execute function private.set_updated_at();

create table public.subscriptions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  plan_id uuid not null references public.plans (id) on delete restrict,
  invoice_id uuid references public.invoices (id) on delete set null,
  status text not null constraint subscriptions_status_known check (status in ('active', 'cancelled', 'expired', 'trial')),
  started_at timestamptz not null default now(),
  expires_at timestamptz not null,
  cancelled_at timestamptz,
  auto_renew boolean not null default true,
  trial_ends_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint subscriptions_expire_after_start check (expires_at > started_at)
);
create index subscriptions_user_id_idx on public.subscriptions (user_id);
create index subscriptions_plan_id_idx on public.subscriptions (plan_id);
create index subscriptions_invoice_id_idx on public.subscriptions (invoice_id);
-- One current subscription per user.
create unique index subscriptions_one_current_per_user on public.subscriptions (user_id)
  where status in ('active', 'trial');
create trigger subscriptions_updated_at before update on public.subscriptions
  for each row execute function private.set_updated_at();

-- The plan a user is on now: their current subscription's plan, or the Free plan.
create or replace function private.current_plan(p_user_id uuid) returns public.plans
language sql stable security definer
set search_path = ''
as $$
  select p.*
  from public.plans p
  where p.id = coalesce(
    (select s.plan_id from public.subscriptions s
      where s.user_id = p_user_id and s.status in ('active', 'trial') and s.expires_at > now()
      limit 1),
    (select f.id from public.plans f where f.name = 'Free')
  )
$$;
revoke all on function private.current_plan(uuid) from public, anon, authenticated;
grant execute on function private.current_plan(uuid) to service_role;

-- Grants: apps read; users edit only their own presentational profile columns.
revoke all on public.profiles, public.plans, public.invoices, public.subscriptions from anon, authenticated;
grant all on public.profiles, public.plans, public.invoices, public.subscriptions to service_role;
grant select on public.plans to anon, authenticated;
grant select on public.profiles, public.invoices, public.subscriptions to authenticated;
grant update (full_name, avatar_url, preferences, telegram_chat_id, discord_webhook_url) on public.profiles to authenticated;
grant update (auto_renew) on public.subscriptions to authenticated;

alter table public.profiles enable row level security;
alter table public.plans enable row level security;
alter table public.invoices enable row level security;
alter table public.subscriptions enable row level security;

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

create policy "Users can read their own invoices" on public.invoices
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every invoice" on public.invoices
  for select to tradefleet_admin using (true);

create policy "Users can read their own subscriptions" on public.subscriptions
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every subscription" on public.subscriptions
  for select to tradefleet_admin using (true);
create policy "Users can change auto-renew of their own subscriptions" on public.subscriptions
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
