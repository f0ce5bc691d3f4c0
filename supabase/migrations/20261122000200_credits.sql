-- Credit ledger tables: double-entry accounts and immutable transfers.
-- Balances are kept on the account, in the same transaction as each transfer.

create table public.credit_accounts (
  id uuid primary key default gen_random_uuid(),
  user_id uuid references public.profiles (id) on delete cascade,
  kind text not null default 'user' constraint credit_accounts_kind_known
    check (kind in ('user', 'provider_earnings', 'platform_revenue', 'grants', 'purchases', 'payouts', 'usage')),
  code text unique,
  currency text not null default 'CREDIT',
  debits_posted numeric(24, 8) not null default 0 check (debits_posted >= 0),
  credits_posted numeric(24, 8) not null default 0 check (credits_posted >= 0),
  debits_pending numeric(24, 8) not null default 0 check (debits_pending >= 0),
  credits_pending numeric(24, 8) not null default 0 check (credits_pending >= 0),
  balance numeric(24, 8) generated always as (credits_posted - debits_posted) stored,
  -- System accounts (grants issuer, purchases) are sources of credits and may go negative;
  -- user and provider accounts never can.
  allow_negative boolean not null default false,
  low_balance_threshold numeric(24, 8) not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint credit_accounts_debits_must_not_exceed_credits
    check (allow_negative or credits_posted - debits_posted - debits_pending >= 0),
  constraint credit_accounts_owner_matches_kind
    check ((kind in ('user', 'provider_earnings')) = (user_id is not null)),
  constraint credit_accounts_one_per_user_and_kind unique (user_id, kind)
);
create index credit_accounts_user_id_idx on public.credit_accounts (user_id);

create table public.credit_transfers (
  id uuid primary key,
  debit_account_id uuid not null references public.credit_accounts (id),
  credit_account_id uuid not null references public.credit_accounts (id),
  amount numeric(24, 8) not null constraint credit_transfers_amount_positive check (amount > 0),
  kind text not null constraint credit_transfers_kind_known
    check (kind in ('grant', 'purchase', 'usage', 'revenue_share', 'payout', 'refund', 'correction')),
  -- posted: final. pending: a hold. post_pending / void_pending resolve a hold (pending_id).
  phase text not null default 'posted' constraint credit_transfers_phase_known
    check (phase in ('posted', 'pending', 'post_pending', 'void_pending')),
  pending_id uuid references public.credit_transfers (id),
  timeout_at timestamptz,
  reference_type text,
  reference_id text,
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  constraint credit_transfers_distinct_accounts check (debit_account_id <> credit_account_id),
  constraint credit_transfers_resolution_names_hold
    check ((phase in ('post_pending', 'void_pending')) = (pending_id is not null)),
  constraint credit_transfers_hold_resolves_once unique (pending_id)
);
create index credit_transfers_debit_account_idx on public.credit_transfers (debit_account_id, created_at);
create index credit_transfers_credit_account_idx on public.credit_transfers (credit_account_id, created_at);
create index credit_transfers_pending_timeout_idx on public.credit_transfers (timeout_at)
  where phase = 'pending';
create index credit_transfers_reference_idx on public.credit_transfers (reference_type, reference_id);

create trigger credit_accounts_updated_at before update on public.credit_accounts
  for each row execute function private.set_updated_at();

-- Transfers are immutable: corrections are new transfers.
create or replace function private.forbid_transfer_changes() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'credit transfers are immutable; correct a mistake with a new transfer'
    using errcode = 'restrict_violation';
end;
$$;
create trigger credit_transfers_immutable before update or delete on public.credit_transfers
  for each row execute function private.forbid_transfer_changes();

insert into public.credit_accounts (kind, code, allow_negative) values
  ('grants', 'system:grants', true),
  ('purchases', 'system:purchases', true),
  ('platform_revenue', 'system:platform_revenue', false),
  ('usage', 'system:usage', false),
  ('payouts', 'system:payouts', false);

revoke all on public.credit_accounts, public.credit_transfers from anon, authenticated;
grant all on public.credit_accounts, public.credit_transfers to service_role;
grant select on public.credit_accounts, public.credit_transfers to authenticated;

alter table public.credit_accounts enable row level security;
alter table public.credit_transfers enable row level security;

create policy "Users can read their own credit accounts" on public.credit_accounts
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every credit account" on public.credit_accounts
  for select to tradefleet_admin using (true);

create policy "Users can read transfers of their own accounts" on public.credit_transfers
  for select to authenticated using (
    exists (select 1 from public.credit_accounts a
            where a.user_id = (select auth.uid())
              and a.id in (credit_transfers.debit_account_id, credit_transfers.credit_account_id))
  );
create policy "Admins can read every transfer" on public.credit_transfers
  for select to tradefleet_admin using (true);

-- Sign-up: a profile, a credit account and the Free plan appear with every new user.
create or replace function private.handle_new_user() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_free uuid;
begin
  insert into public.profiles (id, email, full_name, avatar_url, role)
  values (
    new.id,
    new.email,
    new.raw_user_meta_data ->> 'full_name',
    new.raw_user_meta_data ->> 'avatar_url',
    case when new.raw_app_meta_data ->> 'role' in ('user', 'provider', 'admin')
         then new.raw_app_meta_data ->> 'role' else 'user' end
  );
  insert into public.credit_accounts (user_id, kind) values (new.id, 'user');
  select id into v_free from public.plans where name = 'Free';
  if v_free is not null then
    insert into public.subscriptions (user_id, plan_id, status, started_at, expires_at, auto_renew)
    values (new.id, v_free, 'active', now(), 'infinity', false);
  end if;
  return new;
end;
$$;
revoke all on function private.handle_new_user() from public, anon, authenticated;

create trigger on_auth_user_created after insert on auth.users
  for each row execute function private.handle_new_user();

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
create trigger on_auth_user_updated after update of raw_app_meta_data, email on auth.users
  for each row execute function private.sync_user_role();

-- The Free plan must exist before anyone signs up.
insert into public.plans (name, description, price_monthly, price_yearly, max_bots, max_strategies,
                          ai_requests_per_month, backtest_minutes_per_month, features, sort_order)
values ('Free', 'Paper trading to get started', 0, 0, 2, 3, 10, 30,
        '{"credits_per_trade": 1, "credits_per_backtest_second": 0.1, "credits_per_ai_request": 5, "monthly_credits": 100}', 0)
on conflict (name) do nothing;
