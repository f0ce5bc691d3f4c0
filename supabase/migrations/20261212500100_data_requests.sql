-- Data requests: apps ask the fleet to download the candles of a market and period.
-- * A data_requests row inserted through PostgREST becomes one 'data.download' job; the
--   fleet downloads with the code of `tradefleet data download` into public.candles and
--   reports status, progress, candles stored, gaps and errors on the row (Realtime
--   publishes it). Owned by worker.data.
-- * At most plans.features.data_requests_per_month requests per user and calendar month
--   (UTC; default 5); the error names the plan that lifts it.

-- Tables and indexes -----------------------------------------------------------------------

create table public.data_requests (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  exchange text not null default 'binance'
    constraint data_requests_exchange_format check (exchange ~ '^[a-z0-9_]{1,40}$'),
  trading_pair text not null
    constraint data_requests_trading_pair_format check (trading_pair ~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$'),
  timeframe text not null
    constraint data_requests_timeframe_supported check (timeframe in ('1m', '5m', '15m', '30m', '1h', '4h', '1d')),
  start_date timestamptz not null,
  end_date timestamptz,
  status text not null default 'queued'
    constraint data_requests_status_known check (status in ('queued', 'running', 'completed', 'failed')),
  progress numeric(5, 4) not null default 0 check (progress between 0 and 1),
  candles_stored integer,
  missing_candles integer,
  gaps jsonb,
  error text,
  started_at timestamptz,
  finished_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint data_requests_period_ordered check (end_date is null or end_date > start_date)
);

create index data_requests_user_id_idx on public.data_requests (user_id, created_at desc);

update public.plans
   set features = features || jsonb_build_object('data_requests_per_month',
                                                 case name when 'Free' then 5 when 'Pro' then 100 else 1000 end)
 where name in ('Free', 'Pro', 'Enterprise');

-- Row level security and table grants ------------------------------------------------------

revoke all on public.data_requests from anon, authenticated;
grant all on public.data_requests to service_role;
grant select on public.data_requests to authenticated;
grant insert (id, user_id, exchange, trading_pair, timeframe, start_date, end_date) on public.data_requests to authenticated;
alter table public.data_requests enable row level security;
create policy "Users can read their own data requests" on public.data_requests
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Users can request their own data downloads" on public.data_requests
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "Admins can read every data request" on public.data_requests
  for select to tradefleet_admin using (true);

-- Functions --------------------------------------------------------------------------------

-- data_requests_per_month, naming the plan that lifts it; the platform is not held to it.
create or replace function private.validate_data_request() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_plan public.plans;
  v_limit integer;
  v_count integer;
begin
  if private.is_service() then
    return new;
  end if;
  perform pg_advisory_xact_lock(hashtextextended('data_requests:' || new.user_id::text, 0));
  v_plan := private.current_plan(new.user_id);
  v_limit := coalesce((v_plan.features ->> 'data_requests_per_month')::integer, 5);
  select count(*) into v_count from public.data_requests d
   where d.user_id = new.user_id
     and d.created_at >= date_trunc('month', now() at time zone 'UTC') at time zone 'UTC';
  if v_count >= v_limit then
    perform private.raise_plan_limit(v_plan, 'data_requests_per_month',
                                     format('allows %s data downloads a month', v_limit),
                                     v_count + 1, 'data_requests_plan_data_requests_per_month');
  end if;
  return new;
end;
$$;
revoke all on function private.validate_data_request() from public, anon, authenticated;

-- One job per request (the idempotency key is the request id).
create or replace function private.enqueue_data_request() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform public.enqueue_job('data.download', jsonb_build_object('request_id', new.id), 'default', null, 0, 3,
                             'data.download:' || new.id::text);
  return null;
end;
$$;
revoke all on function private.enqueue_data_request() from public, anon, authenticated;

-- Triggers ---------------------------------------------------------------------------------

create trigger data_requests_updated_at before update on public.data_requests
  for each row execute function private.set_updated_at();
create trigger data_requests_validate_quota before insert on public.data_requests
  for each row execute function private.validate_data_request();
create trigger data_requests_enqueue after insert on public.data_requests
  for each row execute function private.enqueue_data_request();

-- Realtime ---------------------------------------------------------------------------------

alter publication supabase_realtime add table public.data_requests;
