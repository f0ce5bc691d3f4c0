-- Private: an admin is an admin now, not when the token was issued.
-- private.is_admin() trusted the JWT's app_metadata alone, so a token issued before its
-- admin was demoted or deactivated still passed the admin checks of the ledger and the
-- strategy functions until it expired. It now also needs the caller's profile to be an
-- active admin, as private.require_admin() does.

create or replace function private.is_admin() returns boolean
language sql stable
set search_path = ''
as $$
  select coalesce(auth.jwt() -> 'app_metadata' ->> 'role', '') = 'admin'
     and exists (select 1 from public.profiles p
                  where p.id = (select auth.uid()) and p.role = 'admin' and p.is_active)
$$;

revoke all on function private.is_admin() from public;
grant execute on function private.is_admin() to anon, authenticated, service_role;
