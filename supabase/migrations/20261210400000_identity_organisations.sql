-- Organisations: a user creates one, invites members by email with a role, invitees accept
-- or decline, members leave, owners and admins remove members and change roles. Bots and
-- strategies may belong to an organisation; its members see and act on them by role.
--
-- - Roles, lowest first: read_only (reads the organisation's bots, strategies, orders,
--   trades and logs), member (also starts, pauses and stops its bots and acts on their
--   positions through stop_bot, close_position and manual_trade), admin (also creates,
--   updates and deletes its bots and strategies and manages members and invitations below
--   owner), owner (everything, including owners and deleting the organisation).
-- - organisations.owner_id is the paying owner: the organisation's bots and strategies are
--   stored under that user (user_id), so they count against the paying owner's plan
--   (max_bots, max_strategies) and their trades are charged to the paying owner's credit
--   account, with no second wallet to keep in step. The paying owner cannot leave, be
--   removed or be demoted, so an organisation always has an owner; deleting the
--   organisation hands its bots and strategies back to them as personal ones.
-- - RLS reads the caller's rows of an indexed membership table (primary key user_id,
--   organisation_id) once per statement, inline in each policy (`(select array(select …
--   where m.user_id = (select auth.uid())))`): as fast as organisation ids carried in JWT
--   claims, and a change of membership takes effect on the next request, which claims
--   could not promise (scripts/bench orgs; docs/architecture.md, Organisations).
-- - The organisation of a bot or strategy is chosen when it is created and never changes.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.organisations (
  id uuid primary key default gen_random_uuid(),
  name text not null constraint organisations_name_length check (char_length(btrim(name)) between 1 and 100),
  owner_id uuid not null references public.profiles (id) on delete cascade,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index organisations_owner_id_idx on public.organisations (owner_id);

create table public.organisation_members (
  user_id uuid not null references public.profiles (id) on delete cascade,
  organisation_id uuid not null references public.organisations (id) on delete cascade,
  role text not null constraint organisation_members_role_known check (role in ('owner', 'admin', 'member', 'read_only')),
  invited_by uuid references public.profiles (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (user_id, organisation_id)
);

create index organisation_members_organisation_id_idx on public.organisation_members (organisation_id, role);
create index organisation_members_invited_by_idx on public.organisation_members (invited_by);

create table public.organisation_invitations (
  id uuid primary key default gen_random_uuid(),
  organisation_id uuid not null references public.organisations (id) on delete cascade,
  email text not null constraint organisation_invitations_email_format
    check (char_length(email) <= 320 and email ~ '^[^@\s]+@[^@\s]+$' and email = lower(email)),
  role text not null constraint organisation_invitations_role_known check (role in ('owner', 'admin', 'member', 'read_only')),
  invited_by uuid references public.profiles (id) on delete set null,
  status text not null default 'pending' constraint organisation_invitations_status_known
    check (status in ('pending', 'accepted', 'declined', 'revoked')),
  created_at timestamptz not null default now(),
  responded_at timestamptz
);

create unique index organisation_invitations_one_pending on public.organisation_invitations (organisation_id, email)
  where status = 'pending';
create index organisation_invitations_email_idx on public.organisation_invitations (email) where status = 'pending';
create index organisation_invitations_invited_by_idx on public.organisation_invitations (invited_by);

alter table public.bots add column organisation_id uuid references public.organisations (id) on delete set null;
alter table public.strategies add column organisation_id uuid references public.organisations (id) on delete set null;
create index bots_organisation_id_idx on public.bots (organisation_id) where organisation_id is not null;
create index strategies_organisation_id_idx on public.strategies (organisation_id) where organisation_id is not null;

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

-- Organisations, memberships and invitations change only through the functions below.
revoke all on public.organisations, public.organisation_members, public.organisation_invitations
  from anon, authenticated;
grant all on public.organisations, public.organisation_members, public.organisation_invitations to service_role;
grant select on public.organisations, public.organisation_members, public.organisation_invitations to authenticated;
grant insert (organisation_id) on public.bots, public.strategies to authenticated;
alter table public.organisations enable row level security;
alter table public.organisation_members enable row level security;
alter table public.organisation_invitations enable row level security;

-- The caller's organisations with at least the given role: one index scan on the
-- membership table. Security definer, so policies on organisation_members can use it
-- without recursing into themselves.
create or replace function private.organisation_rank(p_role text) returns integer
language sql immutable
set search_path = ''
as $$
  select case p_role when 'owner' then 4 when 'admin' then 3 when 'member' then 2 when 'read_only' then 1 end
$$;
revoke all on function private.organisation_rank(text) from public, anon;
grant execute on function private.organisation_rank(text) to authenticated, service_role;

create or replace function private.organisation_ids(p_min_role text default 'read_only') returns uuid[]
language sql stable security definer
set search_path = ''
as $$
  select coalesce(array_agg(m.organisation_id), '{}')
    from public.organisation_members m
   where m.user_id = (select auth.uid())
     and private.organisation_rank(m.role) >= private.organisation_rank(p_min_role)
$$;
revoke all on function private.organisation_ids(text) from public, anon;
grant execute on function private.organisation_ids(text) to authenticated, service_role;

-- The caller's role in one organisation (null for a non-member).
create or replace function private.organisation_role(p_organisation_id uuid) returns text
language sql stable security definer
set search_path = ''
as $$
  select m.role from public.organisation_members m
   where m.user_id = (select auth.uid()) and m.organisation_id = p_organisation_id
$$;
revoke all on function private.organisation_role(uuid) from public, anon;
grant execute on function private.organisation_role(uuid) to authenticated, service_role;

-- The caller's sign-in address, lower case (invitations are addressed to it).
create or replace function private.caller_email() returns text
language sql stable security definer
set search_path = ''
as $$
  select lower(u.email) from auth.users u where u.id = (select auth.uid())
$$;
revoke all on function private.caller_email() from public, anon;
grant execute on function private.caller_email() to authenticated, service_role;

create policy "Members can read their organisations" on public.organisations
  for select to authenticated using (id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid())))::uuid[]));
