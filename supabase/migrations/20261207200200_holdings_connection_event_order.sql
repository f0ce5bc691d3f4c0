-- SnapTrade connection events in any order end as in the order they happened.
--
-- A connection's status follows the provider's events by their time (eventTimestamp, stored
-- as webhook_events.occurred_at), not their arrival: brokerage_connections.status_event_at
-- is the time of the event that set the status, and an older event no longer changes it
-- (CONNECTION_FIXED then a late CONNECTION_BROKEN that happened before it stays active).
-- CONNECTION_FIXED / UPDATED / ADDED make a broken connection active again. Deleted is
-- final. A CONNECTION_BROKEN or CONNECTION_DELETED naming a connection not known yet (it
-- arrived before CONNECTION_ADDED) waits for it (public.webhook_events.status = 'waiting',
-- key 'connection:<brokerage authorization id>'); the worker wakes it when the connection
-- is established and the trigger below queues its job again.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

alter table public.brokerage_connections add column status_event_at timestamptz;

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- A provider's status event for a connection: 'active', 'broken' or 'deleted' at
-- p_occurred_at. Returns the connection (none: not known yet) and whether the event
-- changed its status: not when it is deleted, nor when a later event already set it.
-- Deleting a connection deletes its accounts (and their positions).
create or replace function private.holdings_connection_event(
  p_provider text, p_provider_connection_id text, p_status text, p_reason text, p_occurred_at timestamptz,
  out id uuid, out user_id uuid, out applied boolean)
returns setof record
language plpgsql
set search_path = ''
as $$
declare
  v_conn public.brokerage_connections;
begin
  if p_status is null or p_status not in ('active', 'broken', 'deleted') then
    raise exception 'unknown connection status %', p_status using errcode = 'invalid_parameter_value';
  end if;
  for v_conn in select * from public.brokerage_connections c
                 where c.provider = p_provider and c.provider_connection_id = p_provider_connection_id
                 for update loop
    id := v_conn.id;
    user_id := v_conn.user_id;
    applied := v_conn.status <> 'deleted'
               and (p_status = 'deleted' or p_occurred_at is null or v_conn.status_event_at is null
                    or p_occurred_at >= v_conn.status_event_at);
    if applied then
      update public.brokerage_connections c
         set status = p_status,
             status_reason = case when p_status = 'active' then null else p_reason end,
             status_event_at = greatest(c.status_event_at, p_occurred_at)
       where c.id = v_conn.id;
      if p_status = 'deleted' then
        delete from public.brokerage_accounts a where a.connection_id = v_conn.id;
      end if;
    end if;
    return next;
  end loop;
end;
$$;

revoke all on function private.holdings_connection_event(text, text, text, text, timestamptz)
  from public, anon, authenticated;
grant execute on function private.holdings_connection_event(text, text, text, text, timestamptz) to service_role;

-- A waiting SnapTrade event woken by its predecessor: its job again (one per wake: the key
-- carries the attempts it has had), as holdings_enqueue_snaptrade_event builds it.
create or replace function private.holdings_requeue_snaptrade_event() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_kind text;
begin
  v_kind := case new.event_type
    when 'CONNECTION_ADDED' then 'holdings.connection_added'
    when 'CONNECTION_UPDATED' then 'holdings.connection_added'
    when 'CONNECTION_FIXED' then 'holdings.connection_added'
    when 'ACCOUNT_HOLDINGS_UPDATED' then 'holdings.sync_account'
    when 'CONNECTION_BROKEN' then 'holdings.connection_status'
    when 'CONNECTION_DELETED' then 'holdings.connection_status'
    else null end;
  if v_kind is null then
    return null;
  end if;
  insert into public.jobs (queue, kind, payload, idempotency_key)
  values ('default', v_kind,
          jsonb_build_object(
            'webhook_event_id', new.id,
            'event_type', new.event_type,
            'provider_user_id', new.payload ->> 'userId',
            'provider_account_id', new.payload ->> 'accountId',
            'provider_connection_id', coalesce(new.payload ->> 'connectionId', new.payload ->> 'brokerageAuthorizationId'),
            'occurred_at', new.occurred_at),
          'snaptrade-webhook:' || new.event_id || ':woken:' || new.attempts)
  on conflict (idempotency_key) do nothing;
  perform pg_notify('tradefleet_jobs', 'default');
  return null;
end;
$$;

revoke all on function private.holdings_requeue_snaptrade_event() from public, anon, authenticated;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger webhook_events_requeue_snaptrade after update of status on public.webhook_events
  for each row when (old.status = 'waiting' and new.status = 'received' and new.provider = 'snaptrade')
  execute function private.holdings_requeue_snaptrade_event();
