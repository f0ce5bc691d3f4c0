-- The ledger's "service only" check, made robust, and rejections that never name another
-- account to an app.
--
-- credit_require_service used to allow an app request whenever the call stack, read as
-- text, showed a frame outside the credit functions: any wrapper passed. Now the ledger
-- serves the service role, and app requests only while a platform function (a security
-- definer the ledger trusts, e.g. subscribe_to_strategy paying the first month) has
-- opened a delegation for the current transaction in a private table no app can write.

create table private.credit_delegations (
  xact xid8 primary key,
  purpose text not null,
  created_at timestamptz not null default now()
);
revoke all on private.credit_delegations from public, anon, authenticated, service_role;

-- Open (p_purpose not null) or close (null) the current transaction's delegation.
create or replace function private.credit_delegate(p_purpose text) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_purpose is null then
    delete from private.credit_delegations d where d.xact = pg_catalog.pg_current_xact_id();
  else
    insert into private.credit_delegations (xact, purpose) values (pg_catalog.pg_current_xact_id(), p_purpose)
    on conflict (xact) do update set purpose = excluded.purpose;
  end if;
end;
$$;
revoke all on function private.credit_delegate(text) from public, anon, authenticated, service_role;

create or replace function private.credit_require_service() returns void
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if private.is_service() then
    return;
  end if;
  if exists (select 1 from private.credit_delegations d where d.xact = pg_catalog.pg_current_xact_id_if_assigned()) then
    return;
  end if;
  raise exception 'only the service role can move credits' using errcode = 'insufficient_privilege';
end;
$$;
revoke all on function private.credit_require_service() from public, anon, authenticated, service_role;

-- Rejections as before for the service; an app caller's message names no transfer or
-- account id (theirs are derived, others' are none of their business).
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
  v_app boolean := not private.is_service();
  v_t text := case when v_app then 'the transfer' else 'transfer ' || coalesce(p_id::text, 'null') end;
begin
  case
    when p_code = 'exceeds_credits' then
      select a.credits_posted - a.debits_posted - a.debits_pending into v_available
        from public.credit_accounts a where a.id = p_debit_account_id;
      v_constraint := 'credit_accounts_debits_must_not_exceed_credits';
      v_message := case when v_app
        then format('insufficient credits: %s available, %s needed', v_available, p_amount)
        else format('insufficient credits: account %s has %s available, transfer %s needs %s',
                    p_debit_account_id, v_available, p_id, p_amount) end;
    when p_code = 'amount_must_be_positive' then
      v_constraint := 'credit_transfers_amount_positive';
      v_message := format('%s: amount must be positive, got %s', v_t, p_amount);
    when p_code = 'kind_unknown' then
      v_constraint := 'credit_transfers_kind_known';
      v_message := format('%s: unknown kind', v_t);
    when p_code = 'accounts_must_be_different' then
      v_constraint := 'credit_transfers_distinct_accounts';
      v_message := format('%s: debit and credit account must differ', v_t);
    when p_code = 'debit_account_not_found' then
      v_errcode := 'foreign_key_violation'; v_constraint := 'credit_transfers_debit_account_id_fkey';
      v_message := case when v_app then 'the debit account does not exist'
                        else format('transfer %s: debit account %s does not exist', p_id, p_debit_account_id) end;
    when p_code = 'credit_account_not_found' then
      v_errcode := 'foreign_key_violation'; v_constraint := 'credit_transfers_credit_account_id_fkey';
      v_message := format('%s: credit account does not exist', v_t);
    when p_code = 'pending_transfer_not_found' then
      v_errcode := 'foreign_key_violation'; v_constraint := 'credit_transfers_pending_id_fkey';
      v_message := format('%s: the hold it resolves does not exist', v_t);
    when p_code = 'pending_transfer_not_pending' then
      v_constraint := 'credit_transfers_resolution_names_hold';
      v_message := format('%s: the transfer it resolves is not a hold', v_t);
    when p_code in ('pending_transfer_already_posted', 'pending_transfer_already_voided', 'pending_transfer_already_resolved') then
      v_errcode := 'unique_violation'; v_constraint := 'credit_transfers_hold_resolves_once';
      v_message := format('%s: the hold was already %s', v_t,
                          case p_code when 'pending_transfer_already_posted' then 'posted'
                                      when 'pending_transfer_already_voided' then 'voided' else 'resolved' end);
    when p_code = 'exceeds_pending_transfer_amount' then
      v_constraint := 'credit_transfers_post_within_hold';
      v_message := format('%s: cannot post %s, more than was held', v_t, p_amount);
    when p_code = 'pending_transfer_expired' then
      v_constraint := 'credit_transfers_hold_not_expired';
      v_message := format('%s: the hold has expired and can no longer be posted', v_t);
    when p_code like 'exists_with_different_%' then
      v_errcode := 'unique_violation'; v_constraint := 'credit_transfers_pkey';
      v_message := format('%s already exists with a different %s', v_t,
                          replace(substr(p_code, length('exists_with_different_') + 1), '_', ' '));
    else
      v_errcode := 'invalid_parameter_value';
      v_message := format('%s rejected: %s', v_t, replace(p_code, '_', ' '));
  end case;
  raise exception using message = v_message, errcode = v_errcode, constraint = v_constraint,
                        detail = 'result: ' || p_code;
end;
$$;
revoke all on function private.credit_raise(text, uuid, uuid, numeric) from public, anon, authenticated, service_role;
