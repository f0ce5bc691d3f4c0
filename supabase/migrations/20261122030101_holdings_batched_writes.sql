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
  v_users uuid[] := '{}';
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

-- One account's incremental sync (holdings_finish_account_sync without the aggregation request).
create or replace function private.holdings_write_account_sync(
  p_account_id uuid, p_as_of timestamptz, p_positions jsonb,
  p_webhook_event_id uuid default null, p_duration_ms integer default null,
  out applied boolean, out upserted integer, out removed integer, out user_id uuid)
language plpgsql
set search_path = ''
as $$
begin
  select r.applied, r.upserted, r.removed into applied, upserted, removed
    from private.holdings_apply_positions(p_account_id, p_as_of, p_positions) r;
  select a.user_id into user_id from public.brokerage_accounts a where a.id = p_account_id;

  insert into public.sync_runs (user_id, trigger, scope, status, accounts_synced, positions_upserted,
                                positions_removed, errors, duration_ms, started_at, finished_at)
  values (user_id, 'webhook', 'incremental', 'completed', 1, upserted, removed, '[]', p_duration_ms,
          now() - make_interval(secs => coalesce(p_duration_ms, 0) / 1000.0), now());

  if p_webhook_event_id is not null then
    update public.webhook_events
       set status = 'processed', processed_at = now(), attempts = attempts + 1, error = null
     where id = p_webhook_event_id;
  end if;
end;
$$;
revoke all on function private.holdings_write_account_sync(uuid, timestamptz, jsonb, uuid, integer)
  from public, anon, authenticated;
grant execute on function private.holdings_write_account_sync(uuid, timestamptz, jsonb, uuid, integer)
  to service_role;
revoke all on function private.holdings_finish_account_syncs(jsonb) from public, anon, authenticated;
grant execute on function private.holdings_finish_account_syncs(jsonb) to service_role;

create or replace function private.holdings_finish_account_sync(
  p_account_id uuid, p_as_of timestamptz, p_positions jsonb,
  p_webhook_event_id uuid default null, p_duration_ms integer default null,
  out applied boolean, out upserted integer, out removed integer)
language plpgsql
set search_path = ''
as $$
declare
  v_user_id uuid;
begin
  select w.applied, w.upserted, w.removed, w.user_id into applied, upserted, removed, v_user_id
    from private.holdings_write_account_sync(p_account_id, p_as_of, p_positions, p_webhook_event_id,
                                             p_duration_ms) w;
  -- Last: the pending row stays locked only until this transaction commits.
  if applied then
    perform private.holdings_request_aggregate(v_user_id);
  end if;
end;
$$;
