-- Pausing a live bot (or the fleet setting it to `error`) while a close of its position is
-- working (a limit close resting on the exchange, a close mid-way) used to end the request
-- `failed` at once and leave the close's order resting with the position's stop-loss off
-- the exchange until the bot ran again. Such a pause or error now waits for the worker, as
-- `stop_bot(…, 'keep')` does: the bot stays `running` ("pausing: cancelling the working
-- close, the position is kept"), the working close requests are marked `stop_after` with
-- the status the bot goes to (`stop_status`) and the reason it was given (`stop_reason`);
-- its worker cancels the close's order, rests the stop-loss (and take-profit) on the
-- exchange again for what is left of the position, ends the request `cancelled` and sets
-- the bot to that status, in one transaction. `pause_cause`, `pause_until` and
-- `error_message` are written at once as given; a second pause meanwhile waits the same way
-- (the worker names the bots it settled in `tradefleet.settled_bots`, local to its
-- transaction, and only that write goes through). Paper bots, whose stops are the fleet's
-- own candle-close check, pause at once as before.

-- ======================================================================================
-- Tables
-- ======================================================================================

alter table public.position_requests
  add column stop_status text,
  add column stop_reason text,
  add constraint position_requests_stop_status_known
    check (stop_status is null or (stop_status in ('paused', 'error') and stop_after));

comment on column public.position_requests.stop_status is
  'With stop_after: the status (paused, error) the bot goes to once its worker has cancelled '
  'this working close and rested the stop again; null for stop_bot (stopped).';
comment on column public.position_requests.stop_reason is
  'The status_reason the bot was paused (or set to error) with, restored when it goes there.';

-- ======================================================================================
-- Functions
-- ======================================================================================

-- A pause or error of a live bot whose close is working waits for its worker.
create or replace function private.bots_pause_settles_close() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.is_paper_trade then
    return new;
  end if;
  -- The worker that settled the close writes the status it waited for: that goes through.
  if new.id::text = any (string_to_array(
       coalesce(pg_catalog.current_setting('tradefleet.settled_bots', true), ''), ',')) then
    return new;
  end if;
  update public.position_requests r
     set stop_after = true, stop_status = new.status,
         stop_reason = case when r.stop_status is not null
                             and new.status_reason is not distinct from old.status_reason
                            then r.stop_reason else new.status_reason end,
         updated_at = now()
   where r.bot_id = new.id and r.kind = 'close' and r.status = 'working';
  if not found then
    return new;
  end if;
  new.status_reason := case new.status
    when 'error' then 'stopping with an error: cancelling the working close, the position is kept'
    else 'pausing: cancelling the working close, the position is kept'
  end;
  new.status := 'running';
  return new;
end;
$$;
revoke all on function private.bots_pause_settles_close() from public, anon, authenticated;

create trigger bots_pause_settles_close before update of status on public.bots
  for each row when (old.status = 'running' and new.status in ('paused', 'error'))
  execute function private.bots_pause_settles_close();

-- A request marked stop_after is ended by the worker in the transaction that sets the bot to
-- the status it waited for (stopped, or paused or error: stop_status).
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
     and not (r.stop_after and new.status = coalesce(r.stop_status, 'stopped'));
  return null;
end;
$$;
revoke all on function private.cancel_position_requests() from public, anon, authenticated;

-- stop_bot: a stop given while a pause (or error) waits for the worker makes it a stop.
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
      update public.position_requests r set stop_after = true, stop_status = null, stop_reason = null, updated_at = now() where r.id = v_req.id;
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
    update public.position_requests r set stop_after = true, stop_status = null, stop_reason = null, updated_at = now()
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
    update public.position_requests r set stop_after = false, stop_status = null, stop_reason = null, updated_at = now()
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
