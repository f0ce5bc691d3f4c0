-- Copy-trade charges, set-based.
--
-- public.signal_charge_copies charged a chunk of a signal's copies through the ledger's
-- general batch call (public.credit_create_transfers): the chunk was built into a jsonb
-- array, parsed back, decided one element at a time in PL/pgSQL, and system:usage was
-- updated once per chunk. At 100,000 copies that was 200 chunks of 500 and about half of
-- the fan-out's time. Every copy's charge is the same kind of transfer (posted usage, from
-- the subscriber's user account to system:usage, id derived from signal and subscription),
-- so a chunk is now charged in a few statements:
--
-- 1. the chunk's pending executions, locked (skip locked), with their payers' accounts;
-- 2. the payers' accounts locked in the ledger's lock order (user-owned accounts by id)
--    and read once;
-- 3. one query decides every charge as the batch call does: a transfer of the same id
--    already in the ledger is compared (private.credit_compare: 'exists' counts as charged,
--    another content is rejected), the others are accepted while the payer's available
--    credits cover the running sum of its charges in the batch's order (transfer id);
-- 4. one insert of the accepted transfers, one update of the payers' balances, the
--    executions marked and the rejected subscribers notified, and last one update of
--    system:usage by the sum, so the hot account is held only until commit.
--
-- The running sums assume a payer's earlier charges in the chunk were accepted. When a
-- payer has several charges in the chunk and one of them is refused that may not hold, and
-- the chunk is charged by the former path instead (private.signal_charge_copies_by_batch,
-- the batch call, under the same locks). Results, the transfers, balances, executions and
-- notifications are the same either way; tests compare the two paths.

-- ======================================================================================
-- Types
-- ======================================================================================

-- One copy's charge: its execution, payer, transfer and the ledger's result code.
create type private.copy_charge as (
  execution_id uuid,
  subscription_id uuid,
  subscriber_id uuid,
  account_id uuid,
  transfer_id uuid,
  amount numeric,
  fresh boolean,
  result text
);

-- ======================================================================================
-- Functions
-- ======================================================================================

-- The former body: the chunk charged through the ledger's batch call. The fallback of
-- signal_charge_copies, and the reference its set-based charges are tested against. The
-- caller checked the caller.
create or replace function private.signal_charge_copies_by_batch(p_signal_id uuid, p_limit integer)
returns table (charged integer, rejected integer)
language plpgsql
set search_path = ''
as $$
declare
  v_usage uuid := (select a.id from public.credit_accounts a where a.code = 'system:usage');
begin
  with todo as (
    select e.id, e.subscription_id, e.subscriber_id, e.credits_due,
           md5('copy-trade-credits:' || e.signal_id || ':' || e.subscription_id)::uuid as transfer_id,
           a.id as account_id
      from public.signal_executions e
      join public.credit_accounts a on a.user_id = e.subscriber_id and a.kind = 'user'
     where e.signal_id = p_signal_id and e.charge_status = 'pending'
     order by e.id
     limit p_limit
     for update of e skip locked
  ), results as (
    select t.id, r.result
      from public.credit_create_transfers(coalesce((
             select jsonb_agg(jsonb_build_object(
                      'action', 'transfer', 'id', t.transfer_id, 'debit_account_id', t.account_id,
                      'credit_account_id', v_usage, 'amount', t.credits_due, 'kind', 'usage',
                      'reference_type', 'signal', 'reference_id', p_signal_id::text,
                      'metadata', jsonb_build_object('usage', 'trade', 'quantity', 1, 'unit_price', t.credits_due,
                                                     'subscription_id', t.subscription_id)) order by t.transfer_id)
               from todo t), '[]')) r
      join todo t on t.transfer_id = r.id
  ), marked as (
    update public.signal_executions e
       set charge_status = case when r.result in ('ok', 'exists') then 'charged' else 'rejected' end
      from results r
     where e.id = r.id
    returning e.charge_status, e.subscriber_id, e.signal_id
  ), notes as (
    insert into public.notifications (user_id, kind, title, body, data)
    select m.subscriber_id, 'low_credits', 'Copy trade not charged',
           'Your credits no longer covered a copied trade; top up to keep copying signals.',
           jsonb_build_object('signal_id', m.signal_id)
      from marked m where m.charge_status = 'rejected'
  )
  select count(*) filter (where m.charge_status = 'charged')::integer,
         count(*) filter (where m.charge_status = 'rejected')::integer
    into charged, rejected
    from marked m;
  return next;
end;
$$;

revoke all on function private.signal_charge_copies_by_batch(uuid, integer) from public, anon, authenticated, service_role;

-- Charge the next p_limit pending copies of a signal (in execution id order); returns how
-- many were charged and how many the ledger rejected (their subscribers are told). Each
-- call is meant to be its own transaction; repeat until both are 0. Safe to repeat: a
-- charge is a transfer with an id derived from signal and subscription.
create or replace function public.signal_charge_copies(p_signal_id uuid, p_limit integer default 500)
returns table (charged integer, rejected integer)
language plpgsql security definer
set search_path = ''
-- One chunk may hold every copy of a signal: no JIT for its plans, no sorts on disk.
set jit = off
set work_mem = '64MB'
as $$
declare
  v_usage uuid := (select a.id from public.credit_accounts a where a.code = 'system:usage');
  v_rows private.copy_charge[];
  a_id uuid[];
  a_avail numeric[];
  a_allow boolean[];
  v_accounts integer;
  v_locked integer;
  v_total numeric;
  v_count bigint;
begin
  if not private.is_service() then
    raise exception 'only the fleet charges copy trades' using errcode = 'insufficient_privilege';
  end if;
  charged := 0;
  rejected := 0;

  -- The chunk: the next pending executions, locked, with their payers' accounts.
  v_rows := array(
    select row(e.id, e.subscription_id, e.subscriber_id, a.id,
               md5('copy-trade-credits:' || e.signal_id || ':' || e.subscription_id)::uuid,
               round(e.credits_due, 8), null, null)::private.copy_charge
      from public.signal_executions e
      join public.credit_accounts a on a.user_id = e.subscriber_id and a.kind = 'user'
     where e.signal_id = p_signal_id and e.charge_status = 'pending'
     order by e.id
     limit p_limit
       for update of e skip locked);
  if cardinality(v_rows) = 0 then
    return next;
    return;
  end if;

  -- The payers' accounts, locked in the ledger's lock order (user-owned accounts by id; the
  -- system account last, by its update), with what each can spend.
  select coalesce(array_agg(l.id), '{}'::uuid[]), coalesce(array_agg(l.available), '{}'::numeric[]),
         coalesce(array_agg(l.allow_negative), '{}'::boolean[])
    into a_id, a_avail, a_allow
    from (select a.id, a.credits_posted - a.debits_posted - a.debits_pending as available, a.allow_negative
            from public.credit_accounts a
           where a.id in (select c.account_id from unnest(v_rows) c)
           order by a.id
             for no key update) l;

  -- Every charge decided at once, in the batch's order (transfer id), against running sums.
  select array_agg(row(d.execution_id, d.subscription_id, d.subscriber_id, d.account_id, d.transfer_id, d.amount,
                       d.fresh,
                       case
                         when d.amount is null or d.amount <= 0 then 'amount_must_be_positive'
                         when not d.fresh then
                           private.credit_compare(d.existing, 'transfer', d.account_id, v_usage, d.amount, 'usage',
                                                  null, 'signal', p_signal_id::text)
                         when d.locked_id is null then 'debit_account_not_found'
                         when v_usage is null then 'credit_account_not_found'
                         when d.allow_negative or d.available >= d.running then 'ok'
                         else 'exceeds_credits'
                       end)::private.copy_charge order by d.transfer_id),
         count(distinct d.account_id), count(distinct d.locked_id)
    into v_rows, v_accounts, v_locked
    from (select c.execution_id, c.subscription_id, c.subscriber_id, c.account_id, c.transfer_id, c.amount,
                 x.id is null as fresh, x as existing, l.available, l.allow_negative, l.id as locked_id,
                 sum(c.amount) filter (where x.id is null and c.amount > 0)
                   over (partition by c.account_id order by c.transfer_id) as running
            from unnest(v_rows) c
            left join unnest(a_id, a_avail, a_allow) l(id, available, allow_negative) on l.id = c.account_id
            left join public.credit_transfers x on x.id = c.transfer_id) d;
  if v_locked <> v_accounts then
    raise exception 'an account of this charge was removed concurrently; retry the charge'
      using errcode = 'serialization_failure';
  end if;

  -- A payer with several charges, one of them refused: the running sums may not be what the
  -- ledger decides one by one (a refused charge leaves its credits to the later ones).
  if exists (select 1 from unnest(v_rows) c
              group by c.account_id
             having count(*) filter (where c.fresh and c.amount > 0) > 1
                and bool_or(c.result = 'exceeds_credits')) then
    return query select * from private.signal_charge_copies_by_batch(p_signal_id, p_limit);
    return;
  end if;

  insert into public.credit_transfers (id, debit_account_id, credit_account_id, amount, kind, phase, pending_id,
                                       timeout_at, reference_type, reference_id, metadata, created_at)
  select c.transfer_id, c.account_id, v_usage, c.amount, 'usage', 'posted', null, null, 'signal', p_signal_id::text,
         jsonb_build_object('usage', 'trade', 'quantity', 1, 'unit_price', c.amount,
                            'subscription_id', c.subscription_id),
         now()
    from unnest(v_rows) c
   where c.result = 'ok'
   order by c.transfer_id
  on conflict do nothing;
  get diagnostics v_count = row_count;
  if v_count <> (select count(*) from unnest(v_rows) c where c.result = 'ok') then
    -- Only a concurrent transfer reusing one of these ids gets here.
    raise exception 'a transfer id of this charge was used concurrently by another transfer; retry the charge'
      using errcode = 'serialization_failure';
  end if;

  update public.credit_accounts a
     set debits_posted = a.debits_posted + p.amount
    from (select c.account_id, sum(c.amount) as amount
            from unnest(v_rows) c where c.result = 'ok' group by c.account_id) p
   where a.id = p.account_id;

  with marked as (
    update public.signal_executions e
       set charge_status = case when c.result in ('ok', 'exists') then 'charged' else 'rejected' end
      from unnest(v_rows) c
     where e.id = c.execution_id
    returning e.charge_status, e.subscriber_id, e.signal_id
  ), notes as (
    insert into public.notifications (user_id, kind, title, body, data)
    select m.subscriber_id, 'low_credits', 'Copy trade not charged',
           'Your credits no longer covered a copied trade; top up to keep copying signals.',
           jsonb_build_object('signal_id', m.signal_id)
      from marked m where m.charge_status = 'rejected'
  )
  select count(*) filter (where m.charge_status = 'charged')::integer,
         count(*) filter (where m.charge_status = 'rejected')::integer
    into charged, rejected
    from marked m;

  -- Last, the hot account: credited by the sum, locked from here until commit.
  v_total := (select sum(c.amount) from unnest(v_rows) c where c.result = 'ok');
  if v_total > 0 then
    update public.credit_accounts a set credits_posted = a.credits_posted + v_total where a.id = v_usage;
  end if;
  return next;
end;
$$;

revoke execute on function public.signal_charge_copies(uuid, integer) from public, anon, authenticated;
grant execute on function public.signal_charge_copies(uuid, integer) to service_role;
