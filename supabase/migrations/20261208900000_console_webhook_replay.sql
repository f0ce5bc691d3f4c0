-- Console: an operator replays a failed webhook event. The event goes back to 'received'
-- and its owning area enqueues its job again through the same triggers that requeue a
-- woken waiting event (billing.webhook for payment providers, the holdings job of a
-- SnapTrade event); the replay is audited with the event's state before and after.

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

-- What the audit log keeps of a webhook event.
create or replace function private.webhook_event_audit_state(p_event public.webhook_events) returns jsonb
language sql immutable
set search_path = ''
as $$
  select jsonb_build_object('status', p_event.status, 'attempts', p_event.attempts, 'error', p_event.error,
                            'processed_at', p_event.processed_at)
$$;

revoke all on function private.webhook_event_audit_state(public.webhook_events) from public, anon, authenticated;

-- Replay a failed event: it is received again and its job enqueued again. Its attempts and
-- last error stay in the audit log. Refused: any other state, a provider no job processes
-- (nothing would pick the event up), and an event whose job is still queued or running
-- (that job's own retry is the way; a replay would run the event twice).
create or replace function public.admin_replay_webhook_event(p_event_id uuid, p_reason text)
returns public.webhook_events
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_actor uuid := private.require_admin();
  v_before public.webhook_events;
  v_after public.webhook_events;
begin
  perform private.admin_check_reason(p_reason);
  select * into v_before from public.webhook_events e where e.id = p_event_id for update;
  if not found then
    raise exception 'no such webhook event: %', p_event_id using errcode = 'no_data_found';
  end if;
  if v_before.status <> 'failed' then
    raise exception 'webhook event % is %; only failed events are replayed', p_event_id, v_before.status
      using errcode = 'check_violation', constraint = 'webhook_events_replay_failed';
  end if;
  if v_before.provider not in ('stripe', 'paystack', 'tripay', 'snaptrade') then
    raise exception 'webhook event % is from %, which no job processes; it cannot be replayed', p_event_id, v_before.provider
      using errcode = 'check_violation', constraint = 'webhook_events_replay_processed_provider';
  end if;
  if exists (select 1 from public.jobs j
              where j.payload ->> 'webhook_event_id' = p_event_id::text and j.status in ('queued', 'running')) then
    raise exception 'webhook event % still has a job waiting or running; retry that job instead', p_event_id
      using errcode = 'check_violation', constraint = 'webhook_events_replay_job_pending';
  end if;
  update public.webhook_events e
     set status = 'received', processed_at = null
   where e.id = p_event_id
  returning * into v_after;
  perform private.admin_audit(v_actor, 'replay_webhook_event', 'webhook_event', p_event_id::text, p_reason,
                              private.webhook_event_audit_state(v_before),
                              private.webhook_event_audit_state(v_after));
  return v_after;
end;
$$;

revoke execute on function public.admin_replay_webhook_event(uuid, text) from public, anon;
grant execute on function public.admin_replay_webhook_event(uuid, text) to authenticated, service_role;

-- ======================================================================================
-- Triggers
-- ======================================================================================

-- A replayed failed event (failed -> received, only admin_replay_webhook_event does that)
-- is enqueued again like a woken waiting one.
drop trigger webhook_events_requeue_billing on public.webhook_events;
create trigger webhook_events_requeue_billing after update of status on public.webhook_events
  for each row when (old.status in ('waiting', 'failed') and new.status = 'received'
                     and new.provider in ('stripe', 'paystack', 'tripay'))
  execute function private.billing_requeue_webhook_event();

drop trigger webhook_events_requeue_snaptrade on public.webhook_events;
create trigger webhook_events_requeue_snaptrade after update of status on public.webhook_events
  for each row when (old.status in ('waiting', 'failed') and new.status = 'received' and new.provider = 'snaptrade')
  execute function private.holdings_requeue_snaptrade_event();
