-- A batch of incremental account syncs is written set-based.
--
-- holdings_finish_account_syncs wrote each account of a batch in its own subtransaction
-- through holdings_write_account_sync: per account, a lock, the positions upsert, the
-- removal of unreported positions, the account's as-of, a sync_runs row and the webhook
-- event, each a statement of its own (and a statement-level notification per webhook
-- update). holdings_write_account_syncs now writes the whole batch with one statement per
-- table: the accounts are locked in id order, then every fresh account's positions are
-- upserted and its unreported ones removed, the accounts' as-of moved, one sync_runs row per
-- item inserted and the webhook events marked processed. The rules are those of
-- holdings_apply_positions: a snapshot older than the account's last one changes nothing
-- (but is still recorded and its event processed), lots of one symbol are merged at their
-- unit-weighted average cost, a position row newer than the snapshot is kept.
--
-- A batch the set-based write cannot take as a whole (an account twice, an unknown account,
-- a position Postgres refuses) is written the way it was, one subtransaction per account,
-- so the account that fails is reported alone and the others are kept. The aggregation
-- requests come last in both cases, in user order, set-based (holdings_request_aggregates).

-- ======================================================================================
-- Functions
-- ======================================================================================

-- The aggregation requests of many users (holdings_request_aggregate for each, in user
-- order): one upsert of their pending rows, a new holdings.aggregate job only for the users
-- whose burst has none queued or running.
create or replace function private.holdings_request_aggregates(p_user_ids uuid[]) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_new uuid[];
begin
  with requested as (
    insert into private.holdings_pending_aggregates as p (user_id)
    select distinct u from unnest(p_user_ids) u where u is not null order by 1
    on conflict (user_id) do update set requested_at = now()
    returning p.user_id, p.job_id
  )
  select array_agg(r.user_id order by r.user_id) into v_new
    from requested r
   where r.job_id is null
      or not exists (select 1 from public.jobs j where j.id = r.job_id and j.status in ('queued', 'running'));
  -- A new burst, or its job died (out of attempts) or was pruned: a new job.
  foreach v_user_id in array coalesce(v_new, '{}'::uuid[]) loop
    update private.holdings_pending_aggregates
       set job_id = public.enqueue_job('holdings.aggregate', jsonb_build_object('user_id', v_user_id))
     where user_id = v_user_id;
  end loop;
end;
$$;

revoke all on function private.holdings_request_aggregates(uuid[]) from public, anon, authenticated;
grant execute on function private.holdings_request_aggregates(uuid[]) to service_role;

-- The writes of a batch of incremental syncs ({account_id, as_of, positions,
-- webhook_event_id, duration_ms} each), one statement per table. Raises
-- holdings_batch_not_set_based when an account is named twice or is unknown (the caller
-- writes such a batch account by account); any other error fails the whole call.
create or replace function private.holdings_write_account_syncs(p_items jsonb)
returns table (idx integer, applied boolean, upserted integer, removed integer, user_id uuid)
language plpgsql
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_items integer;
  v_accounts uuid[];
  v_ids uuid[];
  v_users uuid[];
  v_last_as_of timestamptz[];
  v_fresh uuid[];
