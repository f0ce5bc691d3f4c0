-- Ops: the health of the services the platform depends on. The fleet's periodic job
-- ops.health (worker/ops/health.py) checks each configured service every 30 seconds
-- (the database, the exchanges bots use, SnapTrade, Alpaca, Stripe, Paystack, Tripay,
-- Telegram, Discord) and records each outcome through public.record_service_check, which
-- keeps the history (service_checks), the current state (service_status), decides
-- healthy / degraded / down and notifies channel tradefleet_service_health when a
-- service's status changes. Admins read both tables and public.admin_service_health();
-- only the service role writes.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

-- One row per check: the history (pruned by fleet.prune, SERVICE_CHECKS_KEEP_S).
create table public.service_checks (
  id bigint generated always as identity primary key,
  service text not null constraint service_checks_service_format check (service ~ '^[a-z][a-z0-9_]{0,31}$'),
  -- What was checked within the service (an exchange id); '' when the service is one thing.
  target text not null default '' constraint service_checks_target_length check (char_length(target) <= 200),
  status text not null constraint service_checks_status_known check (status in ('healthy', 'degraded', 'down')),
  ok boolean not null,
  latency_ms numeric constraint service_checks_latency_positive check (latency_ms >= 0),
  error text constraint service_checks_error_length check (char_length(error) <= 1000),
  checked_at timestamptz not null default now()
);

create index service_checks_service_idx on public.service_checks (service, target, checked_at desc);
create index service_checks_checked_at_idx on public.service_checks (checked_at);

-- The current state of each service: its last check, consecutive failures and when its
-- status last changed.
create table public.service_status (
  service text not null,
  target text not null default '',
  status text not null constraint service_status_status_known check (status in ('healthy', 'degraded', 'down')),
  latency_ms numeric,
  error text,
  failures integer not null default 0 constraint service_status_failures_positive check (failures >= 0),
  checked_at timestamptz not null,
  changed_at timestamptz not null,
  primary key (service, target)
);

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

revoke all on public.service_checks, public.service_status from anon, authenticated;
grant all on public.service_checks, public.service_status to service_role;
grant select on public.service_checks, public.service_status to authenticated;
alter table public.service_checks enable row level security;
alter table public.service_status enable row level security;
create policy "Admins can read service checks" on public.service_checks
  for select to tradefleet_admin using ((select private.is_admin()));
create policy "Admins can read service status" on public.service_status
  for select to tradefleet_admin using ((select private.is_admin()));

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- Record one check of p_service (p_target within it) and return its state. The rules:
--   a success within p_slow_ms                       healthy
--   a success slower than p_slow_ms                  degraded
--   a failure, fewer than p_down_after in a row      degraded
--   p_down_after failures in a row (or more)         down
-- A change of status (or a service seen for the first time) notifies channel
-- tradefleet_service_health with {service, target, status, previous, latency_ms, error,
-- checked_at}. Service role only.
create or replace function public.record_service_check(
  p_service text,
  p_target text,
  p_ok boolean,
  p_latency_ms numeric,
  p_error text,
  p_slow_ms numeric default 2000,
  p_down_after integer default 3
) returns public.service_status
language plpgsql
set search_path = ''
as $$
declare
  v_prev public.service_status;
  v_now public.service_status;
  v_failures integer;
  v_status text;
  v_error text := left(p_error, 1000);
begin
  if not private.is_service() then
    raise exception 'record_service_check is for the fleet only' using errcode = '42501';
  end if;
  if p_service is null or p_service !~ '^[a-z][a-z0-9_]{0,31}$' then
    raise exception 'record_service_check: service must be a short lower-case name' using errcode = '22023';
  end if;
  if p_ok is null then
    raise exception 'record_service_check: ok must be true or false' using errcode = '22023';
  end if;
  if p_latency_ms is not null and (p_latency_ms < 0 or p_latency_ms = 'NaN'::numeric) then
    raise exception 'record_service_check: latency_ms must not be negative' using errcode = '22023';
  end if;
  if p_slow_ms is null or p_slow_ms <= 0 or p_down_after is null or p_down_after < 1 then
    raise exception 'record_service_check: slow_ms must be positive and down_after at least 1'
      using errcode = '22023';
  end if;

  select * into v_prev from public.service_status s
   where s.service = p_service and s.target = coalesce(p_target, '')
     for update;
  v_failures := case when p_ok then 0 else coalesce(v_prev.failures, 0) + 1 end;
  v_status := case
    when not p_ok and v_failures >= p_down_after then 'down'
    when not p_ok then 'degraded'
    when p_latency_ms > p_slow_ms then 'degraded'
    else 'healthy'
  end;

  insert into public.service_checks (service, target, status, ok, latency_ms, error)
  values (p_service, coalesce(p_target, ''), v_status, p_ok, p_latency_ms, v_error);

  insert into public.service_status as s (service, target, status, latency_ms, error, failures, checked_at, changed_at)
  values (p_service, coalesce(p_target, ''), v_status, p_latency_ms, v_error, v_failures, now(), now())
  on conflict (service, target) do update
     set status = excluded.status,
         latency_ms = excluded.latency_ms,
         error = excluded.error,
         failures = excluded.failures,
         checked_at = excluded.checked_at,
         changed_at = case when s.status = excluded.status then s.changed_at else excluded.changed_at end
  returning * into v_now;

  if v_prev.status is distinct from v_status then
    perform pg_notify('tradefleet_service_health', jsonb_build_object(
      'service', p_service, 'target', coalesce(p_target, ''), 'status', v_status,
      'previous', v_prev.status, 'latency_ms', p_latency_ms, 'error', left(v_error, 200),
      'checked_at', v_now.checked_at)::text);
  end if;
  return v_now;
end;
$$;

revoke execute on function public.record_service_check(text, text, boolean, numeric, text, numeric, integer)
  from public, anon, authenticated;
grant execute on function public.record_service_check(text, text, boolean, numeric, text, numeric, integer)
  to service_role;

-- The services' health for the operator console: one row per service and target with its
-- current state and its last 20 checks (newest first). Admins only.
create or replace function public.admin_service_health()
returns table (
  service text,
  target text,
  status text,
  latency_ms numeric,
  error text,
  checked_at timestamptz,
  changed_at timestamptz,
  history jsonb
)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_admin();
  return query
  select s.service, s.target, s.status, s.latency_ms, s.error, s.checked_at, s.changed_at,
         coalesce((select jsonb_agg(jsonb_build_object('status', h.status, 'latency_ms', h.latency_ms,
                                                       'checked_at', h.checked_at) order by h.checked_at desc, h.id desc)
                     from (select c.id, c.status, c.latency_ms, c.checked_at
                             from public.service_checks c
                            where c.service = s.service and c.target = s.target
                            order by c.checked_at desc, c.id desc
                            limit 20) h), '[]'::jsonb)
    from public.service_status s
   order by s.service, s.target;
end;
$$;

revoke execute on function public.admin_service_health() from public, anon;
grant execute on function public.admin_service_health() to authenticated, service_role;
