-- transfer_organisation_ownership: the paying owner hands the organisation over to one of
-- its members (an owner, admin or member who accepted; not a read_only member).
-- * From then on the new owner pays: the organisation's bots and strategies are stored
--   under them (user_id), so they count against the new owner's plan (max_bots,
--   max_strategies, custom_strategies, api_access for the organisation's keys and its
--   rate limit) and their trades charge the new owner's credits. The new owner's role
--   becomes owner; the old paying owner becomes admin.
-- * Over the new owner's plan limits the hand-over is refused, not done half-way: the
--   error names the limit, the new owner's plan and the plan that lifts it (the text of
--   private.raise_plan_limit), so nothing is paused behind anyone's back. The limits
--   count the new owner's own bots and strategies plus the organisation's.
-- * Also refused while a bot of the organisation holds an open position or has a pending
--   request (its credit hold is the old owner's), and while the organisation has live
--   bots (they trade with the old owner's exchange keys, which are not handed over).
-- * A running bot on a marketplace strategy the new owner does not subscribe to is paused
--   with the reason (pause_cause 'subscription'), as when a subscription lapses.
-- * What the bots did before (orders, trades, logs) keeps the old owner in user_id: that
--   is who paid for it. Members of the organisation read it through its policies.
-- Errors, by constraint:
--   organisations_transfer_arguments             an argument is null
--   organisation_members_member                  not a member (caller or new owner)
--   organisations_transfer_paying_owner          the caller is not the paying owner
--   organisations_transfer_new_owner             the caller hands over to themself
--   organisations_transfer_role                  the new owner is a read_only member
--   organisations_max_per_owner                  the new owner pays for 20 already
--   organisations_transfer_open_positions        open positions or pending requests
--   organisations_transfer_live_bots             the organisation has live bots
--   organisations_transfer_plan_max_bots         over the new owner's max_bots
--   organisations_transfer_plan_max_strategies   over the new owner's max_strategies
--   organisations_transfer_plan_custom_strategies  custom strategies, plan without them

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

create or replace function public.transfer_organisation_ownership(p_organisation_id uuid, p_new_owner_id uuid)
returns public.organisations
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := private.organisation_caller();
  v_org public.organisations;
  v_member public.organisation_members;
  v_plan public.plans;
  v_n integer;
begin
  if p_organisation_id is null or p_new_owner_id is null then
    raise exception 'say which organisation and which member takes it over'
      using errcode = 'invalid_parameter_value', constraint = 'organisations_transfer_arguments';
  end if;
  perform private.organisation_require(p_organisation_id, 'read_only');
  select o.* into v_org from public.organisations o where o.id = p_organisation_id for update;
  if v_org.owner_id <> v_uid then
    raise exception 'only the paying owner hands the organisation over'
      using errcode = 'insufficient_privilege', constraint = 'organisations_transfer_paying_owner';
  end if;
  if p_new_owner_id = v_uid then
    raise exception 'you are the paying owner already'
      using errcode = 'check_violation', constraint = 'organisations_transfer_new_owner';
  end if;
  select m.* into v_member from public.organisation_members m
   where m.organisation_id = p_organisation_id and m.user_id = p_new_owner_id
  for update;
  if not found then
    raise exception 'no member % in this organisation', p_new_owner_id
      using errcode = 'no_data_found', constraint = 'organisation_members_member';
  end if;
  if v_member.role = 'read_only' then
    raise exception 'the organisation is handed to an owner, admin or member, not to a read_only member'
      using errcode = 'check_violation', constraint = 'organisations_transfer_role';
  end if;

  -- The locks the new owner's own limits are checked under (create_organisation and the
  -- bot and strategy plan-limit triggers take the same ones).
  perform pg_advisory_xact_lock(hashtextextended('organisations:' || p_new_owner_id::text, 0));
  perform pg_advisory_xact_lock(hashtextextended('bots:' || p_new_owner_id::text, 0));
  perform pg_advisory_xact_lock(hashtextextended('strategies:' || p_new_owner_id::text, 0));
  if (select count(*) from public.organisations o where o.owner_id = p_new_owner_id) >= 20 then
    raise exception 'a user pays for at most 20 organisations'
      using errcode = 'check_violation', constraint = 'organisations_max_per_owner';
  end if;
  perform 1 from public.bots b where b.organisation_id = p_organisation_id order by b.id for update;
  if exists (select 1 from public.trades t join public.bots b on b.id = t.bot_id
              where b.organisation_id = p_organisation_id and t.status = 'open')
     or exists (select 1 from public.position_requests r join public.bots b on b.id = r.bot_id
                 where b.organisation_id = p_organisation_id and r.status in ('pending', 'working')) then
    raise exception 'the organisation''s bots hold open positions or pending requests, paid by the paying owner; close them first'
      using errcode = 'check_violation', constraint = 'organisations_transfer_open_positions';
  end if;
  if exists (select 1 from public.bots b where b.organisation_id = p_organisation_id and not b.is_paper_trade) then
    raise exception 'the organisation''s live bots trade with the paying owner''s exchange keys, which stay theirs; delete them or make them paper bots first'
      using errcode = 'check_violation', constraint = 'organisations_transfer_live_bots';
  end if;

  v_plan := private.current_plan(p_new_owner_id);
  select count(*) into v_n from public.bots b
   where b.user_id = p_new_owner_id or b.organisation_id = p_organisation_id;
  if v_n > v_plan.max_bots then
    perform private.raise_plan_limit(v_plan, 'max_bots', format('allows %s bots', v_plan.max_bots), v_n,
                                     'organisations_transfer_plan_max_bots');
  end if;
  select count(*) into v_n from public.strategies s
   where s.user_id = p_new_owner_id or s.organisation_id = p_organisation_id;
  if v_n > v_plan.max_strategies then
    perform private.raise_plan_limit(v_plan, 'max_strategies', format('allows %s strategies', v_plan.max_strategies),
                                     v_n, 'organisations_transfer_plan_max_strategies');
  end if;
  if not v_plan.custom_strategies
     and exists (select 1 from public.strategies s
                  where s.organisation_id = p_organisation_id and s.strategy_type = 'custom') then
    perform private.raise_plan_limit(v_plan, 'custom_strategies', 'does not include custom strategies', null,
                                     'organisations_transfer_plan_custom_strategies');
  end if;

  update public.organisations o set owner_id = p_new_owner_id where o.id = p_organisation_id returning * into v_org;
  update public.organisation_members m
     set role = case when m.user_id = p_new_owner_id then 'owner' else 'admin' end, updated_at = now()
   where m.organisation_id = p_organisation_id and m.user_id in (p_new_owner_id, v_uid);
  update public.strategies s set user_id = p_new_owner_id where s.organisation_id = p_organisation_id;
  update public.bots b set user_id = p_new_owner_id where b.organisation_id = p_organisation_id;
  update public.bots b
     set status = 'paused', pause_cause = 'subscription',
         status_reason = 'the organisation''s new paying owner does not subscribe to this bot''s marketplace strategy'
   where b.organisation_id = p_organisation_id and b.status = 'running'
     and exists (select 1 from public.strategies s
                  where s.id = b.strategy_id and s.user_id <> p_new_owner_id
                    and not exists (select 1 from public.strategy_subscriptions ss
                                     where ss.strategy_id = s.id and ss.subscriber_id = p_new_owner_id
                                       and ss.status = 'active'));
  return v_org;
end;
$$;
revoke all on function public.transfer_organisation_ownership(uuid, uuid) from public, anon;
grant execute on function public.transfer_organisation_ownership(uuid, uuid) to authenticated;