create policy "Admins can read every organisation" on public.organisations
  for select to tradefleet_admin using (true);
-- Their own rows first: the policies above and below read them through this one, and for
-- those rows the function (the member lists of their organisations) is never called.
create policy "Members can read their organisations' members" on public.organisation_members
  for select to authenticated using (
    user_id = (select auth.uid()) or organisation_id = any ((select private.organisation_ids())::uuid[]));
create policy "Admins can read every organisation member" on public.organisation_members
  for select to tradefleet_admin using (true);
create policy "Organisation admins and invitees can read invitations" on public.organisation_invitations
  for select to authenticated using (
    organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid()) and m.role in ('owner', 'admin')))::uuid[])
    or email = (select private.caller_email()));
create policy "Admins can read every organisation invitation" on public.organisation_invitations
  for select to tradefleet_admin using (true);

-- Bots and strategies of an organisation: read_only and up read them, members update
-- (start, pause, stop: the column guard below keeps them to status), admins and owners
-- create, update and delete. A live bot's exchange key must be the paying owner's own.
create policy "Organisation members can read its bots" on public.bots
  for select to authenticated using (organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid())))::uuid[]));
create policy "Organisation admins can create its bots" on public.bots
  for insert to authenticated with check (
    organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid()) and m.role in ('owner', 'admin')))::uuid[])
    and (strategy_id is null or exists (select 1 from public.strategies s where s.id = strategy_id))
    and (exchange_credential_id is null
         or exists (select 1 from public.exchange_credentials c
                     where c.id = exchange_credential_id and c.user_id = (select auth.uid()) and c.user_id = bots.user_id))
  );
-- Its strategy and exchange key are checked by the guard below when they change: a member
-- pausing a bot need not see the paying owner's strategy or key.
create policy "Organisation members can update its bots" on public.bots
  for update to authenticated using (organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid()) and m.role <> 'read_only'))::uuid[]))
  with check (organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid()) and m.role <> 'read_only'))::uuid[]));
create policy "Organisation admins can delete its bots" on public.bots
  for delete to authenticated using (organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid()) and m.role in ('owner', 'admin')))::uuid[]));

create policy "Organisation members can read its strategies" on public.strategies
  for select to authenticated using (organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid())))::uuid[]));
