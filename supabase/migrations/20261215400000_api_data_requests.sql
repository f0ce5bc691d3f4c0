-- Data requests through the public API (supabase/functions/api: POST, GET /v1/data-requests
-- and GET /v1/data-requests/{id}), the same data_requests rows apps insert.
-- * Scopes: data:read and data:write join the list, in private.api_scopes() and as the
--   constant of api_keys_scopes_known (pgTAP api_keys checks the two agree).
-- * data_requests.idempotency_key: a retried request names the key of the first; one
--   request per user and key (data_requests_idempotency_key_unique). A retry is not held
--   to the monthly quota: validate_data_request lets a row whose key is already used
--   through, and the unique constraint refuses it, so a retry never adds a request (the
--   api function answers it with the first request).

-- Tables and indexes -----------------------------------------------------------------------

alter table public.data_requests add column idempotency_key text
  constraint data_requests_idempotency_key_length check (char_length(idempotency_key) between 1 and 200);
alter table public.data_requests
  add constraint data_requests_idempotency_key_unique unique (user_id, idempotency_key);

alter table public.api_keys drop constraint api_keys_scopes_known;
alter table public.api_keys add constraint api_keys_scopes_known
  check (cardinality(scopes) between 1 and 16
         and scopes <@ '{backtests:read,backtests:write,bots:read,bots:write,data:read,data:write,portfolio:read,signals:write,trades:read}'::text[]);

-- Row level security and table grants ------------------------------------------------------

grant insert (idempotency_key) on public.data_requests to authenticated;

-- Functions --------------------------------------------------------------------------------

create or replace function private.api_scopes() returns text[]
language sql immutable
set search_path = ''
as $$
  select array['backtests:read', 'backtests:write', 'bots:read', 'bots:write', 'data:read', 'data:write',
               'portfolio:read', 'signals:write', 'trades:read']::text[]
$$;
revoke all on function private.api_scopes() from public, anon, authenticated;

-- data_requests_per_month, naming the plan that lifts it; the platform is not held to it,
-- nor is a retry (its key already used: the unique constraint refuses the row).
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
  if new.idempotency_key is not null
     and exists (select 1 from public.data_requests d
                  where d.user_id = new.user_id and d.idempotency_key = new.idempotency_key) then
    return new;
  end if;
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
