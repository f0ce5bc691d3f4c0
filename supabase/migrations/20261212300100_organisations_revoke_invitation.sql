-- revoke_organisation_invitation: owners and admins withdraw a pending invitation, which
-- the invitee can then no longer accept (nor decline). Admins revoke invitations to every
-- role below owner, as they invite; owners any. An accepted, declined or revoked invitation
-- stays as it is. Errors, by constraint:
--   organisation_invitations_invitation  no invitation of an organisation of the caller's
--                                        (also for an outsider: it does not exist for them)
--   organisation_members_role_admin      the caller is a member or read_only
--   organisation_members_role_owner      an admin revoking an invitation to owner
--   organisation_invitations_pending     the invitation was answered or revoked already

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

create or replace function public.revoke_organisation_invitation(p_invitation_id uuid)
returns public.organisation_invitations
language plpgsql security definer
set search_path = ''
as $$
declare
  v_inv public.organisation_invitations;
  v_role text;
begin
  perform private.organisation_caller();
  select i.* into v_inv from public.organisation_invitations i where i.id = p_invitation_id for update;
  if not found or private.organisation_role(v_inv.organisation_id) is null then
    raise exception 'no invitation of your organisations with id %', p_invitation_id
      using errcode = 'no_data_found', constraint = 'organisation_invitations_invitation';
  end if;
  v_role := private.organisation_require(v_inv.organisation_id, 'admin');
  if v_inv.role = 'owner' and v_role <> 'owner' then
    raise exception 'only an owner revokes an invitation to owner'
      using errcode = 'insufficient_privilege', constraint = 'organisation_members_role_owner';
  end if;
  if v_inv.status <> 'pending' then
    raise exception 'the invitation is % already; only a pending one can be revoked', v_inv.status
      using errcode = 'check_violation', constraint = 'organisation_invitations_pending';
  end if;
  update public.organisation_invitations i set status = 'revoked', responded_at = now()
   where i.id = v_inv.id
  returning * into v_inv;
  return v_inv;
end;
$$;
revoke all on function public.revoke_organisation_invitation(uuid) from public, anon;
grant execute on function public.revoke_organisation_invitation(uuid) to authenticated;