begin
  select count(*)::integer, array_agg(distinct (i.value ->> 'account_id')::uuid)
    into v_items, v_accounts
    from jsonb_array_elements(p_items) i(value);
  if v_items = 0 then
    return;
  end if;
  -- Locked in id order, as the per-account path and the full sync lock them. The accounts'
  -- owners and as-of go on in arrays: every later statement reaches a table by key only.
  select array_agg(l.id order by l.id), array_agg(l.user_id order by l.id),
         array_agg(l.provider_as_of order by l.id)
    into v_ids, v_users, v_last_as_of
    from (select a.id, a.user_id, a.provider_as_of from public.brokerage_accounts a
           where a.id = any (v_accounts) order by a.id for update) l;
  if cardinality(v_accounts) <> v_items or coalesce(cardinality(v_ids), 0) <> v_items then
    raise exception 'a batch naming an account twice or an unknown account is written account by account'
      using errcode = 'P0001', constraint = 'holdings_batch_not_set_based';
  end if;

  -- Fresh: not older than the snapshot last applied to its account.
  select array_agg(k.account_id) into v_fresh
    from jsonb_array_elements(p_items) i(value)
    join unnest(v_ids, v_last_as_of) as k(account_id, last_as_of)
      on k.account_id = (i.value ->> 'account_id')::uuid
   where k.last_as_of is null or k.last_as_of <= (i.value ->> 'as_of')::timestamptz;
  v_fresh := coalesce(v_fresh, '{}'::uuid[]);

  return query
  with items as (
    select (i.ord - 1)::integer as idx, k.account_id, k.user_id,
           (i.value ->> 'as_of')::timestamptz as as_of, i.value -> 'positions' as positions,
           (i.value ->> 'webhook_event_id')::uuid as webhook_event_id,
           (i.value ->> 'duration_ms')::integer as duration_ms,
           k.account_id = any (v_fresh) as applied
      from jsonb_array_elements(p_items) with ordinality as i(value, ord)
      join unnest(v_ids, v_users) as k(account_id, user_id) on k.account_id = (i.value ->> 'account_id')::uuid
  ), reported as (
    select f.account_id, f.user_id, f.as_of, p.symbol, p.description, p.instrument_type, p.units, p.price,
           p.average_cost, p.currency
      from items f
     cross join lateral jsonb_to_recordset(f.positions)
           as p(symbol text, description text, instrument_type text, units numeric, price numeric,
                average_cost numeric, currency text)
     where f.applied and p.symbol is not null and p.units is not null and p.units <> 0
  ), incoming as (
    select r.account_id, r.user_id, r.as_of, r.symbol,
           max(r.description) as description,
           max(r.instrument_type) as instrument_type,
           sum(r.units) as units,
           max(r.price) as price,
           sum(r.units * r.average_cost) filter (where r.average_cost is not null)
             / nullif(sum(r.units) filter (where r.average_cost is not null), 0) as average_cost,
           coalesce(max(r.currency), 'USD') as currency
      from reported r
     group by r.account_id, r.user_id, r.as_of, r.symbol
  ), written as (
    insert into public.brokerage_positions as bp
      (account_id, user_id, symbol, description, instrument_type, units, price, average_cost, currency, provider_as_of)
    select i.account_id, i.user_id, i.symbol, i.description, i.instrument_type, i.units, i.price, i.average_cost,
           i.currency, i.as_of
      from incoming i
     order by i.account_id, i.symbol
    on conflict (account_id, symbol) do update
       set description = excluded.description, instrument_type = excluded.instrument_type, units = excluded.units,
           price = excluded.price, average_cost = excluded.average_cost, currency = excluded.currency,
           provider_as_of = excluded.provider_as_of
     where bp.provider_as_of <= excluded.provider_as_of
    returning bp.account_id
  ), gone as (
    -- Disjoint from the rows written (other symbols), so one statement holds both.
    delete from public.brokerage_positions bp
     where bp.account_id = any (v_fresh)
       and not exists (select 1 from reported r where r.account_id = bp.account_id and r.symbol = bp.symbol)
    returning bp.account_id
  ), written_per_account as (
    select w.account_id, count(*)::integer as n from written w group by w.account_id
  ), gone_per_account as (
    select g.account_id, count(*)::integer as n from gone g group by g.account_id
  ), counts as (
    select it.idx, it.account_id, it.user_id, it.as_of, it.webhook_event_id, it.duration_ms, it.applied,
           coalesce(w.n, 0) as upserted, coalesce(g.n, 0) as removed
      from items it
      left join written_per_account w on w.account_id = it.account_id
      left join gone_per_account g on g.account_id = it.account_id
  ), synced as (
    update public.brokerage_accounts a
       set provider_as_of = c.as_of, last_synced_at = now(), sync_error = null
      from counts c
     where a.id = any (v_fresh) and a.id = c.account_id
  ), runs as (
    insert into public.sync_runs (user_id, trigger, scope, status, accounts_synced, positions_upserted,
                                  positions_removed, errors, duration_ms, started_at, finished_at)
    select c.user_id, 'webhook', 'incremental', 'completed', 1, c.upserted, c.removed, '[]'::jsonb, c.duration_ms,
           now() - make_interval(secs => coalesce(c.duration_ms, 0) / 1000.0), now()
      from counts c
     order by c.idx
  ), processed as (
    update public.webhook_events e
       set status = 'processed', processed_at = now(), attempts = e.attempts + 1, error = null
      from counts c
     where e.id = c.webhook_event_id
  )
  select c.idx, c.applied, c.upserted, c.removed, c.user_id from counts c order by c.idx;
end;
$$;

revoke all on function private.holdings_write_account_syncs(jsonb) from public, anon, authenticated;
grant execute on function private.holdings_write_account_syncs(jsonb) to service_role;

-- A batch of incremental account syncs, written set-based when it can be, account by account
-- (each in its own subtransaction, a failing one reported alone) otherwise; then the
-- aggregation requests of the users whose positions were applied, in user order.
create or replace function private.holdings_finish_account_syncs(p_items jsonb)
returns table (idx integer, applied boolean, upserted integer, removed integer, error text)
language plpgsql
set search_path = ''
as $$
declare
  v_done jsonb;
  v_item record;
  v_user_id uuid;
  v_users uuid[] := '{}'::uuid[];
begin
  begin
    select coalesce(jsonb_agg(to_jsonb(w) order by w.idx), '[]'::jsonb) into v_done
      from private.holdings_write_account_syncs(p_items) w;
  exception when others then
    v_done := null;  -- rolled back to here: written account by account below
  end;
  if v_done is not null then
    select coalesce(array_agg(d.user_id) filter (where d.applied), '{}'::uuid[]) into v_users
      from jsonb_to_recordset(v_done) as d(applied boolean, user_id uuid);
    perform private.holdings_request_aggregates(v_users);
    return query
      select d.idx, d.applied, d.upserted, d.removed, null::text
        from jsonb_to_recordset(v_done) as d(idx integer, applied boolean, upserted integer, removed integer);
    return;
  end if;

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
  perform private.holdings_request_aggregates(v_users);
end;
$$;

revoke all on function private.holdings_finish_account_syncs(jsonb) from public, anon, authenticated;
grant execute on function private.holdings_finish_account_syncs(jsonb) to service_role;
