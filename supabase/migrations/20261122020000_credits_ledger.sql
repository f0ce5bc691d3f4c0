-- Credit ledger functions: the only way credits move.
--
-- The model is TigerBeetle's: double-entry transfers with client-supplied ids (the
-- idempotency key), two-phase transfers (a pending hold, then one post or void), and user
-- accounts whose posted plus pending debits never exceed their credits.
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

-- Open holds: the pending transfers not yet posted, voided or expired. Transfers are
-- immutable, so this small table is what makes "which holds are still open" and the
-- expiry scan cheap however long the ledger grows.
create table private.credit_open_holds (
  transfer_id uuid primary key references public.credit_transfers (id),
  timeout_at timestamptz
);
create index credit_open_holds_timeout_idx on private.credit_open_holds (timeout_at)
  where timeout_at is not null;
revoke all on private.credit_open_holds from public, anon, authenticated, service_role;

-- Transfers name their accounts without foreign keys: a foreign-key check takes a
-- KEY SHARE lock on the account row, and on the few hot system accounts (system:usage
-- is credited by every usage charge) those locks from concurrent transactions turn into
-- multixacts and cost more than the transfer itself. Every ledger function verifies both
-- accounts exist (it locks them) before it writes, and the trigger below keeps an account
-- with transfers from being deleted, as the foreign keys did (same error, 23503).
alter table public.credit_transfers
  drop constraint credit_transfers_debit_account_id_fkey,
  drop constraint credit_transfers_credit_account_id_fkey;

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
create trigger credit_accounts_keep_history before delete on public.credit_accounts
  for each row execute function private.credit_account_keep_history();

-- Ledger-wide settings (one row). The minimum payout is used by credit_request_payout.
create table private.credit_settings (
  id boolean primary key default true constraint credit_settings_single_row check (id),
  min_payout numeric(24, 8) not null default 50 constraint credit_settings_min_payout_positive check (min_payout > 0),
  default_hold_timeout interval not null default interval '15 minutes',
  updated_at timestamptz not null default now()
);
insert into private.credit_settings default values;
revoke all on private.credit_settings from public, anon, authenticated, service_role;

-- Holds that existed before this migration (none in practice) are open.
insert into private.credit_open_holds (transfer_id, timeout_at)
select t.id, t.timeout_at from public.credit_transfers t
 where t.phase = 'pending'
   and not exists (select 1 from public.credit_transfers r where r.pending_id = t.id);

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
-- 'ok'/'exists', which rolls the call back — every caller below does.
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

-- Batches ---------------------------------------------------------------------------------

-- The elements of a batch, parsed, with usage elements priced from the user's plan.
create type private.credit_batch_item as (
  idx integer, id uuid, action text, debit_account_id uuid, credit_account_id uuid, amount numeric,
  kind text, pending_id uuid, timeout_at timestamptz, reference_type text, reference_id text,
  metadata jsonb, early_result text
);

create or replace function private.credit_parse_batch(p_transfers jsonb)
returns setof private.credit_batch_item
language sql
stable
security definer
set search_path = ''
as $$
  with e as (
    select (x.n - 1)::integer as idx, x.v, coalesce(x.v ->> 'action', 'transfer') as action
      from jsonb_array_elements(p_transfers) with ordinality as x(v, n)
  ),
  u as (
    select e.*,
           case when e.action = 'usage' then
             (select a.id from public.credit_accounts a
               where a.user_id = (e.v ->> 'user_id')::uuid and a.kind = 'user') end as user_account_id,
           -- The plan's price, chosen as private.current_plan chooses the plan (the current
           -- subscription's, else Free), written out so that it is planned with the batch.
           case when e.action = 'usage' and e.v ->> 'usage' in ('trade', 'backtest_second', 'ai_request') then
             (select (p.features ->> ('credits_per_' || (e.v ->> 'usage')))::numeric
                from public.plans p
               where p.id = coalesce(
                       (select s.plan_id from public.subscriptions s
                         where s.user_id = (e.v ->> 'user_id')::uuid and s.status in ('active', 'trial')
                           and s.expires_at > now()
                         limit 1),
                       (select f.id from public.plans f where f.name = 'Free'))) end as price,
           coalesce((e.v ->> 'quantity')::numeric, 1) as quantity
      from e
  )
  select u.idx,
         (u.v ->> 'id')::uuid,
         u.action,
         case when u.action = 'usage' then u.user_account_id else (u.v ->> 'debit_account_id')::uuid end,
         case when u.action = 'usage' then (select a.id from public.credit_accounts a where a.code = 'system:usage')
              else (u.v ->> 'credit_account_id')::uuid end,
         case when u.action = 'usage' then round(u.price * u.quantity, 8) else (u.v ->> 'amount')::numeric end,
         case when u.action = 'usage' then 'usage' else u.v ->> 'kind' end,
         (u.v ->> 'pending_id')::uuid,
         case when u.v ->> 'timeout_seconds' is not null
              then now() + make_interval(secs => (u.v ->> 'timeout_seconds')::double precision) end,
         u.v ->> 'reference_type',
         u.v ->> 'reference_id',
         case when u.action = 'usage'
              then coalesce(u.v -> 'metadata', '{}') || jsonb_build_object(
                     'usage', u.v ->> 'usage', 'quantity', u.quantity, 'unit_price', u.price)
              else coalesce(u.v -> 'metadata', '{}') end,
         case when u.action = 'usage' then
           case when u.user_account_id is null then 'user_account_not_found'
                when u.price is null then 'price_not_found'
                when u.quantity is null or u.quantity <= 0 then 'quantity_must_be_positive'
                when round(u.price * u.quantity, 8) = 0 then 'free' end
         end
    from u
