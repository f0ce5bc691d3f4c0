-- The bot RPCs an organisation's members use on its bots: stop_bot, close_position and
-- manual_trade (through private.position_request_bot) accept a bot of the caller's own or
-- of an organisation where the caller is a member, admin or owner. A read_only member gets
-- insufficient_privilege (bots_organisation_role); anyone else no_data_found, as before.
-- Requests are recorded under the member who made them (their idempotency keys are theirs);
-- the worker charges the bot's user, the organisation's paying owner.

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- Whether the caller may act on a bot they can see: their own, or their organisation's
-- with a role of member or above.
create or replace function private.bot_actor_check(p_bot public.bots) returns void
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_role text;
begin
  if p_bot.user_id = (select auth.uid()) then
    return;
  end if;
  v_role := private.organisation_role(p_bot.organisation_id);
  if v_role is null then
    raise exception 'no bot of yours with id %', p_bot.id
      using errcode = 'no_data_found', constraint = 'position_requests_bot_owned';
  end if;
  if private.organisation_rank(v_role) < private.organisation_rank('member') then
    raise exception 'your role in the bot''s organisation (%) only reads its bots', v_role
      using errcode = 'insufficient_privilege', constraint = 'bots_organisation_role',
            hint = 'A member, admin or owner of the organisation starts, stops and trades its bots.';
  end if;
end;
$$;
revoke all on function private.bot_actor_check(public.bots) from public, anon, authenticated;

create or replace function private.position_request_bot(p_bot_id uuid, p_is_paper_trade boolean)
returns public.bots
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_bot public.bots;
begin
  if v_uid is null then
    raise exception 'position requests are made by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_caller';
  end if;
  select * into v_bot from public.bots b
   where b.id = p_bot_id and (b.user_id = v_uid or b.organisation_id = any (private.organisation_ids()));
  if not found then
    raise exception 'no bot of yours with id %', p_bot_id
      using errcode = 'no_data_found', constraint = 'position_requests_bot_owned';
  end if;
  perform private.bot_actor_check(v_bot);
  if p_is_paper_trade is null or p_is_paper_trade <> v_bot.is_paper_trade then
    raise exception 'the bot trades % but the request says %',
      case when v_bot.is_paper_trade then 'on paper' else 'live money' end,
      case when p_is_paper_trade then 'paper' when not p_is_paper_trade then 'live' else 'neither' end
      using errcode = 'check_violation', constraint = 'position_requests_mode_matches',
            hint = 'Pass is_paper_trade as the bot has it, so live money is never moved by mistake.';
  end if;
  if not v_bot.is_paper_trade and coalesce(auth.jwt() ->> 'aal', 'aal1') <> 'aal2' then
    raise exception 'moving live money needs a session with two-factor authentication (aal2)'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_live_requires_aal2';
  end if;
  if v_bot.status <> 'running' then
    raise exception 'the bot is %: only a running bot executes requests', v_bot.status
      using errcode = 'check_violation', constraint = 'position_requests_bot_running',
            hint = 'Set the bot running first (a paused or stopped bot leaves its position untouched).';
  end if;
  return v_bot;
end;
$$;
revoke all on function private.position_request_bot(uuid, boolean) from public, anon, authenticated;

create or replace function public.close_position(
  p_trade_id uuid,
  p_is_paper_trade boolean,
  p_order_type text default 'market',
  p_limit_price private.finite_number default null,
  p_timeout_s integer default null,
  p_on_timeout text default 'market',
  p_idempotency_key text default null
) returns public.position_requests
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_trade public.trades;
  v_bot public.bots;
  v_key text := private.position_request_key(p_idempotency_key);
  v_req public.position_requests;
