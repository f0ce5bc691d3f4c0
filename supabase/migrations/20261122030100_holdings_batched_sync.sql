-- Holdings sync, faster: an incremental (webhook) account sync writes everything in one
-- call after its provider fetch, and aggregation runs once per user per burst of syncs
-- instead of once per account.
--
-- Rules kept: the as-of guard and removal of unreported positions (holdings_apply_positions),
-- set-based aggregation in SQL (holdings_refresh_aggregates), and no lost update: every
-- applied snapshot is followed by an aggregation that sees it (see holdings_request_aggregate).

-- The webhook's account lookup walks (provider, provider_user_id): index it.
create index if not exists brokerage_connections_provider_user_idx
  on public.brokerage_connections (provider, provider_user_id);

-- ---------------------------------------------------------------------------------------
-- Users whose positions changed since their holdings were last aggregated, and the
-- holdings.aggregate job that will aggregate them.
create table private.holdings_pending_aggregates (
  user_id uuid primary key references public.profiles (id) on delete cascade,
  job_id bigint,
  requested_at timestamptz not null default now()
);
revoke all on private.holdings_pending_aggregates from public, anon, authenticated;
grant select, insert, update, delete on private.holdings_pending_aggregates to service_role;

-- Aggregations of one user run one at a time: each starts its statements after the
-- previous one committed, so a slower one never writes totals older than the faster one's.
create or replace function private.holdings_refresh_aggregates(p_user_ids uuid[]) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_changed integer;
  v_removed integer;
begin
  perform pg_advisory_xact_lock(hashtextextended('holdings_aggregate:' || u::text, 0))
     from (select distinct unnest(p_user_ids) as u order by 1) users;

  -- New statement, new snapshot (read committed): everything committed before the lock.
  with per_symbol as (
    select bp.user_id, bp.symbol,
           min(bp.currency) as currency,
           sum(bp.units) as total_units,
           coalesce(max(sp.price), max(bp.price)) as last_price,
           sum(bp.units * bp.average_cost) filter (where bp.average_cost is not null)
             / nullif(sum(bp.units) filter (where bp.average_cost is not null), 0) as average_cost,
           array_agg(distinct bp.account_id order by bp.account_id) as account_ids
      from public.brokerage_positions bp
      join public.brokerage_accounts a on a.id = bp.account_id
      join public.brokerage_connections c on c.id = a.connection_id
      left join public.symbol_prices sp on sp.symbol = bp.symbol
     where bp.user_id = any (p_user_ids) and c.status <> 'deleted'
     group by bp.user_id, bp.symbol
  ), valued as (
    select s.*, s.total_units * s.last_price as market_value,
           s.total_units * (s.last_price - s.average_cost) as unrealized_pnl
      from per_symbol s
     where s.total_units <> 0
  ), written as (
    insert into public.aggregated_holdings as h
      (user_id, symbol, currency, total_units, market_value, average_cost, unrealized_pnl, account_ids,
       account_count, last_price, updated_at)
    select v.user_id, v.symbol, v.currency, v.total_units, v.market_value, v.average_cost, v.unrealized_pnl,
           v.account_ids, cardinality(v.account_ids), v.last_price, now()
      from valued v
    on conflict (user_id, symbol) do update
       set currency = excluded.currency, total_units = excluded.total_units, market_value = excluded.market_value,
           average_cost = excluded.average_cost, unrealized_pnl = excluded.unrealized_pnl,
           account_ids = excluded.account_ids, account_count = excluded.account_count,
           last_price = excluded.last_price, updated_at = now()
     where (h.currency, h.total_units, h.market_value, h.average_cost, h.unrealized_pnl, h.account_ids, h.last_price)
           is distinct from
           (excluded.currency, excluded.total_units, excluded.market_value, excluded.average_cost,
            excluded.unrealized_pnl, excluded.account_ids, excluded.last_price)
    returning 1
  )
  select count(*) into v_changed from written;

  delete from public.aggregated_holdings h
   where h.user_id = any (p_user_ids)
     and not exists (
       select 1 from public.brokerage_positions bp
         join public.brokerage_accounts a on a.id = bp.account_id
         join public.brokerage_connections c on c.id = a.connection_id
        where bp.user_id = h.user_id and bp.symbol = h.symbol and c.status <> 'deleted');
  get diagnostics v_removed = row_count;
  return v_changed + v_removed;