$$;
revoke all on function private.credit_parse_batch(jsonb) from public, anon, authenticated, service_role;

-- Apply many transfers in one call and one transaction; each is accepted or rejected on
-- its own and reported as (idx, id, result) in input order, idx counting from 0. result
-- is 'ok', 'exists' or a rejection code (the same codes as the single calls); a rejected
-- element changes nothing, the others still apply. Elements are JSON objects:
--   {"action": "transfer"|"hold"|"post"|"void"|"usage", "id": uuid,
--    "debit_account_id", "credit_account_id", "amount", "kind",      -- transfer / hold
--    "timeout_seconds",                                                -- hold
--    "pending_id", "amount" (optional, a partial post),                -- post / void
--    "user_id", "usage": "trade"|"backtest_second"|"ai_request", "quantity",  -- usage
--    "reference_type", "reference_id", "metadata"}
-- A usage element charges the user's plan price (credits_per_<usage>) times quantity from
-- their account to system:usage ('free' when the price is zero: nothing is written).
-- Later elements see earlier ones: a batch may hold and then post the same credits.
--
-- How: the user-owned accounts of the batch are locked once, in the ledger's lock order,
-- and read; the elements are decided in memory, in order, against running balances; then
-- all accepted transfers are inserted with one statement and each account is updated
-- once with its net change. System accounts that need no balance check (credited, or
-- allowed to go negative) are locked last, by that update, so the hot ones are held only
-- until commit.
create type private.credit_batch_work as (
  item private.credit_batch_item,
  d_pos integer,              -- positions in the batch's account arrays
  c_pos integer,
  existing public.credit_transfers,
  hold public.credit_transfers,
  hold_d_pos integer,
  hold_c_pos integer,
  resolved_phase text,        -- phase of the hold's resolution already in the ledger
  track_id boolean,           -- another element names this id (duplicate, or its hold)
  track_pending boolean       -- another element resolves the same hold
);

create or replace function public.credit_create_transfers(p_transfers jsonb)
returns table (idx integer, id uuid, result text)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_items private.credit_batch_item[];
  v_work private.credit_batch_work[];
  w private.credit_batch_work;
  r private.credit_batch_item;
  v_pending_ids uuid[];
  v_holds public.credit_transfers[];
  v_all_early boolean;
  v_n_early integer;
  -- the batch's accounts in lock order: id, system?, may go negative, available, net changes
  a_id uuid[];
  a_system boolean[];
  a_allow boolean[];
  a_avail numeric[];
  a_dp numeric[];
  a_cp numeric[];
  a_dpe numeric[];
  a_cpe numeric[];
  -- accepted in this batch: every row; the tracked ones also by id; tracked resolutions
  n_row public.credit_transfers[] := '{}';
  t_id uuid[] := '{}';
  t_row public.credit_transfers[] := '{}';
  t_dpos integer[] := '{}';
  t_cpos integer[] := '{}';
  c_pending uuid[] := '{}';
  c_phase text[] := '{}';
  o_id uuid[] := '{}';
  o_timeout timestamptz[] := '{}';
  v_resolved uuid[] := '{}';
  v_row public.credit_transfers;
  v_hold public.credit_transfers;
  v_action text;
  v_amount numeric;
  v_pos integer;
  v_d integer;
  v_c integer;
  v_phase text;
  v_count bigint;
