-- Private helpers shared by every area: the tradefleet_admin role, the private schema
-- (never exposed through the API), updated_at maintenance and the caller's role read
-- from the JWT. Owned by no worker package; every area builds on it.

-- Admins get a database role of their own, set in their JWT by the custom access token
-- hook (identity). Policies for everyone else then stay simple equality filters on indexed
-- columns; an `or is_admin()` in every policy would keep the planner off those indexes.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'tradefleet_admin') then
    create role tradefleet_admin nologin inherit;
  end if;
end
$$;

grant authenticated to tradefleet_admin;
grant tradefleet_admin to authenticator;
grant usage on schema public to tradefleet_admin;
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to anon, authenticated, service_role;
grant usage on schema private to tradefleet_admin;

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

create or replace function private.set_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

-- The application role (user, provider, admin) comes from app_metadata, which only the
-- service can write; user_metadata is editable by users and never trusted.
create or replace function private.app_role() returns text
language sql stable
set search_path = ''
as $$
  select coalesce(auth.jwt() -> 'app_metadata' ->> 'role', 'user')
$$;

create or replace function private.is_admin() returns boolean
language sql stable
set search_path = ''
as $$
  select coalesce(auth.jwt() -> 'app_metadata' ->> 'role', '') = 'admin'
$$;

-- True for the service role (the worker fleet and Edge Functions) and direct sessions such
-- as migrations; false for requests from apps (anon, users, admins). Inside a security
-- definer function current_user is the owner, so the request's JWT role decides there:
-- PostgREST sets it from the verified token, and direct connections carry none.
create or replace function private.is_service() returns boolean
language sql stable
set search_path = ''
as $$
  select current_user not in ('anon', 'authenticated', 'tradefleet_admin')
     and coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', 'service_role')
         = 'service_role'
$$;

revoke all on function private.set_updated_at(), private.app_role(), private.is_admin(), private.is_service() from public;
grant execute on function private.app_role(), private.is_admin(), private.is_service() to anon, authenticated, service_role;