end;
$$;
revoke all on function private.holdings_refresh_aggregates(uuid[]) from public, anon, authenticated;
grant execute on function private.holdings_refresh_aggregates(uuid[]) to service_role;

-- Ask for the user's holdings to be aggregated after this transaction's writes. The first
-- request of a burst enqueues a holdings.aggregate job; later ones only touch the pending
-- row while that job is still queued or running. The row lock taken here is what makes it
-- safe: the job deletes the row before aggregating, so it either waits for this
-- transaction to commit (and then sees its writes) or has already deleted the row (and
-- this transaction inserts a new one with a new job). Returns the job's id.
create or replace function private.holdings_request_aggregate(p_user_id uuid) returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_job_id bigint;
begin
  insert into private.holdings_pending_aggregates as p (user_id) values (p_user_id)
  on conflict (user_id) do update set requested_at = now()
  returning p.job_id into v_job_id;
  if v_job_id is null
     or not exists (select 1 from public.jobs j where j.id = v_job_id and j.status in ('queued', 'running')) then
    -- A new burst, or its job died (out of attempts) or was pruned: a new job.
    v_job_id := public.enqueue_job('holdings.aggregate', jsonb_build_object('user_id', p_user_id));
    update private.holdings_pending_aggregates set job_id = v_job_id where user_id = p_user_id;
  end if;
  return v_job_id;
end;
$$;
revoke all on function private.holdings_request_aggregate(uuid) from public, anon, authenticated;
grant execute on function private.holdings_request_aggregate(uuid) to service_role;

-- The holdings.aggregate job: aggregate the users still pending (none when an earlier job
-- of the same burst already did). Returns how many aggregated rows changed.
create or replace function private.holdings_aggregate_pending(p_user_ids uuid[]) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_users uuid[];
begin
  -- Waits for syncs that are between their writes and their commit (they hold the row).
  with locked as (
    select p.user_id from private.holdings_pending_aggregates p
     where p.user_id = any (p_user_ids)
     order by p.user_id
       for update
  ), gone as (
    delete from private.holdings_pending_aggregates p using locked l where p.user_id = l.user_id
    returning p.user_id
  )
  select array_agg(g.user_id order by g.user_id) into v_users from gone g;
  if v_users is null then
    return 0;
  end if;
  return private.holdings_refresh_aggregates(v_users);
end;
$$;
revoke all on function private.holdings_aggregate_pending(uuid[]) from public, anon, authenticated;
grant execute on function private.holdings_aggregate_pending(uuid[]) to service_role;

-- ---------------------------------------------------------------------------------------
-- Everything an incremental account sync writes after its provider fetch, in one call:
-- the positions (as-of guard, removal), the aggregation request, the sync run with its
-- stats, and the webhook event marked processed.
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
  select r.applied, r.upserted, r.removed into applied, upserted, removed
    from private.holdings_apply_positions(p_account_id, p_as_of, p_positions) r;
  select a.user_id into v_user_id from public.brokerage_accounts a where a.id = p_account_id;

  insert into public.sync_runs (user_id, trigger, scope, status, accounts_synced, positions_upserted,
                                positions_removed, errors, duration_ms, started_at, finished_at)
  values (v_user_id, 'webhook', 'incremental', 'completed', 1, upserted, removed, '[]', p_duration_ms,
          now() - make_interval(secs => coalesce(p_duration_ms, 0) / 1000.0), now());

  if p_webhook_event_id is not null then
    update public.webhook_events
       set status = 'processed', processed_at = now(), attempts = attempts + 1, error = null
     where id = p_webhook_event_id;
  end if;

  -- Last: the pending row stays locked only until this transaction commits.
  if applied then
    perform private.holdings_request_aggregate(v_user_id);
  end if;
end;
$$;
revoke all on function private.holdings_finish_account_sync(uuid, timestamptz, jsonb, uuid, integer)
  from public, anon, authenticated;
grant execute on function private.holdings_finish_account_sync(uuid, timestamptz, jsonb, uuid, integer)
  to service_role;