begin
  perform private.credit_require_service();
  if p_transfers is null or jsonb_typeof(p_transfers) <> 'array' then
    raise exception 'credit_create_transfers expects a JSON array of transfers' using errcode = 'invalid_parameter_value';
  end if;
  v_items := array(select b from private.credit_parse_batch(p_transfers) b order by b.idx);
  v_pending_ids := array(select distinct b.pending_id from unnest(v_items) b where b.pending_id is not null);
  -- Holds are immutable: read them before locking, to know their accounts.
  v_holds := array(select t from public.credit_transfers t where t.id = any(v_pending_ids));

  select array_agg(a.id order by a.user_id is null, a.id),
         array_agg(a.user_id is null order by a.user_id is null, a.id),
         array_agg(a.allow_negative order by a.user_id is null, a.id)
    into a_id, a_system, a_allow
    from public.credit_accounts a
   where a.id in (select b.debit_account_id from unnest(v_items) b where b.early_result is null
                  union select b.credit_account_id from unnest(v_items) b where b.early_result is null
                  union select h.debit_account_id from unnest(v_holds) h
                  union select h.credit_account_id from unnest(v_holds) h);
  a_id := coalesce(a_id, '{}');

  -- System accounts are locked early too when a check needs their balance (a system
  -- account that may not go negative is debited) or no user-owned account serializes an
  -- element (system to system).
  select coalesce(bool_or(
           (b.action in ('transfer', 'hold', 'usage') and (
              (d.system and not d.allow) or (d.system and c.system)))
           or (b.pending_id is not null and hd.system and hc.system)), false)
    into v_all_early
    from unnest(v_items) b
    left join unnest(a_id, a_system, a_allow) d(id, system, allow) on d.id = b.debit_account_id
    left join unnest(a_id, a_system, a_allow) c(id, system, allow) on c.id = b.credit_account_id
    left join unnest(v_holds) h on h.id = b.pending_id
    left join unnest(a_id, a_system) hd(id, system) on hd.id = h.debit_account_id
    left join unnest(a_id, a_system) hc(id, system) on hc.id = h.credit_account_id
   where b.early_result is null;

  a_avail := array(
    select l.available from (
      select a.credits_posted - a.debits_posted - a.debits_pending as available
        from public.credit_accounts a
       where a.id = any(a_id) and (v_all_early or a.user_id is not null)
       order by a.user_id is null, a.id
       for no key update) l);
  v_n_early := case when v_all_early then cardinality(a_id)
                    else (select count(*) from unnest(a_system) s where not s) end;
  if cardinality(a_avail) <> v_n_early then
    raise exception 'an account of this batch was removed concurrently; retry the batch'
      using errcode = 'serialization_failure';
  end if;
  a_avail := a_avail || array_fill(0::numeric, array[cardinality(a_id) - v_n_early]);
  a_dp := array_fill(0::numeric, array[cardinality(a_id)]);
  a_cp := a_dp;
  a_dpe := a_dp;
  a_cpe := a_dp;

  -- Under the locks: what exists already and which holds are resolved; account positions.
  v_work := array(
    select row(b, d.pos, c.pos, x, h, hd.pos, hc.pos, s.phase,
               b.id in (select b2.pending_id from unnest(v_items) b2 where b2.pending_id is not null)
                 or count(*) over (partition by b.id) > 1,
               b.pending_id is not null and count(*) over (partition by b.pending_id) > 1
              )::private.credit_batch_work
      from unnest(v_items) b
      left join unnest(a_id) with ordinality d(id, pos) on d.id = b.debit_account_id
      left join unnest(a_id) with ordinality c(id, pos) on c.id = b.credit_account_id
      left join public.credit_transfers x on x.id = b.id
      left join unnest(v_holds) h on h.id = b.pending_id
      left join unnest(a_id) with ordinality hd(id, pos) on hd.id = h.debit_account_id
      left join unnest(a_id) with ordinality hc(id, pos) on hc.id = h.credit_account_id
      left join public.credit_transfers s on s.pending_id = b.pending_id
     order by b.idx);

  foreach w in array v_work loop
    r := w.item;
    idx := r.idx;
    id := r.id;
    result := r.early_result;
    v_action := case r.action when 'usage' then 'transfer' else r.action end;
    v_amount := round(r.amount, 8);

    if result is not null then
      null;
    elsif r.id is null then
      result := 'id_must_not_be_null';
    elsif v_action not in ('transfer', 'hold', 'post', 'void') then
      result := 'action_unknown';
    elsif v_action in ('transfer', 'hold') then
      if v_amount is null or v_amount <= 0 then result := 'amount_must_be_positive';
      elsif r.kind is null or r.kind not in ('grant', 'purchase', 'usage', 'revenue_share', 'payout', 'refund', 'correction') then
        result := 'kind_unknown';
      elsif r.debit_account_id is null then result := 'debit_account_id_must_not_be_null';
      elsif r.credit_account_id is null then result := 'credit_account_id_must_not_be_null';
      elsif r.debit_account_id = r.credit_account_id then result := 'accounts_must_be_different';
      elsif r.pending_id is not null then result := 'pending_id_must_be_null';
      end if;
    else
      if r.pending_id is null then result := 'pending_id_must_not_be_null';
      elsif r.pending_id = r.id then result := 'pending_id_must_be_different';
      elsif v_amount is not null and v_amount <= 0 then result := 'amount_must_be_positive';
      end if;
    end if;

    -- Same id seen before, in this batch or in the ledger?
    if result is null then
      v_pos := case when w.track_id then array_position(t_id, r.id) end;
      if v_pos is not null then
        result := private.credit_compare(t_row[v_pos], v_action, r.debit_account_id, r.credit_account_id, v_amount,
                                         r.kind, r.pending_id, r.reference_type, r.reference_id);
      elsif (w.existing).id is not null then
        result := private.credit_compare(w.existing, v_action, r.debit_account_id, r.credit_account_id, v_amount,
                                         r.kind, r.pending_id, r.reference_type, r.reference_id);
      end if;
    end if;

    if result is null and v_action in ('transfer', 'hold') then
      v_d := w.d_pos;
      v_c := w.c_pos;
      if v_d is null then result := 'debit_account_not_found';
      elsif v_c is null then result := 'credit_account_not_found';
      elsif not a_allow[v_d] and a_avail[v_d] < v_amount then result := 'exceeds_credits';
      else
        v_row := row(r.id, r.debit_account_id, r.credit_account_id, v_amount, r.kind,
                     case v_action when 'hold' then 'pending' else 'posted' end, null,
                     case v_action when 'hold' then r.timeout_at end, r.reference_type, r.reference_id,
                     coalesce(r.metadata, '{}'), now())::public.credit_transfers;
        a_avail[v_d] := a_avail[v_d] - v_amount;
        if v_action = 'transfer' then
          a_dp[v_d] := a_dp[v_d] + v_amount;
          a_cp[v_c] := a_cp[v_c] + v_amount;
          a_avail[v_c] := a_avail[v_c] + v_amount;
        else
          a_dpe[v_d] := a_dpe[v_d] + v_amount;
          a_cpe[v_c] := a_cpe[v_c] + v_amount;
          o_id := o_id || r.id;
          o_timeout := o_timeout || r.timeout_at;
        end if;
        result := 'ok';
      end if;
    elsif result is null then
      -- post / void: the hold is in the ledger, or was created earlier in this batch
      v_hold := w.hold;
      v_d := w.hold_d_pos;
      v_c := w.hold_c_pos;
      if v_hold.id is null then
        v_pos := array_position(t_id, r.pending_id);
        if v_pos is not null then
          v_hold := t_row[v_pos];
          v_d := t_dpos[v_pos];
          v_c := t_cpos[v_pos];
        end if;
      end if;
      v_phase := w.resolved_phase;
      if v_phase is null and w.track_pending then
        v_phase := c_phase[array_position(c_pending, r.pending_id)];
      end if;
      if v_hold.id is null then result := 'pending_transfer_not_found';
      elsif v_hold.phase <> 'pending' then result := 'pending_transfer_not_pending';
      elsif r.debit_account_id is not null and r.debit_account_id <> v_hold.debit_account_id then
        result := 'pending_transfer_has_different_debit_account_id';
      elsif r.credit_account_id is not null and r.credit_account_id <> v_hold.credit_account_id then
        result := 'pending_transfer_has_different_credit_account_id';
      elsif v_action = 'post' and coalesce(v_amount, v_hold.amount) > v_hold.amount then
        result := 'exceeds_pending_transfer_amount';
      elsif v_action = 'void' and v_amount is not null and v_amount <> v_hold.amount then
        result := 'pending_transfer_has_different_amount';
      elsif v_phase is not null then
        result := case v_phase when 'post_pending' then 'pending_transfer_already_posted'
                               else 'pending_transfer_already_voided' end;
      elsif v_action = 'post' and v_hold.timeout_at is not null and v_hold.timeout_at <= now() then
        result := 'pending_transfer_expired';
      else
        v_amount := case v_action when 'post' then coalesce(v_amount, v_hold.amount) else v_hold.amount end;
        v_phase := case v_action when 'post' then 'post_pending' else 'void_pending' end;
        v_row := row(r.id, v_hold.debit_account_id, v_hold.credit_account_id, v_amount, v_hold.kind,
                     v_phase, r.pending_id, null,
                     coalesce(r.reference_type, v_hold.reference_type), coalesce(r.reference_id, v_hold.reference_id),
                     coalesce(r.metadata, '{}'), now())::public.credit_transfers;
        a_dpe[v_d] := a_dpe[v_d] - v_hold.amount;
        a_cpe[v_c] := a_cpe[v_c] - v_hold.amount;
        a_avail[v_d] := a_avail[v_d] + v_hold.amount;
        if v_action = 'post' then
          a_dp[v_d] := a_dp[v_d] + v_amount;
          a_cp[v_c] := a_cp[v_c] + v_amount;
          a_avail[v_d] := a_avail[v_d] - v_amount;
          a_avail[v_c] := a_avail[v_c] + v_amount;
        end if;
        v_resolved := v_resolved || r.pending_id;
        if w.track_pending then
          c_pending := c_pending || r.pending_id;
          c_phase := c_phase || v_phase;
        end if;
        result := 'ok';
      end if;
    end if;

    if result = 'ok' then
      n_row := n_row || v_row;
      if w.track_id then
        t_id := t_id || r.id;
        t_row := t_row || v_row;
        t_dpos := t_dpos || w.d_pos;
        t_cpos := t_cpos || w.c_pos;
      end if;
    end if;
    return next;
  end loop;

  if cardinality(n_row) = 0 then
    return;
  end if;
  insert into public.credit_transfers select * from unnest(n_row) on conflict do nothing;
  get diagnostics v_count = row_count;
  if v_count <> cardinality(n_row) then
    -- Only a concurrent transfer reusing one of these ids with other accounts gets here.
    raise exception 'a transfer id of this batch was used concurrently by another transfer; retry the batch'
      using errcode = 'serialization_failure';
  end if;
  insert into private.credit_open_holds (transfer_id, timeout_at)
  select o.id, o.timeout_at from unnest(o_id, o_timeout) as o(id, timeout_at)
   where o.id <> all(v_resolved);
  delete from private.credit_open_holds h where h.transfer_id = any(v_resolved);
  -- The late system accounts, locked now in lock order, then every account updated once.
  perform 1 from public.credit_accounts a
   where a.id = any(a_id[v_n_early + 1:])
   order by a.id
   for no key update;
  update public.credit_accounts a
     set debits_posted = a.debits_posted + d.dp, credits_posted = a.credits_posted + d.cp,
         debits_pending = a.debits_pending + d.dpe, credits_pending = a.credits_pending + d.cpe
    from unnest(a_id, a_dp, a_cp, a_dpe, a_cpe) as d(id, dp, cp, dpe, cpe)
   where a.id = d.id and (d.dp <> 0 or d.cp <> 0 or d.dpe <> 0 or d.cpe <> 0);
