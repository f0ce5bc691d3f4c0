-- Admin actions with an audit trail. Every action an operator takes on the platform goes
-- through a security definer function that first calls private.require_admin() and then
-- writes one row to admin_audit_log (who, what, which target, why, the state before and
-- after). Admins read the log; nobody writes it directly, not even the service role.
-- This migration holds the log, the admin check and the role changes (grant or revoke
-- the provider role); strategy verification lives with the bots, job retry and discard
-- with the fleet.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.admin_audit_log (
  id uuid primary key default gen_random_uuid(),
  -- The admin's user id; null when the service role acted (the fleet, a migration, psql).
  actor_id uuid,
  actor_role text not null constraint admin_audit_log_actor_role_known check (actor_role in ('admin', 'service_role')),
  action text not null constraint admin_audit_log_action_format check (action ~ '^[a-z][a-z_]{0,63}$'),
  target_type text not null constraint admin_audit_log_target_type_format check (target_type ~ '^[a-z][a-z_]{0,63}$'),
  target_id text not null constraint admin_audit_log_target_id_length check (char_length(target_id) <= 200),
  reason text constraint admin_audit_log_reason_length check (char_length(reason) <= 1000),
  before jsonb not null default '{}',
  after jsonb not null default '{}',
  at timestamptz not null default clock_timestamp(),
  constraint admin_audit_log_actor_matches_role check ((actor_role = 'admin') = (actor_id is not null))
);

create index admin_audit_log_at_idx on public.admin_audit_log (at desc);
create index admin_audit_log_target_idx on public.admin_audit_log (target_type, target_id, at desc);
create index admin_audit_log_actor_idx on public.admin_audit_log (actor_id, at desc);

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

-- Read by admins (through the policy) and the service role; written only by the definer
-- functions below, which run as the table's owner.
revoke all on public.admin_audit_log from anon, authenticated, service_role;
grant select on public.admin_audit_log to authenticated, service_role;
alter table public.admin_audit_log enable row level security;
create policy "Admins can read the audit log" on public.admin_audit_log
  for select to tradefleet_admin using (true);

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

-- The admin check of every admin function. The service role passes (it answers for
-- itself; returns null). Anyone else passes only with all three of: the database role
-- the access token hook gives admins (tradefleet_admin), app_metadata.role = 'admin' in
-- the same verified token, and a profile that is an active admin now. The last one
-- refuses a token issued before the admin role was revoked (tokens live until they
-- expire). Returns the admin's user id; raises insufficient_privilege otherwise.
create or replace function private.require_admin() returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
  v_uid uuid := (select auth.uid());
begin
  if private.is_service() then
    return null;
  end if;
  if v_uid is null
     or coalesce(v_claims ->> 'role', '') <> 'tradefleet_admin'
     or coalesce(v_claims -> 'app_metadata' ->> 'role', '') <> 'admin'
     or not exists (select 1 from public.profiles p
                     where p.id = v_uid and p.role = 'admin' and p.is_active) then
    raise exception 'only admins may do this' using errcode = 'insufficient_privilege';
  end if;
  return v_uid;
end;
$$;

revoke all on function private.require_admin() from public, anon, authenticated;

-- A reason an admin gives for an action: required, at most 1000 characters.
create or replace function private.admin_check_reason(p_reason text) returns void
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_reason is null or btrim(p_reason) = '' then
    raise exception 'this action needs a reason' using errcode = 'check_violation',
      constraint = 'admin_audit_log_reason_required';
  end if;
  if char_length(p_reason) > 1000 then
    raise exception 'a reason is at most 1000 characters' using errcode = 'check_violation',
      constraint = 'admin_audit_log_reason_length';
  end if;
end;
$$;

revoke all on function private.admin_check_reason(text) from public, anon, authenticated;

-- One row of the audit log, written by the admin functions (p_actor from require_admin).
create or replace function private.admin_audit(
  p_actor uuid,
  p_action text,
  p_target_type text,
  p_target_id text,
  p_reason text,
  p_before jsonb,
  p_after jsonb
) returns public.admin_audit_log
language sql
security definer
set search_path = ''
as $$
  insert into public.admin_audit_log (actor_id, actor_role, action, target_type, target_id, reason, before, after)
  values (p_actor, case when p_actor is null then 'service_role' else 'admin' end, p_action, p_target_type,
          p_target_id, p_reason, coalesce(p_before, '{}'), coalesce(p_after, '{}'))
  returning *;
$$;

revoke all on function private.admin_audit(uuid, text, text, text, text, jsonb, jsonb) from public, anon, authenticated;

-- Grant or revoke a user's application role. Admins move users between 'user' and
-- 'provider'; the admin role itself is granted and revoked only by the service role, so
-- one admin account (or a stolen admin session) cannot mint admins or lock the others
-- out. The role lives in auth.users.app_metadata (the profile follows through
-- on_auth_user_updated); the user's next token carries it. Setting the role a user
-- already has changes nothing and writes no audit row.
create or replace function public.admin_set_user_role(p_user_id uuid, p_role text, p_reason text)
returns public.profiles
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_actor uuid := private.require_admin();
  v_before public.profiles;
  v_after public.profiles;
begin
  if p_role is null or p_role not in ('user', 'provider', 'admin') then
    raise exception 'a role is user, provider or admin' using errcode = 'check_violation',
      constraint = 'profiles_role_known';
  end if;
  perform private.admin_check_reason(p_reason);
  select * into v_before from public.profiles p where p.id = p_user_id for update;
  if not found then
    raise exception 'no such user: %', p_user_id using errcode = 'no_data_found';
  end if;
  if v_actor is not null and (p_role = 'admin' or v_before.role = 'admin') then
    raise exception 'only the service role grants or revokes the admin role' using errcode = 'insufficient_privilege';
  end if;
  if v_before.role = p_role then
    return v_before;
  end if;
  update auth.users u
     set raw_app_meta_data = coalesce(u.raw_app_meta_data, '{}') || jsonb_build_object('role', p_role)
   where u.id = p_user_id;
  select * into v_after from public.profiles p where p.id = p_user_id;
  perform private.admin_audit(v_actor, 'set_user_role', 'user', p_user_id::text, p_reason,
                              jsonb_build_object('role', v_before.role), jsonb_build_object('role', v_after.role));
  return v_after;
end;
$$;

revoke execute on function public.admin_set_user_role(uuid, text, text) from public, anon;
grant execute on function public.admin_set_user_role(uuid, text, text) to authenticated, service_role;
