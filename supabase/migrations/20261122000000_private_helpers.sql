-- Helpers shared by every area: the private schema (never exposed through the API),
-- updated_at maintenance and the caller's application role read from the JWT.

create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to anon, authenticated, service_role;

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

-- True for the service role (the worker fleet and Edge Functions) and direct superuser
-- sessions such as migrations; false for anon and authenticated API requests.
create or replace function private.is_service() returns boolean
language sql stable
set search_path = ''
as $$
  select current_user not in ('anon', 'authenticated')
$$;

revoke all on function private.set_updated_at(), private.app_role(), private.is_admin(), private.is_service() from public;
grant execute on function private.app_role(), private.is_admin(), private.is_service() to anon, authenticated, service_role;