create policy "Organisation admins can create its strategies" on public.strategies
  for insert to authenticated with check (
    organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid()) and m.role in ('owner', 'admin')))::uuid[])
    and strategy_type in ('custom', 'ai_generated')
  );
create policy "Organisation admins can update its strategies" on public.strategies
  for update to authenticated using (organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid()) and m.role in ('owner', 'admin')))::uuid[]))
  with check (
    organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid()) and m.role in ('owner', 'admin')))::uuid[])
    and strategy_type in ('custom', 'ai_generated')
  );
create policy "Organisation admins can delete its strategies" on public.strategies
  for delete to authenticated using (organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid()) and m.role in ('owner', 'admin')))::uuid[]));

-- What the organisation's bots did: read by every member.
create policy "Organisation members can read its bots' orders" on public.orders
  for select to authenticated using (exists (
    select 1 from public.bots b where b.id = bot_id and b.organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid())))::uuid[])));
create policy "Organisation members can read its bots' trades" on public.trades
  for select to authenticated using (exists (
    select 1 from public.bots b where b.id = bot_id and b.organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid())))::uuid[])));
create policy "Organisation members can read its bots' logs" on public.bot_logs
  for select to authenticated using (exists (
    select 1 from public.bots b where b.id = bot_id and b.organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid())))::uuid[])));
create policy "Organisation members can read its bots' position requests" on public.position_requests
  for select to authenticated using (exists (
    select 1 from public.bots b where b.id = bot_id and b.organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid())))::uuid[])));
create policy "Organisation members can read its bots' protective orders" on public.protective_orders
  for select to authenticated using (exists (
    select 1 from public.bots b where b.id = bot_id and b.organisation_id = any ((select array(select m.organisation_id from public.organisation_members m
                                     where m.user_id = (select auth.uid())))::uuid[])));
grant select (organisation_id) on public.strategies to authenticated;

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- The caller, signed in (not the service, which manages organisations through the table).
create or replace function private.organisation_caller() returns uuid
language plpgsql stable
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if v_uid is null then
    raise exception 'organisations are managed by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'organisations_caller';
  end if;
  return v_uid;
end;
$$;
revoke all on function private.organisation_caller() from public, anon;
grant execute on function private.organisation_caller() to authenticated, service_role;

-- The caller's role in an organisation, at least p_min_role: no_data_found for a
-- non-member (an organisation one does not belong to does not exist for them),
-- insufficient_privilege naming the role needed otherwise.
create or replace function private.organisation_require(p_organisation_id uuid, p_min_role text) returns text
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_role text := private.organisation_role(p_organisation_id);
begin
  if v_role is null then
    raise exception 'no organisation of yours with id %', p_organisation_id
      using errcode = 'no_data_found', constraint = 'organisation_members_member';
  end if;
  if private.organisation_rank(v_role) < private.organisation_rank(p_min_role) then
    raise exception 'this needs the % role in the organisation; yours is %', p_min_role, v_role
      using errcode = 'insufficient_privilege', constraint = 'organisation_members_role_' || p_min_role;
  end if;
  return v_role;
end;
$$;
revoke all on function private.organisation_require(uuid, text) from public, anon, authenticated;

-- create_organisation: the caller becomes its paying owner.
create or replace function public.create_organisation(p_name text) returns public.organisations
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := private.organisation_caller();
  v_org public.organisations;
begin
  if p_name is null or char_length(btrim(p_name)) not between 1 and 100 then
    raise exception 'an organisation''s name has 1 to 100 characters'
      using errcode = 'invalid_parameter_value', constraint = 'organisations_name_length';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('organisations:' || v_uid::text, 0));
  if (select count(*) from public.organisations o where o.owner_id = v_uid) >= 20 then
    raise exception 'a user pays for at most 20 organisations'
      using errcode = 'check_violation', constraint = 'organisations_max_per_owner';
  end if;
  insert into public.organisations (name, owner_id) values (btrim(p_name), v_uid) returning * into v_org;
  insert into public.organisation_members (user_id, organisation_id, role) values (v_uid, v_org.id, 'owner');
  return v_org;
end;
$$;
revoke all on function public.create_organisation(text) from public, anon;
grant execute on function public.create_organisation(text) to authenticated;

