-- A hand-over waits for the organisation's resting orders too.
--
-- transfer_organisation_ownership refuses a hand-over while the organisation's bots hold open
-- positions or pending requests (organisations_transfer_open_positions): their credit holds
-- are the old paying owner's. An entry order resting on the book (a limit entry, pending or
-- open, not yet a trade) was let through: its credit hold, placed on the old owner's
-- account, was posted when it filled on a bot the new owner now pays for, and the trade it
-- opened was charged to the one who no longer pays. Such an order now refuses the
-- hand-over as an open position does, with the same constraint. Otherwise unchanged
-- (20261214700100_organisations_handover_live_bots).

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
  v_exchanges text[];
  v_missing text[];
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
                 where b.organisation_id = p_organisation_id and r.status in ('pending', 'working'))
     -- An entry resting on the book: its credit hold is the old owner's, its fill the new one's.
     or exists (select 1 from public.orders o join public.bots b on b.id = o.bot_id
                 where b.organisation_id = p_organisation_id and o.status in ('pending', 'open')) then
    raise exception 'the organisation''s bots hold open positions, resting orders or pending requests, paid by the paying owner; close or cancel them first'
      using errcode = 'check_violation', constraint = 'organisations_transfer_open_positions';
  end if;
  -- Live bots trade with the paying owner's exchange keys, which stay theirs: they move to
  -- keys of the new owner on the same exchanges (live or testnet as before), which the new
  -- owner offered for the organisation (offer_exchange_keys_to_organisation). Moving what
  -- live bots trade with needs the caller's two-factor session, as any change of a live
  -- bot's key does.
  select array_agg(distinct b.exchange || case when c.is_testnet then ' (testnet)' else '' end order by
                   b.exchange || case when c.is_testnet then ' (testnet)' else '' end)
    into v_exchanges
    from public.bots b left join public.exchange_credentials c on c.id = b.exchange_credential_id
   where b.organisation_id = p_organisation_id and not b.is_paper_trade;
  if v_exchanges is not null then
    if coalesce(auth.jwt() ->> 'aal', 'aal1') <> 'aal2' then
      raise exception 'handing over live bots needs a session with two-factor authentication (aal2)'
        using errcode = 'insufficient_privilege', constraint = 'organisations_transfer_live_bots_aal2';
    end if;
    if not v_member.offers_exchange_keys then
      raise exception 'the organisation''s live bots (on %) trade with your exchange keys, which stay yours; the new owner first offers their own keys for them (offer_exchange_keys_to_organisation), or delete the bots or make them paper bots',
        array_to_string(v_exchanges, ', ')
        using errcode = 'check_violation', constraint = 'organisations_transfer_live_bots';
    end if;
    select array_agg(x order by x) into v_missing
      from unnest(v_exchanges) x
     where not exists (select 1 from public.exchange_credentials c
                        where c.user_id = p_new_owner_id
                          and c.exchange || case when c.is_testnet then ' (testnet)' else '' end = x);
    if v_missing is not null then
      raise exception 'the new owner has no exchange key on % for the organisation''s live bots; they add one first, or the bots are deleted or made paper bots',
        array_to_string(v_missing, ', ')
        using errcode = 'check_violation', constraint = 'organisations_transfer_exchange_keys';
    end if;
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
  -- The bots move to the new owner; live ones to the new owner's key on their exchange (the
  -- 'default' label first, then the oldest), and those running are paused: a person with a
  -- two-factor session starts them again on the new key.
  update public.bots b
     set user_id = p_new_owner_id,
         exchange_credential_id = coalesce(
           (select c.id from public.exchange_credentials c
             where not b.is_paper_trade and c.user_id = p_new_owner_id and c.exchange = b.exchange
               and c.is_testnet = coalesce((select o.is_testnet from public.exchange_credentials o
                                             where o.id = b.exchange_credential_id), false)
             order by c.label = 'default' desc, c.created_at, c.id
             limit 1),
           case when b.is_paper_trade then b.exchange_credential_id end),
         status = case when not b.is_paper_trade and b.status = 'running' then 'paused' else b.status end,
         status_reason = case when not b.is_paper_trade and b.status = 'running'
                              then 'the organisation was handed over: start the bot again to trade with its new paying owner''s exchange key'
                              else b.status_reason end
   where b.organisation_id = p_organisation_id;
  -- Copying a marketplace strategy into the organisation's bots was paid for by whoever
  -- subscribed; bots they no longer pay for stop copying (their subscriptions stay theirs,
  -- without the bot). The new owner subscribes with a bot of the organisation to copy again.
  update public.strategy_subscriptions ss
     set auto_execute = false, bot_id = null
   where ss.bot_id in (select b.id from public.bots b where b.organisation_id = p_organisation_id)
     and ss.subscriber_id <> p_new_owner_id;
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
