-- API usage of an organisation's keys, readable by its owners and admins.
-- * Who sees a usage row is decided by its key: the caller's own keys, and the keys of
--   the organisations where the caller is an owner or admin. Members, read_only members
--   and outsiders see none of an organisation's usage.
-- * The rollup rows of an organisation's key carry the paying owner of the time in
--   user_id (whose plan and credits the calls used); visibility does not follow user_id,
--   so a paying owner who hands the organisation over and leaves no longer sees it.
-- * The key ids are read once per statement (an init plan over a definer function), so a
--   policy costs one index lookup of the caller's memberships and keys, whatever the
--   number of rows. Realtime applies the same policies to each subscriber, so the live
--   updates of the rollups (already in the publication) follow them.

-- ======================================================================================
-- Row level security
-- ======================================================================================

-- The caller's keys and the keys of the organisations the caller owns or administers.
create or replace function private.api_usage_key_ids() returns uuid[]
language sql stable security definer
set search_path = ''
as $$
  select coalesce(array_agg(k.id), '{}')
    from public.api_keys k
   where k.user_id = (select auth.uid())
      or k.organisation_id = any (private.organisation_ids('admin'))
$$;
revoke all on function private.api_usage_key_ids() from public, anon;
grant execute on function private.api_usage_key_ids() to authenticated, service_role;

drop policy "Owners can read their keys' usage per minute" on public.api_usage_minutes;
drop policy "Owners can read their keys' usage per day" on public.api_usage_days;
create policy "Key owners and organisation admins can read usage per minute" on public.api_usage_minutes
  for select to authenticated using (key_id = any ((select private.api_usage_key_ids())::uuid[]));
create policy "Key owners and organisation admins can read usage per day" on public.api_usage_days
  for select to authenticated using (key_id = any ((select private.api_usage_key_ids())::uuid[]));

drop function private.api_usage_visible(uuid);
