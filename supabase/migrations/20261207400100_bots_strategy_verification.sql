-- Admins verify marketplace strategies (docs/marketplace.md): a verified public
-- marketplace strategy appears in strategy_marketplace. admin_verify_strategy verifies or
-- unverifies one with a reason, tells its provider, and writes the audit log. Apps still
-- cannot write is_verified themselves; a material edit of a verified strategy still
-- clears it (strategies_material_edit).

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

-- The console's queue of strategies awaiting verification.
create index strategies_awaiting_verification_idx on public.strategies (created_at)
  where is_public and strategy_type = 'marketplace' and not is_verified;

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

create or replace function public.admin_verify_strategy(p_strategy_id uuid, p_verified boolean, p_reason text)
returns public.strategies
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_actor uuid := private.require_admin();
  v_before public.strategies;
  v_after public.strategies;
begin
  if p_verified is null then
    raise exception 'say whether the strategy is verified (true or false)' using errcode = 'not_null_violation';
  end if;
  perform private.admin_check_reason(p_reason);
  select * into v_before from public.strategies s where s.id = p_strategy_id for update;
  if not found then
    raise exception 'no such strategy: %', p_strategy_id using errcode = 'no_data_found';
  end if;
  if p_verified and not (v_before.is_public and v_before.strategy_type = 'marketplace') then
    raise exception 'only a public marketplace strategy can be verified' using errcode = 'check_violation',
      constraint = 'strategies_verified_marketplace';
  end if;
  if v_before.is_verified = p_verified then
    return v_before;
  end if;
  update public.strategies s set is_verified = p_verified where s.id = p_strategy_id
  returning * into v_after;
  insert into public.notifications (user_id, kind, title, body, data)
  values (v_before.user_id, 'system',
          case when p_verified then 'Your strategy is verified' else 'Your strategy is no longer verified' end,
          format('%s: %s', v_before.name, p_reason),
          jsonb_build_object('strategy_id', p_strategy_id, 'is_verified', p_verified));
  perform private.admin_audit(v_actor, case when p_verified then 'verify_strategy' else 'unverify_strategy' end,
                              'strategy', p_strategy_id::text, p_reason,
                              jsonb_build_object('is_verified', v_before.is_verified),
                              jsonb_build_object('is_verified', v_after.is_verified));
  return v_after;
end;
$$;

revoke execute on function public.admin_verify_strategy(uuid, boolean, text) from public, anon;
grant execute on function public.admin_verify_strategy(uuid, boolean, text) to authenticated, service_role;