-- invite_to_organisation: owners invite any role, admins every role below owner. A second
-- invitation of the same address replaces the pending one.
create or replace function public.invite_to_organisation(p_organisation_id uuid, p_email text, p_role text)
returns public.organisation_invitations
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := private.organisation_caller();
  v_role text;
  v_email text := lower(btrim(p_email));
  v_inv public.organisation_invitations;
begin
  if p_role is null or private.organisation_rank(p_role) is null then
    raise exception 'role must be owner, admin, member or read_only'
      using errcode = 'invalid_parameter_value', constraint = 'organisation_invitations_role_known';
  end if;
  if v_email is null or char_length(v_email) > 320 or v_email !~ '^[^@\s]+@[^@\s]+$' then
    raise exception 'an invitation goes to an email address'
      using errcode = 'invalid_parameter_value', constraint = 'organisation_invitations_email_format';
  end if;
  v_role := private.organisation_require(p_organisation_id, 'admin');
  if p_role = 'owner' and v_role <> 'owner' then
    raise exception 'only an owner invites owners'
      using errcode = 'insufficient_privilege', constraint = 'organisation_members_role_owner';
  end if;
  if exists (select 1 from public.organisation_members m join auth.users u on u.id = m.user_id
              where m.organisation_id = p_organisation_id and lower(u.email) = v_email) then
    raise exception 'this address belongs to a member already'
      using errcode = 'unique_violation', constraint = 'organisation_members_pkey';
  end if;
  if (select count(*) from public.organisation_invitations i
       where i.organisation_id = p_organisation_id and i.status = 'pending') >= 100 then
    raise exception 'an organisation has at most 100 pending invitations'
      using errcode = 'check_violation', constraint = 'organisation_invitations_max_pending';
  end if;
  update public.organisation_invitations i set status = 'revoked', responded_at = now()
   where i.organisation_id = p_organisation_id and i.email = v_email and i.status = 'pending';
  insert into public.organisation_invitations (organisation_id, email, role, invited_by)
  values (p_organisation_id, v_email, p_role, v_uid)
  returning * into v_inv;
  return v_inv;
end;
$$;
revoke all on function public.invite_to_organisation(uuid, text, text) from public, anon;
grant execute on function public.invite_to_organisation(uuid, text, text) to authenticated;

-- The pending invitation addressed to the caller's email, locked.
create or replace function private.organisation_invitation_for_caller(p_invitation_id uuid)
returns public.organisation_invitations
language plpgsql security definer
set search_path = ''
as $$
declare
  v_inv public.organisation_invitations;
begin
  perform private.organisation_caller();
  select i.* into v_inv from public.organisation_invitations i
   where i.id = p_invitation_id
     and i.email = private.caller_email()
  for update;
  if not found then
    raise exception 'no invitation for you with id %', p_invitation_id
      using errcode = 'no_data_found', constraint = 'organisation_invitations_addressee';
  end if;
  if v_inv.status <> 'pending' then
    raise exception 'the invitation is % already', v_inv.status
      using errcode = 'check_violation', constraint = 'organisation_invitations_pending';
  end if;
  return v_inv;
end;
$$;
revoke all on function private.organisation_invitation_for_caller(uuid) from public, anon, authenticated;

create or replace function public.accept_organisation_invitation(p_invitation_id uuid)
returns public.organisation_members
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := private.organisation_caller();
  v_inv public.organisation_invitations := private.organisation_invitation_for_caller(p_invitation_id);
  v_member public.organisation_members;
begin
  update public.organisation_invitations i set status = 'accepted', responded_at = now() where i.id = v_inv.id;
  insert into public.organisation_members (user_id, organisation_id, role, invited_by)
  values (v_uid, v_inv.organisation_id, v_inv.role, v_inv.invited_by)
  on conflict (user_id, organisation_id) do nothing
  returning * into v_member;
  if v_member.user_id is null then
    raise exception 'you are a member of this organisation already'
      using errcode = 'unique_violation', constraint = 'organisation_members_pkey';
  end if;
  return v_member;
end;
$$;
revoke all on function public.accept_organisation_invitation(uuid) from public, anon;
grant execute on function public.accept_organisation_invitation(uuid) to authenticated;

