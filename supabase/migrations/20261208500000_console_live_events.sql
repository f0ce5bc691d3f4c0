-- The operator console: the ledger audit for admins, and the events that keep the console
-- live. Each console process listens on one channel, tradefleet_console, and redraws the
-- part of a page the payload names (queue, webhooks, bots, fleet, audit). The triggers
-- fire once per statement, not per row, so a claim of a hundred jobs sends one event, and
-- Postgres folds identical notifications of one transaction into one.

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- The ledger's integrity checks (credit_audit) for admins; the service role calls
-- credit_audit itself. No rows means the ledger balances.
create or replace function public.admin_credit_audit()
returns table (rule text, account_id uuid, detail text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_admin();
  return query select a.rule, a.account_id, a.detail from public.credit_audit() a;
end;
$$;

revoke execute on function public.admin_credit_audit() from public, anon;
grant execute on function public.admin_credit_audit() to authenticated, service_role;

-- One notification per statement on tradefleet_console; the payload is the console's
-- topic, given as the trigger's argument.
create or replace function private.console_notify() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('tradefleet_console', tg_argv[0]);
  return null;
end;
$$;

revoke all on function private.console_notify() from public, anon, authenticated;

-- ======================================================================================
-- Triggers
-- ======================================================================================

-- Only changes an operator sees: a worker's heartbeat extending its jobs' locks (an update
-- of locked_until alone) stays quiet, so the fleet's busiest statements send nothing.
create trigger jobs_console_notify
  after insert or update of status, last_error or delete on public.jobs
  for each statement execute function private.console_notify('queue');

create trigger webhook_events_console_notify
  after insert or update of status, error or delete on public.webhook_events
  for each statement execute function private.console_notify('webhooks');

create trigger bots_console_notify
  after insert or update of status or delete on public.bots
  for each statement execute function private.console_notify('bots');

create trigger workers_console_notify
  after insert or update of status or delete on public.workers
  for each statement execute function private.console_notify('fleet');

create trigger admin_audit_log_console_notify
  after insert on public.admin_audit_log
  for each statement execute function private.console_notify('audit');