end;
$$;
revoke execute on function public.credit_create_transfers(jsonb) from public, anon, authenticated;
grant execute on function public.credit_create_transfers(jsonb) to service_role;

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

-- ---------------------------------------------------------------------------
-- Credit flows built on the ledger core: usage pricing from the plan, grants (one-off and
-- monthly), purchases from paid invoices, revenue share of strategy subscriptions,
-- provider payouts and admin corrections. Ids that the platform derives itself (monthly
-- grants, purchases, the platform's half of a revenue share) are md5-based uuids of what
-- they stand for, so every flow is idempotent however often it runs.

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

-- Pricing ---------------------------------------------------------------------------------

-- The price of one unit of p_usage ('trade', 'backtest_second', 'ai_request') on the
-- user's current plan: plans.features ->> 'credits_per_<usage>'.
create or replace function public.credit_price(p_user_id uuid, p_usage text) returns numeric
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.credit_require_service();
  return (private.credit_usage_price(p_user_id, p_usage)).price;
end;
$$;
revoke execute on function public.credit_price(uuid, text) from public, anon, authenticated;
grant execute on function public.credit_price(uuid, text) to service_role;

-- What p_quantity units of p_usage cost the user now (rounded to the ledger's 8 decimals).
create or replace function public.credit_quote(p_user_id uuid, p_usage text, p_quantity numeric) returns numeric
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.credit_require_service();
  return round((private.credit_usage_price(p_user_id, p_usage)).price * p_quantity, 8);
end;
$$;
revoke execute on function public.credit_quote(uuid, text, numeric) from public, anon, authenticated;
grant execute on function public.credit_quote(uuid, text, numeric) to service_role;

-- Usage at the user's plan price, from their account to system:usage: posted at once
-- (p_action 'transfer') or held (p_action 'hold', until p_timeout_at). Returns null when
-- the plan makes this usage free (nothing is written).
create or replace function private.credit_apply_usage(
  p_id uuid, p_action text, p_user_id uuid, p_usage text, p_quantity numeric, p_timeout_at timestamptz,
  p_reference_type text, p_reference_id text, p_metadata jsonb
) returns public.credit_transfers
language plpgsql
set search_path = ''
as $$
declare
  v record;
  v_amount numeric;
begin
  if p_quantity is null or p_quantity <= 0 then
    raise exception 'usage quantity must be positive, got %', p_quantity
      using errcode = 'check_violation', constraint = 'credit_usage_quantity_positive';
  end if;
  v := private.credit_usage_price(p_user_id, p_usage);
  if v.account_id is null then
    raise exception 'user % has no credit account', p_user_id
      using errcode = 'foreign_key_violation', constraint = 'credit_transfers_debit_account_id_fkey',
            detail = 'result: debit_account_not_found';
  end if;
  v_amount := round(v.price * p_quantity, 8);
  if v_amount = 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    p_id, p_action, v.account_id, private.credit_system_account('system:usage'), v_amount, 'usage', null,
    p_timeout_at, p_reference_type, p_reference_id,
    coalesce(p_metadata, '{}') || jsonb_build_object('usage', p_usage, 'quantity', p_quantity, 'unit_price', v.price));
end;
$$;
revoke all on function private.credit_apply_usage(uuid, text, uuid, text, numeric, timestamptz, text, text, jsonb)
  from public, anon, authenticated, service_role;

-- Charge the user for usage at their plan's price, posted at once, to system:usage.
-- Returns null when the plan makes this usage free (nothing is written).
create or replace function public.credit_charge_usage(
  p_id uuid,
  p_user_id uuid,
  p_usage text,
  p_quantity numeric default 1,
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
  return private.credit_apply_usage(p_id, 'transfer', p_user_id, p_usage, p_quantity, null,
                                    p_reference_type, p_reference_id, p_metadata);
end;
$$;
revoke execute on function public.credit_charge_usage(uuid, uuid, text, numeric, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.credit_charge_usage(uuid, uuid, text, numeric, text, text, jsonb) to service_role;

-- Hold credits for usage about to happen (e.g. an estimated backtest duration); post the
-- actual cost later with credit_post(…, credit_quote(…)) or void it.
create or replace function public.credit_hold_usage(
  p_id uuid,
  p_user_id uuid,
  p_usage text,
  p_quantity numeric default 1,
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
  return private.credit_apply_usage(
    p_id, 'hold', p_user_id, p_usage, p_quantity,
    now() + coalesce(p_timeout, (select s.default_hold_timeout from private.credit_settings s)),
    p_reference_type, p_reference_id, p_metadata);
end;
$$;
revoke execute on function public.credit_hold_usage(uuid, uuid, text, numeric, interval, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.credit_hold_usage(uuid, uuid, text, numeric, interval, text, text, jsonb) to service_role;

-- Grants ----------------------------------------------------------------------------------

-- Grant credits to a user from system:grants (promotions, compensation, sign-up bonus).
create or replace function public.credit_grant(
  p_id uuid,
  p_user_id uuid,
  p_amount numeric,
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
  return private.credit_apply_or_raise(
    p_id, 'transfer', private.credit_system_account('system:grants'), private.credit_user_account(p_user_id),
    p_amount, 'grant', null, null, p_reference_type, p_reference_id, p_metadata);
end;
$$;
revoke execute on function public.credit_grant(uuid, uuid, numeric, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.credit_grant(uuid, uuid, numeric, text, text, jsonb) to service_role;

-- The monthly cycle a subscription is in (0 from started_at, +1 every calendar month
-- after) and the transfer id of that cycle's grant.
create or replace function private.credit_monthly_grant_id(p_subscription_id uuid, p_started_at timestamptz)
returns uuid
language sql stable
set search_path = ''
as $$
  select md5('credit-monthly-grant:' || p_subscription_id::text || ':' ||
             (extract(year from age(now(), p_started_at)) * 12 + extract(month from age(now(), p_started_at)))::integer::text)::uuid
$$;
revoke all on function private.credit_monthly_grant_id(uuid, timestamptz) from public, anon, authenticated, service_role;

-- Grant the plan's monthly_credits for the subscription's current monthly cycle, once:
-- on activation (cycle 0) and on every renewal month after. Returns the grant, or null
-- when the subscription is not current or its plan grants nothing.
create or replace function public.credit_grant_monthly(p_subscription_id uuid) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_sub public.subscriptions;
  v_credits numeric;
begin
  perform private.credit_require_service();
  select * into v_sub from public.subscriptions s where s.id = p_subscription_id;
  if not found or v_sub.status not in ('active', 'trial') or v_sub.expires_at <= now() then
    return null;
  end if;
  select (p.features ->> 'monthly_credits')::numeric into v_credits from public.plans p where p.id = v_sub.plan_id;
  if coalesce(v_credits, 0) <= 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    private.credit_monthly_grant_id(v_sub.id, v_sub.started_at), 'transfer',
    private.credit_system_account('system:grants'), private.credit_user_account(v_sub.user_id),
    v_credits, 'grant', null, null, 'subscription', v_sub.id::text,
    jsonb_build_object('reason', 'monthly_credits', 'plan_id', v_sub.plan_id));
end;
$$;
revoke execute on function public.credit_grant_monthly(uuid) from public, anon, authenticated;
grant execute on function public.credit_grant_monthly(uuid) to service_role;

-- The periodic sweep: grant every current subscription its cycle's credits, up to p_limit
-- per call, through one batch. Returns the result codes and how many of each.
create or replace function public.credit_grant_monthly_all(p_limit integer default 5000)
returns table (result text, transfers bigint)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_grants uuid := private.credit_system_account('system:grants');
begin
  perform private.credit_require_service();
  return query
  select r.result, count(*)
    from public.credit_create_transfers(coalesce((
      select jsonb_agg(jsonb_build_object(
               'action', 'transfer', 'id', g.grant_id, 'debit_account_id', v_grants,
               'credit_account_id', a.id, 'amount', g.credits, 'kind', 'grant',
               'reference_type', 'subscription', 'reference_id', g.subscription_id::text,
               'metadata', jsonb_build_object('reason', 'monthly_credits', 'plan_id', g.plan_id)))
        from (select s.id as subscription_id, s.user_id, s.plan_id,
                     private.credit_monthly_grant_id(s.id, s.started_at) as grant_id,
                     (p.features ->> 'monthly_credits')::numeric as credits
                from public.subscriptions s join public.plans p on p.id = s.plan_id
               where s.status in ('active', 'trial') and s.expires_at > now()
                 and coalesce((p.features ->> 'monthly_credits')::numeric, 0) > 0
                 and not exists (select 1 from public.credit_transfers t
                                  where t.id = private.credit_monthly_grant_id(s.id, s.started_at))
               order by s.id
               limit p_limit) g
        join public.credit_accounts a on a.user_id = g.user_id and a.kind = 'user'), '[]')) r
   group by r.result;
end;
$$;
revoke execute on function public.credit_grant_monthly_all(integer) from public, anon, authenticated;
grant execute on function public.credit_grant_monthly_all(integer) to service_role;

-- Purchases -------------------------------------------------------------------------------

-- Credit a paid invoice's credits to its user, once per invoice (from system:purchases).
create or replace function public.credit_purchase_from_invoice(p_invoice_id uuid) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_invoice public.invoices;
begin
  perform private.credit_require_service();
  select * into v_invoice from public.invoices i where i.id = p_invoice_id;
  if not found then
    raise exception 'invoice % does not exist', p_invoice_id using errcode = 'no_data_found';
  end if;
  if v_invoice.status <> 'paid' then
    raise exception 'invoice % is %, not paid: no credits to add', p_invoice_id, v_invoice.status
      using errcode = 'check_violation', constraint = 'credit_purchases_invoice_paid';
  end if;
  if v_invoice.credits <= 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    md5('credit-purchase:' || v_invoice.id::text)::uuid, 'transfer',
    private.credit_system_account('system:purchases'), private.credit_user_account(v_invoice.user_id),
    v_invoice.credits, 'purchase', null, null, 'invoice', v_invoice.id::text,
    jsonb_build_object('amount', v_invoice.amount, 'currency', v_invoice.currency, 'provider', v_invoice.provider));
end;
$$;
revoke execute on function public.credit_purchase_from_invoice(uuid) from public, anon, authenticated;
grant execute on function public.credit_purchase_from_invoice(uuid) to service_role;

-- An invoice that becomes paid credits its purchase in the same transaction.
create or replace function private.credit_invoice_paid() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.status = 'paid' and new.credits > 0 and (tg_op = 'INSERT' or old.status is distinct from 'paid') then
    perform private.credit_apply_or_raise(
      md5('credit-purchase:' || new.id::text)::uuid, 'transfer',
      private.credit_system_account('system:purchases'), private.credit_user_account(new.user_id),
      new.credits, 'purchase', null, null, 'invoice', new.id::text,
      jsonb_build_object('amount', new.amount, 'currency', new.currency, 'provider', new.provider));
  end if;
  return null;
end;
$$;
revoke all on function private.credit_invoice_paid() from public, anon, authenticated, service_role;
create trigger invoices_paid_credit_purchase after insert or update of status on public.invoices
  for each row execute function private.credit_invoice_paid();

-- Revenue share ---------------------------------------------------------------------------

-- The subscriber pays a strategy subscription's period in credits: the provider's share
-- (strategies.provider_share, default 0.80) goes to their provider_earnings account, the
-- rest to system:platform_revenue. Both transfers or neither. p_id identifies the payment
-- (one per subscription period); the platform's transfer id is derived from it.
-- Returns the provider's transfer and the platform's.
create or replace function public.credit_pay_strategy_subscription(
  p_id uuid,
  p_strategy_subscription_id uuid,
  p_amount numeric default null
) returns setof public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions;
  v_strategy public.strategies;
  v_amount numeric;
  v_provider_part numeric;
  v_subscriber_account uuid;
  v_provider_account uuid;
  v_platform_account uuid := private.credit_system_account('system:platform_revenue');
  v_platform_id uuid := md5('credit-revenue-share-platform:' || p_id::text)::uuid;
  v_reference text;
begin
  perform private.credit_require_service();
  select * into v_sub from public.strategy_subscriptions s where s.id = p_strategy_subscription_id;
  if not found then
    raise exception 'strategy subscription % does not exist', p_strategy_subscription_id using errcode = 'no_data_found';
  end if;
  select * into v_strategy from public.strategies s where s.id = v_sub.strategy_id;
  v_amount := coalesce(p_amount, nullif(v_sub.price, 0), v_strategy.monthly_price);
  if v_amount is null or v_amount <= 0 then
    perform private.credit_raise('amount_must_be_positive', p_id, null, v_amount);
  end if;
  v_provider_part := round(v_amount * v_strategy.provider_share, 8);
  v_subscriber_account := private.credit_user_account(v_sub.subscriber_id);
  v_provider_account := private.credit_user_account(v_strategy.user_id, 'provider_earnings');
  v_reference := v_sub.id::text;

  perform 1 from public.credit_accounts a
   where a.id in (v_subscriber_account, v_provider_account, v_platform_account)
   order by a.user_id is null, a.id for no key update;

  if v_provider_part > 0 then
    return next private.credit_apply_or_raise(
      p_id, 'transfer', v_subscriber_account, v_provider_account, v_provider_part, 'revenue_share', null, null,
      'strategy_subscription', v_reference,
      jsonb_build_object('share', 'provider', 'provider_share', v_strategy.provider_share, 'payment', v_amount));
  end if;
  if v_amount - v_provider_part > 0 then
    return next private.credit_apply_or_raise(
      case when v_provider_part > 0 then v_platform_id else p_id end, 'transfer', v_subscriber_account,
      v_platform_account, v_amount - v_provider_part, 'revenue_share', null, null,
      'strategy_subscription', v_reference,
      jsonb_build_object('share', 'platform', 'provider_share', v_strategy.provider_share, 'payment', v_amount));
  end if;
end;
$$;
revoke execute on function public.credit_pay_strategy_subscription(uuid, uuid, numeric) from public, anon, authenticated;
grant execute on function public.credit_pay_strategy_subscription(uuid, uuid, numeric) to service_role;

-- Payouts ---------------------------------------------------------------------------------

-- The minimum a provider may request, from private.credit_settings (default 50).
create or replace function public.credit_min_payout() returns numeric
language sql stable
security definer
set search_path = ''
as $$
  select s.min_payout from private.credit_settings s
$$;
revoke execute on function public.credit_min_payout() from public, anon;
grant execute on function public.credit_min_payout() to authenticated, service_role;

-- A provider asks to be paid out: their earnings (all available by default) are held
-- toward system:payouts once they reach the minimum payout. The worker posts the hold
-- when the money is sent, or voids it when the payout fails (the credits come back).
-- Providers call it for themselves (p_user_id null); the service may name anyone.
create or replace function public.credit_request_payout(
  p_amount numeric default null,
  p_id uuid default null,
  p_user_id uuid default null
) returns public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid;
  v_account public.credit_accounts;
  v_available numeric;
  v_amount numeric;
  v_min numeric := (select s.min_payout from private.credit_settings s);
begin
  if private.is_service() then
    v_user := coalesce(p_user_id, (select auth.uid()));
  else
    v_user := (select auth.uid());
    if v_user is null or (p_user_id is not null and p_user_id <> v_user) then
      raise exception 'providers can request payouts of their own earnings only' using errcode = 'insufficient_privilege';
    end if;
  end if;
  select * into v_account from public.credit_accounts a
   where a.user_id = v_user and a.kind = 'provider_earnings' for no key update;
  if not found then
    raise exception 'no provider earnings to pay out' using errcode = 'no_data_found',
      detail = 'result: debit_account_not_found';
  end if;
  v_available := v_account.credits_posted - v_account.debits_posted - v_account.debits_pending;
  v_amount := coalesce(p_amount, v_available);
  if v_amount < v_min then
    raise exception 'payouts start at % credits; % requested, % available', v_min, v_amount, v_available
      using errcode = 'check_violation', constraint = 'credit_payouts_minimum', detail = 'result: below_min_payout';
  end if;
  return private.credit_apply_or_raise(
    coalesce(p_id, gen_random_uuid()), 'hold', v_account.id, private.credit_system_account('system:payouts'),
    v_amount, 'payout', null, null, 'payout_request', null,
    jsonb_build_object('requested_by', (select auth.uid())));
end;
$$;
revoke execute on function public.credit_request_payout(numeric, uuid, uuid) from public, anon;
grant execute on function public.credit_request_payout(numeric, uuid, uuid) to authenticated, service_role;

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

-- ---------------------------------------------------------------------------
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

-- ---------------------------------------------------------------------------

-- The user's 'user' account and the price of one unit of p_usage on their current plan
-- (chosen as private.current_plan chooses: the current subscription's plan, else Free).
create or replace function private.credit_usage_price(p_user_id uuid, p_usage text,
                                                      out account_id uuid, out price numeric, out plan text)
language plpgsql stable
set search_path = ''
as $$
begin
  if p_usage is null or p_usage not in ('trade', 'backtest_second', 'ai_request') then
    raise exception 'unknown usage %; expected trade, backtest_second or ai_request', p_usage
      using errcode = 'invalid_parameter_value';
  end if;
  select a.id into account_id from public.credit_accounts a where a.user_id = p_user_id and a.kind = 'user';
  select (p.features ->> ('credits_per_' || p_usage))::numeric, p.name into price, plan
    from public.plans p
   where p.id = coalesce(
           (select s.plan_id from public.subscriptions s
             where s.user_id = p_user_id and s.status in ('active', 'trial') and s.expires_at > now()
             limit 1),
           (select f.id from public.plans f where f.name = 'Free'));
  if price is null then
    raise exception 'plan % has no price for %', plan, p_usage
      using errcode = 'invalid_parameter_value', hint = 'set plans.features.credits_per_' || p_usage;
  end if;
end;
$$;
revoke all on function private.credit_usage_price(uuid, text) from public, anon, authenticated, service_role;
