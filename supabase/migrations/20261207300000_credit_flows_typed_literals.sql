-- Typed literals in credit_create_transfers: its empty-array initialisers were untyped
-- string literals ('{}'), which PostgreSQL casts at run time and `supabase db lint`
-- (plpgsql_check) reports as "target type is different type than source type". The body
-- is otherwise unchanged.

-- Functions -----------------------------------------------------------------------------

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
  n_row public.credit_transfers[] := '{}'::public.credit_transfers[];
  t_id uuid[] := '{}'::uuid[];
  t_row public.credit_transfers[] := '{}'::public.credit_transfers[];
  t_dpos integer[] := '{}'::integer[];
  t_cpos integer[] := '{}'::integer[];
  c_pending uuid[] := '{}'::uuid[];
  c_phase text[] := '{}'::text[];
  o_id uuid[] := '{}'::uuid[];
  o_timeout timestamptz[] := '{}'::timestamptz[];
  v_resolved uuid[] := '{}'::uuid[];
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
