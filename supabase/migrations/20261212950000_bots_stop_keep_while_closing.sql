-- Stopping a bot keeping its position (`stop_bot(…, 'keep')`) while a close of that position
-- is working (a limit close resting on the exchange) used to stop the bot at once: the close
-- had taken the position's stop-loss off the exchange, so the kept position was left with no
-- stop and a resting limit order until the bot ran again. The bot now stays `running`
-- ("stopping: cancelling the working close, the position is kept") with the request marked
-- `stop_after`; its worker cancels the resting close, rests the stop-loss (and take-profit)
-- on the exchange again, ends the request `cancelled` with the reason and stops the bot, in
-- one transaction. A close that filled before its cancel ends `done` and the bot stops
-- with its position closed.

-- ======================================================================================
-- Functions
-- ======================================================================================

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
  if p_positions = 'keep' and v_bot.status = 'running' then
    -- A close working on the exchange took the stop off: the worker cancels it and rests
    -- the stop again before the bot stops.
    update public.position_requests r set stop_after = true, updated_at = now()
     where r.bot_id = v_bot.id and r.kind = 'close' and r.status = 'working';
    if found then
      update public.bots b
         set stop_positions = 'keep',
             status_reason = 'stopping: cancelling the working close, the position is kept'
       where b.id = v_bot.id
      returning * into v_bot;
      return v_bot;
    end if;
  end if;
  if p_positions = 'keep' then
    -- An earlier stop_bot(…, 'close') gave way: its request is no longer the bot's last.
    update public.position_requests r set stop_after = false, updated_at = now()
     where r.bot_id = v_bot.id and r.stop_after and r.status in ('pending', 'working');
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

-- A request marked `stop_after` is ended by the worker in the transaction that stops the bot
-- (closing or keeping its position): the trigger leaves it to that worker.
create or replace function private.cancel_position_requests() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.position_requests r
     set status = case r.status when 'pending' then 'cancelled' else 'failed' end,
         status_reason = case r.status
           when 'pending' then 'the bot stopped running (' || new.status || ') before the request ran'
           else 'the bot stopped running (' || new.status || ') before the request finished'
         end,
         updated_at = now(), completed_at = now()
   where r.bot_id = new.id and r.status in ('pending', 'working')
     and not (r.stop_after and new.status = 'stopped');
  return null;
end;
$$;
revoke all on function private.cancel_position_requests() from public, anon, authenticated;
