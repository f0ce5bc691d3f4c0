-- Credit ledger: double-entry accounts and immutable transfers, the only way credits
-- move, with the views and RPCs users read their balance and statement through.
-- Owned by worker.credits (ledger.py). Batches of transfers, which price usage from the
-- plans, come with the credit flows, after billing.
--
-- The model is TigerBeetle's: double-entry transfers with client-supplied ids (the
-- idempotency key), two-phase transfers (a pending hold, then one post or void), and user
-- accounts whose posted plus pending debits never exceed their credits. Balances are kept
-- on the account, in the same transaction as each transfer.
--
-- Single calls go through private.credit_apply, which validates a transfer and returns a
-- result code (TigerBeetle's CreateTransferResult, in snake_case); the public functions
-- raise any rejection as a specific error, so a rejected call changes nothing. The batch
-- function decides every element with the same rules and codes, in memory, and reports
-- each element's code instead of raising.
--
-- Concurrency: accounts are locked (`for no key update`, which leaves foreign-key checks
-- of new transfers unblocked) in one total order — user-owned
-- accounts first, then system accounts, each group by id — so concurrent callers
-- serialize per account and never deadlock. Account balances change in the same
-- transaction as the transfer row is inserted.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

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

-- Transfers name their accounts without foreign keys: a foreign-key check takes a
-- KEY SHARE lock on the account row, and on the few hot system accounts (system:usage
-- is credited by every usage charge) those locks from concurrent transactions turn into
-- multixacts and cost more than the transfer itself. Every ledger function verifies both
-- accounts exist (it locks them) before it writes, and the trigger credit_accounts_keep_history keeps an account
-- with transfers from being deleted, as the foreign keys did (same error, 23503).
create table public.credit_transfers (
  id uuid primary key,
  debit_account_id uuid not null,
  credit_account_id uuid not null,
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
insert into public.credit_accounts (kind, code, allow_negative) values
  ('grants', 'system:grants', true),
  ('purchases', 'system:purchases', true),
  ('platform_revenue', 'system:platform_revenue', false),
  ('usage', 'system:usage', false),
  ('payouts', 'system:payouts', false);

-- Open holds: the pending transfers not yet posted, voided or expired. Transfers are
-- immutable, so this small table is what makes "which holds are still open" and the
-- expiry scan cheap however long the ledger grows.
create table private.credit_open_holds (
  transfer_id uuid primary key references public.credit_transfers (id),
  timeout_at timestamptz
);

create index credit_open_holds_timeout_idx on private.credit_open_holds (timeout_at)
  where timeout_at is not null;

-- Ledger-wide settings (one row). The minimum payout is used by credit_request_payout.
create table private.credit_settings (
  id boolean primary key default true constraint credit_settings_single_row check (id),
  min_payout numeric(24, 8) not null default 50 constraint credit_settings_min_payout_positive check (min_payout > 0),
  default_hold_timeout interval not null default interval '15 minutes',
  updated_at timestamptz not null default now()
);

insert into private.credit_settings default values;

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

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
revoke all on private.credit_open_holds from public, anon, authenticated, service_role;
revoke all on private.credit_settings from public, anon, authenticated, service_role;

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

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

create or replace function private.credit_account_keep_history() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if exists (select 1 from public.credit_transfers t where t.debit_account_id = old.id)
     or exists (select 1 from public.credit_transfers t where t.credit_account_id = old.id) then
    raise exception 'credit account % has transfers and cannot be deleted', old.id
      using errcode = 'foreign_key_violation', constraint = 'credit_transfers_debit_account_id_fkey',
            detail = 'The ledger keeps every account with history; corrections are new transfers.';
  end if;
  return old;
end;
$$;

revoke all on function private.credit_account_keep_history() from public, anon, authenticated, service_role;

-- Compare an existing transfer with a request carrying the same id. Returns 'exists' when
-- they agree, else the first field that differs ('exists_with_different_amount', ...).
-- metadata and timeout are not compared: retries legitimately recompute them.
create or replace function private.credit_compare(
  e public.credit_transfers,
  p_action text,
  p_debit_account_id uuid,
  p_credit_account_id uuid,
  p_amount numeric,
  p_kind text,
  p_pending_id uuid,
  p_reference_type text,
  p_reference_id text
) returns text
language plpgsql stable
set search_path = ''
as $$
begin
  if e.phase <> (case p_action when 'transfer' then 'posted' when 'hold' then 'pending'
                               when 'post' then 'post_pending' when 'void' then 'void_pending' end) then
    return 'exists_with_different_phase';
  end if;
  if p_action in ('post', 'void') then
    if e.pending_id is distinct from p_pending_id then return 'exists_with_different_pending_id'; end if;
  else
    if e.debit_account_id is distinct from p_debit_account_id then return 'exists_with_different_debit_account_id'; end if;
    if e.credit_account_id is distinct from p_credit_account_id then return 'exists_with_different_credit_account_id'; end if;
    if e.kind is distinct from p_kind then return 'exists_with_different_kind'; end if;
  end if;
  if p_amount is not null and e.amount <> p_amount then return 'exists_with_different_amount'; end if;
  if p_reference_type is not null and e.reference_type is distinct from p_reference_type then
    return 'exists_with_different_reference';
  end if;
  if p_reference_id is not null and e.reference_id is distinct from p_reference_id then
    return 'exists_with_different_reference';
  end if;
  return 'exists';
end;
$$;

revoke all on function private.credit_compare(public.credit_transfers, text, uuid, uuid, numeric, text, uuid, text, text)
  from public, anon, authenticated, service_role;

-- The core. p_action: 'transfer' (posted at once), 'hold' (pending), 'post' or 'void' (of
-- the hold p_pending_id; a post may take less than the hold, never more). Returns 'ok',
-- 'exists' (same id, same fields: nothing done, the earlier transfer stands) or the reason
-- of the rejection.
--
-- Lock order: user-owned accounts (user, provider_earnings) first, then system accounts,
-- each group by id: one total order, so no deadlocks. The few system accounts are hot
-- (every usage charge credits system:usage), so they are locked last, by the update that
-- changes them, and held only until commit, as pgbench's tpcb holds its branch row.
--
-- With p_prelocked (the batch: it locked every account beforehand) every check happens
-- before the first write, so a rejection changes nothing. Without it, a rejection that
-- only the last, late-locked system account can reveal (a non-negative system account
-- debited past its balance) comes after writes: callers must raise on anything but
-- 'ok'/'exists', which rolls the call back — every caller does.
create or replace function private.credit_apply(
  p_id uuid,
  p_action text,
  p_debit_account_id uuid,
  p_credit_account_id uuid,
  p_amount numeric,
  p_kind text,
  p_pending_id uuid default null,
  p_timeout_at timestamptz default null,
  p_reference_type text default null,
  p_reference_id text default null,
  p_metadata jsonb default '{}',
  p_prelocked boolean default false
) returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_existing public.credit_transfers;
  v_hold public.credit_transfers;
  v_debit uuid;
  v_credit uuid;
  v_amount numeric;
  v_phase text;
  v_posted numeric;
  v_pending numeric;
  v_d_early boolean;
  v_c_early boolean;
  v_d_allow_negative boolean;
  v_available numeric;
  v_resolution_id uuid;
  v_resolution_phase text;
  v_done uuid;
begin
  -- The ledger keeps 8 decimals; round once, here, so checks and columns agree.
  p_amount := round(p_amount, 8);
  if p_id is null then return 'id_must_not_be_null'; end if;
  if p_action is null or p_action not in ('transfer', 'hold', 'post', 'void') then
    return 'action_unknown';
  end if;

  if p_action in ('transfer', 'hold') then
    if p_amount is null or p_amount <= 0 then return 'amount_must_be_positive'; end if;
    if p_kind is null or p_kind not in ('grant', 'purchase', 'usage', 'revenue_share', 'payout', 'refund', 'correction') then
      return 'kind_unknown';
    end if;
    if p_debit_account_id is null then return 'debit_account_id_must_not_be_null'; end if;
    if p_credit_account_id is null then return 'credit_account_id_must_not_be_null'; end if;
    if p_debit_account_id = p_credit_account_id then return 'accounts_must_be_different'; end if;
    if p_pending_id is not null then return 'pending_id_must_be_null'; end if;

    select * into v_existing from public.credit_transfers t where t.id = p_id;
    if found then
      return private.credit_compare(v_existing, p_action, p_debit_account_id, p_credit_account_id,
                                    p_amount, p_kind, null, p_reference_type, p_reference_id);
    end if;
    v_debit := p_debit_account_id;
    v_credit := p_credit_account_id;
    v_amount := p_amount;
    v_phase := case p_action when 'hold' then 'pending' else 'posted' end;
    v_posted := case p_action when 'hold' then 0 else p_amount end;
    v_pending := case p_action when 'hold' then p_amount else 0 end;
  else
    if p_pending_id is null then return 'pending_id_must_not_be_null'; end if;
    if p_pending_id = p_id then return 'pending_id_must_be_different'; end if;
    if p_amount is not null and p_amount <= 0 then return 'amount_must_be_positive'; end if;

    select * into v_existing from public.credit_transfers t where t.id = p_id;
    if found then
      return private.credit_compare(v_existing, p_action, null, null, p_amount, null, p_pending_id,
                                    p_reference_type, p_reference_id);
    end if;
    select * into v_hold from public.credit_transfers t where t.id = p_pending_id;
    if not found then return 'pending_transfer_not_found'; end if;
    if v_hold.phase <> 'pending' then return 'pending_transfer_not_pending'; end if;
    if p_debit_account_id is not null and p_debit_account_id <> v_hold.debit_account_id then
      return 'pending_transfer_has_different_debit_account_id';
    end if;
    if p_credit_account_id is not null and p_credit_account_id <> v_hold.credit_account_id then
      return 'pending_transfer_has_different_credit_account_id';
    end if;
    if p_action = 'post' then
      v_amount := coalesce(p_amount, v_hold.amount);
      if v_amount > v_hold.amount then return 'exceeds_pending_transfer_amount'; end if;
      v_posted := v_amount;
    else
      if p_amount is not null and p_amount <> v_hold.amount then
        return 'pending_transfer_has_different_amount';
      end if;
      v_amount := v_hold.amount;
      v_posted := 0;
    end if;
    v_debit := v_hold.debit_account_id;
    v_credit := v_hold.credit_account_id;
    v_phase := case p_action when 'post' then 'post_pending' else 'void_pending' end;
    v_pending := -v_hold.amount;
  end if;

  -- Which accounts to lock now (user-owned) and which last (system); no lock taken yet.
  select a.user_id is not null, a.allow_negative into v_d_early, v_d_allow_negative
    from public.credit_accounts a where a.id = v_debit;
  if not found then return 'debit_account_not_found'; end if;
  select a.user_id is not null into v_c_early from public.credit_accounts a where a.id = v_credit;
  if not found then return 'credit_account_not_found'; end if;
  if p_prelocked or not (v_d_early or v_c_early) then
    v_d_early := true;
    v_c_early := true;
  end if;

  if v_c_early and (not v_d_early or v_credit < v_debit) then
    perform 1 from public.credit_accounts a where a.id = v_credit for no key update;
  end if;
  if v_d_early then
    select a.credits_posted - a.debits_posted - a.debits_pending into v_available
      from public.credit_accounts a where a.id = v_debit for no key update;
  end if;
  if v_c_early and v_d_early and v_credit > v_debit then
    perform 1 from public.credit_accounts a where a.id = v_credit for no key update;
  end if;

  if p_action in ('post', 'void') then
    -- Under the locks: has the hold been resolved (possibly by this very id) meanwhile?
    select t.id, t.phase into v_resolution_id, v_resolution_phase
      from public.credit_transfers t where t.pending_id = p_pending_id;
    if found then
      if v_resolution_id = p_id then
        select * into v_existing from public.credit_transfers t where t.id = p_id;
        return private.credit_compare(v_existing, p_action, null, null, p_amount, null, p_pending_id,
                                      p_reference_type, p_reference_id);
      end if;
      return case v_resolution_phase when 'post_pending' then 'pending_transfer_already_posted'
                                     else 'pending_transfer_already_voided' end;
    end if;
    if p_action = 'post' and v_hold.timeout_at is not null and v_hold.timeout_at <= now() then
      return 'pending_transfer_expired';
    end if;
  elsif v_d_early and not v_d_allow_negative and v_available < v_amount then
    return 'exceeds_credits';
  end if;

  insert into public.credit_transfers (id, debit_account_id, credit_account_id, amount, kind, phase, pending_id,
                                       timeout_at, reference_type, reference_id, metadata)
  values (p_id, v_debit, v_credit, v_amount, coalesce(v_hold.kind, p_kind), v_phase, p_pending_id,
          case p_action when 'hold' then p_timeout_at end,
          coalesce(p_reference_type, v_hold.reference_type), coalesce(p_reference_id, v_hold.reference_id),
          coalesce(p_metadata, '{}'))
  on conflict do nothing
  returning id into v_done;
  if v_done is null then
    -- The same id (or a resolution of the same hold) committed while we waited for locks.
    select * into v_existing from public.credit_transfers t where t.id = p_id;
    if found then
      return private.credit_compare(v_existing, p_action, p_debit_account_id, p_credit_account_id,
                                    p_amount, p_kind, p_pending_id, p_reference_type, p_reference_id);
    end if;
    return 'pending_transfer_already_resolved';
  end if;

  if p_action = 'hold' then
    insert into private.credit_open_holds (transfer_id, timeout_at) values (p_id, p_timeout_at);
  elsif p_action in ('post', 'void') then
    delete from private.credit_open_holds h where h.transfer_id = p_pending_id;
  end if;

  if v_d_early then
    update public.credit_accounts a
       set debits_posted = a.debits_posted + v_posted, debits_pending = a.debits_pending + v_pending
     where a.id = v_debit;
  end if;
  if v_c_early then
    update public.credit_accounts a
       set credits_posted = a.credits_posted + v_posted, credits_pending = a.credits_pending + v_pending
     where a.id = v_credit;
  end if;
  if not v_d_early then
    v_done := null;
    update public.credit_accounts a
       set debits_posted = a.debits_posted + v_posted, debits_pending = a.debits_pending + v_pending
     where a.id = v_debit
       and (a.allow_negative or p_action not in ('transfer', 'hold')
            or a.credits_posted - a.debits_posted - a.debits_pending >= v_amount)
    returning a.id into v_done;
    if v_done is null then return 'exceeds_credits'; end if;
  end if;
  if not v_c_early then
    update public.credit_accounts a
       set credits_posted = a.credits_posted + v_posted, credits_pending = a.credits_pending + v_pending
     where a.id = v_credit;
  end if;

  return 'ok';
end;
$$;

revoke all on function private.credit_apply(uuid, text, uuid, uuid, numeric, text, uuid, timestamptz, text, text, jsonb, boolean)
  from public, anon, authenticated, service_role;

-- Turn a rejection code into the error a caller sees. Each code has its own message, a
-- specific SQLSTATE and, where one applies, the constraint it stands for; the code itself
-- is in DETAIL as 'result: <code>' for programs.
create or replace function private.credit_raise(p_code text, p_id uuid, p_debit_account_id uuid default null,
                                                p_amount numeric default null) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_errcode text := 'check_violation';
  v_constraint text := '';
  v_message text;
  v_available numeric;
begin
  case
    when p_code = 'exceeds_credits' then
      select a.credits_posted - a.debits_posted - a.debits_pending into v_available
        from public.credit_accounts a where a.id = p_debit_account_id;
      v_constraint := 'credit_accounts_debits_must_not_exceed_credits';
      v_message := format('insufficient credits: account %s has %s available, transfer %s needs %s',
                          p_debit_account_id, v_available, p_id, p_amount);
    when p_code = 'amount_must_be_positive' then
      v_constraint := 'credit_transfers_amount_positive';
      v_message := format('transfer %s: amount must be positive, got %s', p_id, p_amount);
    when p_code = 'kind_unknown' then
      v_constraint := 'credit_transfers_kind_known';
      v_message := format('transfer %s: unknown kind', p_id);
    when p_code = 'accounts_must_be_different' then
      v_constraint := 'credit_transfers_distinct_accounts';
      v_message := format('transfer %s: debit and credit account must differ', p_id);
    when p_code = 'debit_account_not_found' then
      v_errcode := 'foreign_key_violation'; v_constraint := 'credit_transfers_debit_account_id_fkey';
      v_message := format('transfer %s: debit account %s does not exist', p_id, p_debit_account_id);
    when p_code = 'credit_account_not_found' then
      v_errcode := 'foreign_key_violation'; v_constraint := 'credit_transfers_credit_account_id_fkey';
      v_message := format('transfer %s: credit account does not exist', p_id);
    when p_code = 'pending_transfer_not_found' then
      v_errcode := 'foreign_key_violation'; v_constraint := 'credit_transfers_pending_id_fkey';
      v_message := format('transfer %s: the hold it resolves does not exist', p_id);
    when p_code = 'pending_transfer_not_pending' then
      v_constraint := 'credit_transfers_resolution_names_hold';
      v_message := format('transfer %s: the transfer it resolves is not a hold', p_id);
    when p_code in ('pending_transfer_already_posted', 'pending_transfer_already_voided', 'pending_transfer_already_resolved') then
      v_errcode := 'unique_violation'; v_constraint := 'credit_transfers_hold_resolves_once';
      v_message := format('transfer %s: the hold was already %s', p_id,
                          case p_code when 'pending_transfer_already_posted' then 'posted'
                                      when 'pending_transfer_already_voided' then 'voided' else 'resolved' end);
    when p_code = 'exceeds_pending_transfer_amount' then
      v_constraint := 'credit_transfers_post_within_hold';
      v_message := format('transfer %s: cannot post %s, more than was held', p_id, p_amount);
    when p_code = 'pending_transfer_expired' then
      v_constraint := 'credit_transfers_hold_not_expired';
      v_message := format('transfer %s: the hold has expired and can no longer be posted', p_id);
    when p_code like 'exists_with_different_%' then
      v_errcode := 'unique_violation'; v_constraint := 'credit_transfers_pkey';
      v_message := format('transfer %s already exists with a different %s', p_id,
                          replace(substr(p_code, length('exists_with_different_') + 1), '_', ' '));
    else
      v_errcode := 'invalid_parameter_value';
      v_message := format('transfer %s rejected: %s', p_id, replace(p_code, '_', ' '));
  end case;
  raise exception using message = v_message, errcode = v_errcode, constraint = v_constraint,
                        detail = 'result: ' || p_code;
end;
$$;

revoke all on function private.credit_raise(text, uuid, uuid, numeric) from public, anon, authenticated, service_role;

create or replace function private.credit_require_service() returns void
language plpgsql stable
set search_path = ''
as $$
declare
  v_stack text;
begin
  if coalesce(nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', 'service_role')
     = 'service_role' then
    return;
  end if;
  -- An app request: allowed only through another (platform) function, see 20261122020400.
  get diagnostics v_stack = pg_context;
  if exists (
    select 1 from pg_catalog.regexp_split_to_table(v_stack, E'\n') as frame
     where frame !~ '(function (public\.|private\.)?(get_)?credit_[a-z_]+\(|function "(get_)?credit_[a-z_]+")'
  ) then
    return;
  end if;
  raise exception 'only the service role can move credits' using errcode = 'insufficient_privilege';
end;
$$;

revoke all on function private.credit_require_service() from public, anon, authenticated, service_role;

-- Single transfers ------------------------------------------------------------------------

-- Create one transfer (posted at once, or a hold when p_pending), idempotent by p_id:
-- repeating a call returns the transfer created the first time.
create or replace function public.credit_create_transfer(
  p_id uuid,
  p_debit_account_id uuid,
  p_credit_account_id uuid,
  p_amount numeric,
  p_kind text,
  p_reference_type text default null,
  p_reference_id text default null,
  p_metadata jsonb default '{}',
  p_pending boolean default false,
  p_timeout interval default null
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_code text;
  v_row public.credit_transfers;
begin
  perform private.credit_require_service();
  v_code := private.credit_apply(p_id, case when p_pending then 'hold' else 'transfer' end,
                                 p_debit_account_id, p_credit_account_id, p_amount, p_kind, null,
                                 case when p_pending and p_timeout is not null then now() + p_timeout end,
                                 p_reference_type, p_reference_id, p_metadata);
  if v_code not in ('ok', 'exists') then
    perform private.credit_raise(v_code, p_id, p_debit_account_id, p_amount);
  end if;
  select * into v_row from public.credit_transfers t where t.id = p_id;
  return v_row;
end;
$$;

revoke execute on function public.credit_create_transfer(uuid, uuid, uuid, numeric, text, text, text, jsonb, boolean, interval)
  from public, anon, authenticated;
grant execute on function public.credit_create_transfer(uuid, uuid, uuid, numeric, text, text, text, jsonb, boolean, interval)
  to service_role;

-- Place a hold (pending transfer) that expires after p_timeout unless posted or voided.
create or replace function public.credit_hold(
  p_id uuid,
  p_debit_account_id uuid,
  p_credit_account_id uuid,
  p_amount numeric,
  p_kind text,
  p_timeout interval default interval '15 minutes',
  p_reference_type text default null,
  p_reference_id text default null,
  p_metadata jsonb default '{}'
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.credit_require_service();
  return private.credit_apply_or_raise(p_id, 'hold', p_debit_account_id, p_credit_account_id, p_amount, p_kind,
                                       null, case when p_timeout is not null then now() + p_timeout end,
                                       p_reference_type, p_reference_id, p_metadata);
end;
$$;

revoke execute on function public.credit_hold(uuid, uuid, uuid, numeric, text, interval, text, text, jsonb)
  from public, anon, authenticated;
grant execute on function public.credit_hold(uuid, uuid, uuid, numeric, text, interval, text, text, jsonb)
  to service_role;

-- Post a hold, fully (p_amount null) or partially; the rest of the hold is released.
create or replace function public.credit_post(
  p_id uuid,
  p_pending_id uuid,
  p_amount numeric default null,
  p_metadata jsonb default '{}'
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_code text;
  v_row public.credit_transfers;
begin
  perform private.credit_require_service();
  v_code := private.credit_apply(p_id, 'post', null, null, p_amount, null, p_pending_id, null, null, null, p_metadata);
  if v_code not in ('ok', 'exists') then
    perform private.credit_raise(v_code, p_id, null, p_amount);
  end if;
  select * into v_row from public.credit_transfers t where t.id = p_id;
  return v_row;
end;
$$;

revoke execute on function public.credit_post(uuid, uuid, numeric, jsonb) from public, anon, authenticated;
grant execute on function public.credit_post(uuid, uuid, numeric, jsonb) to service_role;

-- Void a hold: nothing is charged and the held credits are available again.
create or replace function public.credit_void(
  p_id uuid,
  p_pending_id uuid,
  p_metadata jsonb default '{}'
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_code text;
  v_row public.credit_transfers;
begin
  perform private.credit_require_service();
  v_code := private.credit_apply(p_id, 'void', null, null, null, null, p_pending_id, null, null, null, p_metadata);
  if v_code not in ('ok', 'exists') then
    perform private.credit_raise(v_code, p_id);
  end if;
  select * into v_row from public.credit_transfers t where t.id = p_id;
  return v_row;
end;
$$;

revoke execute on function public.credit_void(uuid, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.credit_void(uuid, uuid, jsonb) to service_role;

-- Expiry ----------------------------------------------------------------------------------

-- Void up to p_limit holds whose timeout has passed; returns how many were voided. The
-- void's id is derived from the hold's, so concurrent or repeated runs void a hold once.
create or replace function public.credit_expire_holds(p_limit integer default 1000)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  perform private.credit_require_service();
  select count(*) filter (where r.result = 'ok')::integer into v_count
    from public.credit_create_transfers(coalesce((
      select jsonb_agg(jsonb_build_object(
               'action', 'void', 'id', md5('credit-hold-expired:' || h.transfer_id::text)::uuid,
               'pending_id', h.transfer_id, 'metadata', jsonb_build_object('reason', 'expired')))
        from (select oh.transfer_id from private.credit_open_holds oh
               where oh.timeout_at <= now() order by oh.timeout_at limit p_limit) h), '[]')) r;
  return v_count;
end;
$$;

revoke execute on function public.credit_expire_holds(integer) from public, anon, authenticated;
grant execute on function public.credit_expire_holds(integer) to service_role;

-- Audit -----------------------------------------------------------------------------------

-- Every violated ledger invariant, one row each (no rows: the ledger is consistent):
-- no non-negative account below zero, the ledger sums to zero, each account's posted and
-- pending columns equal what its transfers say, each hold resolved at most once.
create or replace function public.credit_audit()
returns table (rule text, account_id uuid, detail text)
language sql
stable
security definer
set search_path = ''
as $$
  with sides as (
    select t.debit_account_id as account_id, t.amount as debit, 0::numeric as credit, t.phase, t.id, t.pending_id
      from public.credit_transfers t
    union all
    select t.credit_account_id, 0::numeric, t.amount, t.phase, t.id, t.pending_id
      from public.credit_transfers t
  ),
  expected as (
    select s.account_id,
           coalesce(sum(s.debit) filter (where s.phase in ('posted', 'post_pending')), 0) as debits_posted,
           coalesce(sum(s.credit) filter (where s.phase in ('posted', 'post_pending')), 0) as credits_posted,
           coalesce(sum(s.debit) filter (where s.phase = 'pending' and not exists (
             select 1 from public.credit_transfers r where r.pending_id = s.id)), 0) as debits_pending,
           coalesce(sum(s.credit) filter (where s.phase = 'pending' and not exists (
             select 1 from public.credit_transfers r where r.pending_id = s.id)), 0) as credits_pending
      from sides s group by s.account_id
  )
  select 'debits_must_not_exceed_credits', a.id,
         format('balance %s, pending debits %s', a.balance, a.debits_pending)
    from public.credit_accounts a
   where not a.allow_negative and a.credits_posted - a.debits_posted - a.debits_pending < 0
  union all
  select 'ledger_sums_to_zero', null::uuid, format('sum of balances %s, pending %s / %s', sum(a.balance),
         sum(a.debits_pending), sum(a.credits_pending))
    from public.credit_accounts a
  having sum(a.balance) <> 0 or sum(a.debits_pending) <> sum(a.credits_pending)
  union all
  select 'balance_equals_transfers', a.id,
         format('columns %s/%s/%s/%s, transfers %s/%s/%s/%s', a.debits_posted, a.credits_posted, a.debits_pending,
                a.credits_pending, coalesce(e.debits_posted, 0), coalesce(e.credits_posted, 0),
                coalesce(e.debits_pending, 0), coalesce(e.credits_pending, 0))
    from public.credit_accounts a left join expected e on e.account_id = a.id
   where (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
         is distinct from (coalesce(e.debits_posted, 0), coalesce(e.credits_posted, 0),
                           coalesce(e.debits_pending, 0), coalesce(e.credits_pending, 0))
  union all
  select 'hold_resolves_once', null::uuid, format('hold %s resolved %s times', t.pending_id, count(*))
    from public.credit_transfers t where t.pending_id is not null
   group by t.pending_id having count(*) > 1
  union all
  select 'post_within_hold', null::uuid, format('post %s of %s exceeds hold %s', r.id, r.amount, h.amount)
    from public.credit_transfers r join public.credit_transfers h on h.id = r.pending_id
   where r.phase = 'post_pending' and r.amount > h.amount
  union all
  select 'open_holds_match', null::uuid, format('hold %s open-state mismatch', t.id)
    from public.credit_transfers t
   where t.phase = 'pending'
     and (exists (select 1 from private.credit_open_holds o where o.transfer_id = t.id))
         = (exists (select 1 from public.credit_transfers r where r.pending_id = t.id))
$$;

revoke execute on function public.credit_audit() from public, anon, authenticated;
grant execute on function public.credit_audit() to service_role;

-- Accounts --------------------------------------------------------------------------------
create or replace function private.credit_system_account(p_code text) returns uuid
language plpgsql stable
set search_path = ''
as $$
begin
  return (select a.id from public.credit_accounts a where a.code = p_code);
end;
$$;

revoke all on function private.credit_system_account(text) from public, anon, authenticated, service_role;

-- The user's account of p_kind ('user' or 'provider_earnings'), created when missing.
create or replace function private.credit_user_account(p_user_id uuid, p_kind text default 'user') returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  select a.id into v_id from public.credit_accounts a where a.user_id = p_user_id and a.kind = p_kind;
  if v_id is null then
    insert into public.credit_accounts (user_id, kind) values (p_user_id, p_kind)
    on conflict (user_id, kind) do nothing;
    select a.id into v_id from public.credit_accounts a where a.user_id = p_user_id and a.kind = p_kind;
  end if;
  return v_id;
end;
$$;

revoke all on function private.credit_user_account(uuid, text) from public, anon, authenticated, service_role;

-- Applies one transfer and raises its rejection; 'ok' and 'exists' return the transfer.
create or replace function private.credit_apply_or_raise(
  p_id uuid, p_action text, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text,
  p_pending_id uuid default null, p_timeout_at timestamptz default null, p_reference_type text default null,
  p_reference_id text default null, p_metadata jsonb default '{}'
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_code text;
  v_row public.credit_transfers;
begin
  v_code := private.credit_apply(p_id, p_action, p_debit_account_id, p_credit_account_id, p_amount, p_kind,
                                 p_pending_id, p_timeout_at, p_reference_type, p_reference_id, p_metadata);
  if v_code not in ('ok', 'exists') then
    perform private.credit_raise(v_code, p_id, p_debit_account_id, p_amount);
  end if;
  select * into v_row from public.credit_transfers t where t.id = p_id;
  return v_row;
end;
$$;

revoke all on function private.credit_apply_or_raise(uuid, text, uuid, uuid, numeric, text, uuid, timestamptz, text, text, jsonb)
  from public, anon, authenticated, service_role;

-- Corrections -----------------------------------------------------------------------------

-- Admins (and the service) correct mistakes with a new transfer; the reason is recorded.
-- A correction obeys the same rules as any transfer (a user account cannot go negative).
create or replace function public.credit_correct(
  p_id uuid,
  p_debit_account_id uuid,
  p_credit_account_id uuid,
  p_amount numeric,
  p_reason text
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not (private.is_service() or private.is_admin()) then
    raise exception 'only admins can correct the credit ledger' using errcode = 'insufficient_privilege';
  end if;
  if p_reason is null or btrim(p_reason) = '' then
    raise exception 'a correction needs a reason' using errcode = 'check_violation',
      constraint = 'credit_corrections_reason_required';
  end if;
  return private.credit_apply_or_raise(
    p_id, 'transfer', p_debit_account_id, p_credit_account_id, p_amount, 'correction', null, null,
    'correction', null, jsonb_build_object('reason', p_reason, 'corrected_by', (select auth.uid())));
end;
$$;

revoke execute on function public.credit_correct(uuid, uuid, uuid, numeric, text) from public, anon;
grant execute on function public.credit_correct(uuid, uuid, uuid, numeric, text) to authenticated, service_role;

-- What users read about their credits through PostgREST: balances and a statement. Both
-- views are security_invoker, so the RLS of credit_accounts and credit_transfers decides
-- what each caller sees (their own accounts; admins everything). Nobody writes through them.
create or replace view public.credit_balances with (security_invoker = true) as
select a.id as account_id,
       a.user_id,
       a.kind,
       a.code,
       a.currency,
       a.balance,
       a.debits_pending as held,
       a.credits_posted - a.debits_posted - a.debits_pending as available,
       a.credits_pending as incoming,
       a.low_balance_threshold,
       a.updated_at
  from public.credit_accounts a;

-- One row per transfer and side, seen from the account: amount is the change to the
-- posted balance, available_change the change to what can still be spent (a hold lowers
-- it at once; its post or void gives back what was held).
create or replace view public.credit_statement with (security_invoker = true) as
select a.id as account_id, a.user_id, a.kind as account_kind,
       t.id as transfer_id, t.created_at, t.kind, t.phase,
       case when t.phase in ('posted', 'post_pending') then -t.amount else 0 end as amount,
       case t.phase when 'posted' then -t.amount
                    when 'pending' then -t.amount
                    when 'post_pending' then h.amount - t.amount
                    when 'void_pending' then t.amount end as available_change,
       t.credit_account_id as counterparty_account_id,
       t.pending_id, t.timeout_at, t.reference_type, t.reference_id, t.metadata
  from public.credit_transfers t
  join public.credit_accounts a on a.id = t.debit_account_id
  left join public.credit_transfers h on h.id = t.pending_id
union all
select a.id, a.user_id, a.kind,
       t.id, t.created_at, t.kind, t.phase,
       case when t.phase in ('posted', 'post_pending') then t.amount else 0 end,
       case when t.phase in ('posted', 'post_pending') then t.amount else 0 end,
       t.debit_account_id,
       t.pending_id, t.timeout_at, t.reference_type, t.reference_id, t.metadata
  from public.credit_transfers t
  join public.credit_accounts a on a.id = t.credit_account_id;

revoke all on public.credit_balances, public.credit_statement from anon, authenticated;
grant select on public.credit_balances, public.credit_statement to authenticated, service_role;

-- RPC: the caller's balance (their 'user' account, or 'provider_earnings').
create or replace function public.get_credit_balance(p_kind text default 'user')
returns setof public.credit_balances
language sql
stable
security invoker
set search_path = ''
as $$
  select b.* from public.credit_balances b
   where b.user_id = (select auth.uid()) and b.kind = p_kind
$$;

revoke execute on function public.get_credit_balance(text) from public, anon;
grant execute on function public.get_credit_balance(text) to authenticated;

-- RPC: the caller's statement, newest first, p_limit rows (at most 500) before p_before.
create or replace function public.get_credit_statement(
  p_limit integer default 50,
  p_before timestamptz default null,
  p_kind text default 'user'
) returns setof public.credit_statement
language sql
stable
security invoker
set search_path = ''
as $$
  select s.* from public.credit_statement s
   where s.account_id = (select a.id from public.credit_accounts a
                          where a.user_id = (select auth.uid()) and a.kind = p_kind)
     and (p_before is null or s.created_at < p_before)
   order by s.created_at desc, s.transfer_id
   limit least(greatest(coalesce(p_limit, 50), 1), 500)
$$;

revoke execute on function public.get_credit_statement(integer, timestamptz, text) from public, anon;
grant execute on function public.get_credit_statement(integer, timestamptz, text) to authenticated;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger credit_accounts_updated_at before update on public.credit_accounts
  for each row execute function private.set_updated_at();
create trigger credit_transfers_immutable before update or delete on public.credit_transfers
  for each row execute function private.forbid_transfer_changes();
create trigger credit_accounts_keep_history before delete on public.credit_accounts
  for each row execute function private.credit_account_keep_history();
