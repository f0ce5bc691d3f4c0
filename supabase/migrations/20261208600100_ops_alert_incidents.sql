-- Ops: operator alerts. The fleet's periodic job ops.alerts (worker/ops/alerts.py)
-- evaluates the alert rules and keeps one row here per incident: opened when a rule starts
-- firing for a key (a worker, a queue, a job kind, a provider, a service), announced once
-- to the operators' channel, resolved (with a recovery message) when the rule stops
-- firing. The partial unique index allows one open incident per rule and key, and the
-- evaluator works under a transaction-level advisory lock, so several workers and
-- restarts never announce an incident twice. Admins read; only the service role writes.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.alert_incidents (
  id bigint generated always as identity primary key,
  rule text not null constraint alert_incidents_rule_format check (rule ~ '^[a-z][a-z_]{0,63}$'),
  key text not null default '' constraint alert_incidents_key_length check (char_length(key) <= 200),
  summary text not null constraint alert_incidents_summary_length check (char_length(summary) <= 2000),
  details jsonb not null default '{}',
  opened_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  -- When the alert reached the operators' channel (null: not yet, it is tried again).
  notified_at timestamptz,
  resolved_at timestamptz,
  -- When the recovery message reached the channel (null with resolved_at: no channel).
  recovery_notified_at timestamptz
);

create unique index alert_incidents_open_idx on public.alert_incidents (rule, key) where resolved_at is null;
create index alert_incidents_opened_at_idx on public.alert_incidents (opened_at desc);

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

revoke all on public.alert_incidents from anon, authenticated;
grant all on public.alert_incidents to service_role;
grant select on public.alert_incidents to authenticated;
alter table public.alert_incidents enable row level security;
create policy "Admins can read alert incidents" on public.alert_incidents
  for select to tradefleet_admin using ((select private.is_admin()));
