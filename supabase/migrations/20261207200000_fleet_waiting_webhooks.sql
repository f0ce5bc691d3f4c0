-- Webhook events that cannot apply yet wait for their predecessor instead of ending ignored.
--
-- Providers deliver at least once and in any order: a refund may arrive before its payment,
-- a disconnect before its connect. The handler of such an event sets it 'waiting' with the
-- keys of what it waits for in waiting_for (provider-side references, our ids). When the
-- predecessor is applied, its handler wakes the events waiting for any of its keys
-- (status back to 'received'); the owning area's trigger enqueues them again. Advisory
-- locks on the keys (worker/inbox.py lock_keys) serialise an event deciding to wait with
-- the wake of its predecessor. A periodic sweep of the owning capability retries waiting
-- events (a backstop) and ends those still unmatched after the capability's documented
-- wait as 'ignored' with a reason. worker/inbox.py speaks this SQL.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

alter table public.webhook_events
  drop constraint webhook_events_status_known,
  add constraint webhook_events_status_known
    check (status in ('received', 'processing', 'processed', 'failed', 'ignored', 'waiting')),
  add column waiting_for text[],
  add constraint webhook_events_waiting_names_keys
    check (status <> 'waiting' or cardinality(waiting_for) > 0);

create index webhook_events_waiting_idx on public.webhook_events using gin (waiting_for)
  where status = 'waiting';
create index webhook_events_waiting_since_idx on public.webhook_events (provider, received_at)
  where status = 'waiting';