create or replace function public.decline_organisation_invitation(p_invitation_id uuid)
returns public.organisation_invitations
language plpgsql security definer
set search_path = ''
as $$
declare
  v_inv public.organisation_invitations := private.organisation_invitation_for_caller(p_invitation_id);
begin
  update public.organisation_invitations i set status = 'declined', responded_at = now()
   where i.id = v_inv.id
  returning * into v_inv;
  return v_inv;
end;
$$;
revoke all on function public.decline_organisation_invitation(uuid) from public, anon;
grant execute on function public.decline_organisation_invitation(uuid) to authenticated;

-- Take a member out (leave or remove). The paying owner stays: the organisation's bots
-- and strategies are theirs, so an organisation is never left without an owner.
create or replace function private.organisation_drop_member(p_organisation_id uuid, p_user_id uuid)
returns public.organisation_members
language plpgsql security definer
set search_path = ''
as $$
declare
  v_member public.organisation_members;
begin
  if exists (select 1 from public.organisations o where o.id = p_organisation_id and o.owner_id = p_user_id) then
    raise exception 'the paying owner stays in the organisation (delete the organisation instead)'
      using errcode = 'check_violation', constraint = 'organisations_owner_stays';
  end if;
  delete from public.organisation_members m
   where m.organisation_id = p_organisation_id and m.user_id = p_user_id
  returning * into v_member;
  if v_member.user_id is null then
    raise exception 'no member % in this organisation', p_user_id
      using errcode = 'no_data_found', constraint = 'organisation_members_member';
  end if;
  return v_member;
end;
$$;
revoke all on function private.organisation_drop_member(uuid, uuid) from public, anon, authenticated;

create or replace function public.leave_organisation(p_organisation_id uuid) returns public.organisation_members
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := private.organisation_caller();
begin
  perform private.organisation_require(p_organisation_id, 'read_only');
  return private.organisation_drop_member(p_organisation_id, v_uid);
end;
$$;
revoke all on function public.leave_organisation(uuid) from public, anon;
grant execute on function public.leave_organisation(uuid) to authenticated;

-- The member another member may manage: owners manage everyone, admins everyone below
-- owner (to owner they may not promote).
create or replace function private.organisation_managed_member(p_organisation_id uuid, p_user_id uuid, p_new_role text)
returns public.organisation_members
language plpgsql security definer
set search_path = ''
as $$
declare
  v_role text := private.organisation_require(p_organisation_id, 'admin');
  v_member public.organisation_members;
begin
  select m.* into v_member from public.organisation_members m
   where m.organisation_id = p_organisation_id and m.user_id = p_user_id
  for update;
  if not found then
    raise exception 'no member % in this organisation', p_user_id
      using errcode = 'no_data_found', constraint = 'organisation_members_member';
  end if;
  if v_role <> 'owner' and (v_member.role = 'owner' or p_new_role = 'owner') then
    raise exception 'only an owner manages owners'
      using errcode = 'insufficient_privilege', constraint = 'organisation_members_role_owner';
  end if;
  return v_member;
end;
$$;
revoke all on function private.organisation_managed_member(uuid, uuid, text) from public, anon, authenticated;

create or replace function public.remove_organisation_member(p_organisation_id uuid, p_user_id uuid)
returns public.organisation_members
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.organisation_caller();
  perform private.organisation_managed_member(p_organisation_id, p_user_id, null);
  return private.organisation_drop_member(p_organisation_id, p_user_id);
end;
$$;
revoke all on function public.remove_organisation_member(uuid, uuid) from public, anon;
grant execute on function public.remove_organisation_member(uuid, uuid) to authenticated;

create or replace function public.set_organisation_member_role(p_organisation_id uuid, p_user_id uuid, p_role text)
returns public.organisation_members
language plpgsql security definer
set search_path = ''
as $$
declare
  v_member public.organisation_members;
begin
  perform private.organisation_caller();
  if p_role is null or private.organisation_rank(p_role) is null then
    raise exception 'role must be owner, admin, member or read_only'
      using errcode = 'invalid_parameter_value', constraint = 'organisation_members_role_known';
  end if;
  v_member := private.organisation_managed_member(p_organisation_id, p_user_id, p_role);
  if p_role <> 'owner' and exists (select 1 from public.organisations o
                                    where o.id = p_organisation_id and o.owner_id = p_user_id) then
    raise exception 'the paying owner stays an owner'
      using errcode = 'check_violation', constraint = 'organisations_owner_stays';
  end if;
  update public.organisation_members m set role = p_role, updated_at = now()
   where m.organisation_id = p_organisation_id and m.user_id = p_user_id
  returning * into v_member;
  return v_member;
