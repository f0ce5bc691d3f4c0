-- Platform: the webhook inbox, the job queue, worker registrations and bot leases.
-- Only the fleet (service role) writes here; admins may read for operations.

create table public.webhook_events (
  id uuid primary key default gen_random_uuid(),
  provider text not null constraint webhook_events_provider_known
    check (provider in ('snaptrade', 'stripe', 'paystack', 'tripay', 'tradingview', 'alpaca')),
  event_id text not null,
  event_type text not null,
  payload jsonb not null,
  status text not null default 'received' constraint webhook_events_status_known
    check (status in ('received', 'processing', 'processed', 'failed', 'ignored')),
  attempts integer not null default 0,
  error text,
  occurred_at timestamptz,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  constraint webhook_events_once_per_provider_event unique (provider, event_id)
);
create index webhook_events_pending_idx on public.webhook_events (received_at) where status in ('received', 'failed');

create table public.workers (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  host text not null,
  pid integer not null,
  version text not null,
  queues text[] not null default '{default}',
  capacity integer not null default 1000 constraint workers_capacity_positive check (capacity > 0),
  status text not null default 'running' constraint workers_status_known
    check (status in ('running', 'draining', 'stopped', 'dead')),
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  stopped_at timestamptz,
  metadata jsonb not null default '{}'
);
create index workers_alive_idx on public.workers (heartbeat_at) where status in ('running', 'draining');

create table public.jobs (
  -- bigint identity: claim order and insert speed matter more here than opaque ids.
  id bigint generated always as identity primary key,
  queue text not null default 'default',
  kind text not null constraint jobs_kind_format check (kind ~ '^[a-z][a-z0-9_.]{0,63}$'),
  payload jsonb not null default '{}',
  status text not null default 'queued' constraint jobs_status_known
    check (status in ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
  priority integer not null default 0,
  run_at timestamptz not null default now(),
  attempts integer not null default 0,
  max_attempts integer not null default 5 constraint jobs_max_attempts_positive check (max_attempts > 0),
  idempotency_key text constraint jobs_idempotency_key_unique unique,
  locked_by uuid references public.workers (id) on delete set null,
  locked_until timestamptz,
  last_error text,
  result jsonb,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now()
);
create index jobs_claim_idx on public.jobs (queue, priority desc, run_at, id) where status = 'queued';
create index jobs_running_idx on public.jobs (locked_until) where status = 'running';
create index jobs_locked_by_idx on public.jobs (locked_by);
create index jobs_kind_status_idx on public.jobs (kind, status);

create table public.bot_leases (
  bot_id uuid primary key references public.bots (id) on delete cascade,
  worker_id uuid references public.workers (id) on delete set null,
  -- Grows on every takeover; writes made for the bot carry it (fencing).
  epoch bigint not null default 1,
  acquired_at timestamptz not null default now(),
  renewed_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index bot_leases_worker_id_idx on public.bot_leases (worker_id);
create index bot_leases_expires_idx on public.bot_leases (expires_at);

-- Fencing: an order or trade written for a bot must carry the bot's current lease epoch.
-- A worker that lost its lease (paused, partitioned, killed and replaced) cannot write.
create or replace function private.check_lease_epoch() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_epoch bigint;
begin
  if new.lease_epoch is null then
    return new;
  end if;
  select l.epoch into v_epoch from public.bot_leases l where l.bot_id = new.bot_id;
  if v_epoch is distinct from new.lease_epoch then
    raise exception 'stale lease epoch % for bot % (current %)', new.lease_epoch, new.bot_id, v_epoch
      using errcode = 'serialization_failure', constraint = 'bot_leases_fencing';
  end if;
  return new;
end;
$$;
revoke all on function private.check_lease_epoch() from public, anon, authenticated;
create trigger orders_check_lease_epoch before insert or update on public.orders
  for each row execute function private.check_lease_epoch();
create trigger trades_check_lease_epoch before insert or update on public.trades
  for each row execute function private.check_lease_epoch();

revoke all on public.webhook_events, public.workers, public.jobs, public.bot_leases from anon, authenticated;
grant all on public.webhook_events, public.workers, public.jobs, public.bot_leases to service_role;
grant select on public.webhook_events, public.workers, public.jobs, public.bot_leases to authenticated;

alter table public.webhook_events enable row level security;
alter table public.workers enable row level security;
alter table public.jobs enable row level security;
alter table public.bot_leases enable row level security;

create policy "Admins can read webhook events" on public.webhook_events
  for select to tradefleet_admin using (true);
create policy "Admins can read workers" on public.workers
  for select to tradefleet_admin using (true);
create policy "Admins can read jobs" on public.jobs
  for select to tradefleet_admin using (true);
create policy "Admins can read bot leases" on public.bot_leases
  for select to tradefleet_admin using (true);
