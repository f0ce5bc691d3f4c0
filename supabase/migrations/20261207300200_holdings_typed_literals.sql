-- Typed literals in holdings_finish_account_syncs: its empty-array initialiser was an
-- untyped string literal ('{}'), which `supabase db lint` (plpgsql_check) reports as
-- "target type is different type than source type". The body is otherwise unchanged.

-- Functions -----------------------------------------------------------------------------

-- Incremental account syncs that finish at the same time in one worker are written in one
-- call: one round trip and one commit for many accounts instead of one each. Each account
-- is written in its own subtransaction, so one that fails is reported alone and the others
-- are kept; aggregation requests come last, in user order (no lock-order deadlocks).
create or replace function private.holdings_finish_account_syncs(p_items jsonb)
returns table (idx integer, applied boolean, upserted integer, removed integer, error text)
language plpgsql
set search_path = ''
as $$
declare
  v_item record;
  v_user_id uuid;
  v_users uuid[] := '{}'::uuid[];
begin
  -- Account rows are locked in id order, so concurrent batches never wait on each other in a cycle.
  for v_item in
    select (i.ord - 1)::integer as idx, i.value as item
      from jsonb_array_elements(p_items) with ordinality as i(value, ord)
     order by (i.value ->> 'account_id')::uuid, i.ord
  loop
    idx := v_item.idx; applied := null; upserted := null; removed := null; error := null;
    begin
      select w.applied, w.upserted, w.removed, w.user_id into applied, upserted, removed, v_user_id
        from private.holdings_write_account_sync(
               (v_item.item ->> 'account_id')::uuid, (v_item.item ->> 'as_of')::timestamptz,
               v_item.item -> 'positions', (v_item.item ->> 'webhook_event_id')::uuid,
               (v_item.item ->> 'duration_ms')::integer) w;
      if applied then
        v_users := v_users || v_user_id;
      end if;
    exception when others then
      error := sqlerrm;
    end;
    return next;
  end loop;
  for v_user_id in select distinct u from unnest(v_users) u order by u loop
    perform private.holdings_request_aggregate(v_user_id);
  end loop;
end;
$$;

revoke all on function private.holdings_finish_account_syncs(jsonb) from public, anon, authenticated;
grant execute on function private.holdings_finish_account_syncs(jsonb) to service_role;