end;
$$;
revoke all on function public.set_organisation_member_role(uuid, uuid, text) from public, anon;
grant execute on function public.set_organisation_member_role(uuid, uuid, text) to authenticated;

-- delete_organisation: owners only. Its bots and strategies stay, as the paying owner's own.
create or replace function public.delete_organisation(p_organisation_id uuid) returns public.organisations
language plpgsql security definer
set search_path = ''
as $$
declare
  v_org public.organisations;
begin
  perform private.organisation_caller();
  perform private.organisation_require(p_organisation_id, 'owner');
  delete from public.organisations o where o.id = p_organisation_id returning * into v_org;
  return v_org;
end;
$$;
revoke all on function public.delete_organisation(uuid) from public, anon;
grant execute on function public.delete_organisation(uuid) to authenticated;

-- A new bot or strategy of an organisation is stored under its paying owner (plan limits,
-- credits and exchange keys are theirs).
create or replace function private.assign_organisation_owner() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.organisation_id is not null then
    select o.owner_id into new.user_id from public.organisations o where o.id = new.organisation_id;
  end if;
  return new;
end;
$$;
revoke all on function private.assign_organisation_owner() from public, anon, authenticated;

-- Changes to an organisation's bot by its members: a member (not admin) changes its
-- status only; a new strategy must be one the caller can see, a new exchange key the
-- caller's own and the paying owner's.
create or replace function private.guard_organisation_bot_changes() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.organisation_id is null or private.is_service() then
    return new;
  end if;
  if new.strategy_id is distinct from old.strategy_id and new.strategy_id is not null
     and not exists (select 1 from public.strategies s where s.id = new.strategy_id) then
    raise exception 'no strategy you can use with id %', new.strategy_id
      using errcode = 'insufficient_privilege', constraint = 'bots_organisation_strategy_visible';
  end if;
  if new.exchange_credential_id is distinct from old.exchange_credential_id and new.exchange_credential_id is not null
     and not exists (select 1 from public.exchange_credentials c
                      where c.id = new.exchange_credential_id and c.user_id = (select auth.uid())
                        and c.user_id = new.user_id) then
    raise exception 'an organisation bot trades with an exchange key of its paying owner, set by them'
      using errcode = 'insufficient_privilege', constraint = 'bots_organisation_credential_owner';
  end if;
  if private.organisation_role(new.organisation_id) = 'member'
     and (new.strategy_id, new.exchange_credential_id, new.name, new.exchange, new.trading_pair, new.timeframe,
          new.strategy, new.parameters, new.max_open_trades, new.stake_amount, new.stop_loss, new.take_profit,
          new.risk_percentage, new.daily_loss_limit, new.leverage, new.allow_short, new.is_paper_trade, new.metadata)
         is distinct from
         (old.strategy_id, old.exchange_credential_id, old.name, old.exchange, old.trading_pair, old.timeframe,
          old.strategy, old.parameters, old.max_open_trades, old.stake_amount, old.stop_loss, old.take_profit,
          old.risk_percentage, old.daily_loss_limit, old.leverage, old.allow_short, old.is_paper_trade, old.metadata)
  then
    raise exception 'a member of the organisation starts, pauses and stops its bots; changing them needs admin'
      using errcode = 'insufficient_privilege', constraint = 'bots_organisation_member_status_only';
  end if;
  return new;
end;
$$;
revoke all on function private.guard_organisation_bot_changes() from public, anon, authenticated;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger organisations_updated_at before update on public.organisations
  for each row execute function private.set_updated_at();
-- Named to run before the plan-limit and platform-rule triggers, which read user_id.
create trigger bots_assign_organisation_owner before insert on public.bots
  for each row execute function private.assign_organisation_owner();
create trigger strategies_assign_organisation_owner before insert on public.strategies
  for each row execute function private.assign_organisation_owner();
create trigger bots_guard_organisation_changes before update on public.bots
  for each row execute function private.guard_organisation_bot_changes();
