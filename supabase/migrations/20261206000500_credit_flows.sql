-- Credit flows: how credits enter and leave user accounts through the ledger — usage
-- pricing and charges (trades, backtest seconds, AI requests), batches of transfers (whose
-- usage elements are priced from the plans), grants (monthly plan credits), purchases
-- (paid invoices) and provider payouts. Revenue share of strategy subscriptions needs the
-- signals tables and lives there. Owned by worker.credits.
--
-- Ids that the platform derives itself (monthly grants, purchases, the platform's half of
-- a revenue share) are md5-based uuids of what they stand for, so every flow is idempotent
-- however often it runs.

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

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

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger invoices_paid_credit_purchase after insert or update of status on public.invoices
  for each row execute function private.credit_invoice_paid();