begin
  if v_uid is null then
    raise exception 'position requests are made by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_caller';
  end if;
  if p_order_type is null or p_order_type not in ('market', 'limit') then
    raise exception 'order type must be market or limit'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_order_type_known';
  end if;
  if p_order_type = 'market' and (p_limit_price is not null or p_timeout_s is not null) then
    raise exception 'a market close takes no limit price and no timeout'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_limit_terms';
  end if;
  if p_order_type = 'limit' then
    if p_limit_price is null or p_limit_price <= 0 or p_limit_price > 1e15 then
      raise exception 'a limit close needs a limit price above 0'
        using errcode = 'invalid_parameter_value', constraint = 'position_requests_limit_price_positive';
    end if;
    if p_timeout_s is null or p_timeout_s not between 5 and 86400 then
      raise exception 'a limit close needs a timeout of 5 to 86400 seconds'
        using errcode = 'invalid_parameter_value', constraint = 'position_requests_timeout_range';
    end if;
    if p_on_timeout is null or p_on_timeout not in ('market', 'cancel') then
      raise exception 'on timeout a limit close goes to market or is cancelled'
        using errcode = 'invalid_parameter_value', constraint = 'position_requests_on_timeout_known';
    end if;
  end if;
  if v_key is not null then
    select * into v_req from public.position_requests r
     where r.user_id = v_uid and r.idempotency_key = v_uid::text || ':' || v_key;
    if found then
      if v_req.kind <> 'close' or v_req.trade_id is distinct from p_trade_id then
        raise exception 'this idempotency key was used for another request'
          using errcode = 'check_violation', constraint = 'position_requests_idempotency_key_reused';
      end if;
      return v_req;
    end if;
  end if;
  -- The bot's own trades only: copies of signals close with their signal.
  select * into v_trade from public.trades t
   where t.id = p_trade_id and t.signal_id is null
     and (t.user_id = v_uid
          or exists (select 1 from public.bots b
                      where b.id = t.bot_id and b.organisation_id = any (private.organisation_ids())));
  if not found then
    raise exception 'no position of yours with id %', p_trade_id
      using errcode = 'no_data_found', constraint = 'position_requests_trade_owned';
  end if;
  if v_trade.status <> 'open' then
    raise exception 'the trade is % already', v_trade.status
      using errcode = 'check_violation', constraint = 'position_requests_trade_open';
  end if;
  v_bot := private.position_request_bot(v_trade.bot_id, p_is_paper_trade);
  select * into v_req from public.position_requests r
   where r.trade_id = p_trade_id and r.kind = 'close' and r.status in ('pending', 'working');
  if found then
    return v_req;
  end if;
  insert into public.position_requests as r (user_id, bot_id, trade_id, kind, order_type, limit_price, timeout_s,
                                             on_timeout, is_paper_trade, idempotency_key)
  values (v_uid, v_bot.id, p_trade_id, 'close', p_order_type,
          case when p_order_type = 'limit' then p_limit_price end,
          case when p_order_type = 'limit' then p_timeout_s end,
          case when p_order_type = 'limit' then p_on_timeout end,
          v_bot.is_paper_trade, v_uid::text || ':' || coalesce(v_key, gen_random_uuid()::text))
  returning * into v_req;
  return v_req;
end;
$$;
revoke all on function public.close_position(uuid, boolean, text, private.finite_number, integer, text, text) from public, anon;
grant execute on function public.close_position(uuid, boolean, text, private.finite_number, integer, text, text)
  to authenticated, service_role;

create or replace function public.stop_bot(p_bot_id uuid, p_positions text)
returns public.bots
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_bot public.bots;
  v_trade uuid;
  v_req public.position_requests;
begin
  if v_uid is null then
    raise exception 'bots are stopped by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_caller';
  end if;
  if p_positions is null or p_positions not in ('close', 'keep') then
    raise exception 'say what happens to the open positions: close or keep'
      using errcode = 'invalid_parameter_value', constraint = 'bots_stop_positions_known';
  end if;
  select * into v_bot from public.bots b
   where b.id = p_bot_id and (b.user_id = v_uid or b.organisation_id = any (private.organisation_ids()))
  for update;
  if not found then
    raise exception 'no bot of yours with id %', p_bot_id
      using errcode = 'no_data_found', constraint = 'position_requests_bot_owned';
  end if;
  perform private.bot_actor_check(v_bot);
  select t.id into v_trade from public.trades t
   where t.bot_id = v_bot.id and t.status = 'open' and t.signal_id is null
   order by t.entry_time limit 1;
  if p_positions = 'close' and v_trade is not null then
    perform private.position_request_bot(v_bot.id, v_bot.is_paper_trade);
    select * into v_req from public.position_requests r
     where r.trade_id = v_trade and r.kind = 'close' and r.status in ('pending', 'working');
    if found then
      update public.position_requests r set stop_after = true, updated_at = now() where r.id = v_req.id;
    else
      insert into public.position_requests (user_id, bot_id, trade_id, kind, origin, stop_after, is_paper_trade,
                                            idempotency_key)
      values (v_uid, v_bot.id, v_trade, 'close', 'stop', true, v_bot.is_paper_trade,
              v_uid::text || ':' || gen_random_uuid()::text);
    end if;
    update public.bots b set stop_positions = 'close', status_reason = 'stopping: closing the open position'
     where b.id = v_bot.id
    returning * into v_bot;
    return v_bot;
  end if;
  update public.bots b
     set status = 'stopped', stop_positions = p_positions,
         status_reason = case when v_trade is null then 'stopped by its owner'
                              else 'stopped by its owner: the open position is kept' end
   where b.id = v_bot.id
  returning * into v_bot;
  return v_bot;
end;
$$;
revoke all on function public.stop_bot(uuid, text) from public, anon;
grant execute on function public.stop_bot(uuid, text) to authenticated, service_role;
