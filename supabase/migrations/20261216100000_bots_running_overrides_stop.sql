-- The last request wins for stops too. `stop_bot(…, 'close')` keeps the bot `running` until
-- its worker has closed the position, and `stop_bot(…, 'keep')` while a close works until
-- the worker has cancelled that close; setting the bot `running` meanwhile changed nothing
-- (it was already `running`) and the worker then stopped it anyway. Now the owner's
-- `running` cancels a waiting stop as it cancels a waiting pause: the requests lose
-- `stop_after` (the close, whoever asked for it, works on and the bot runs on after it), the
-- bot's "stopping: …" reason is cleared and a bot log records it
-- (`context.action = 'stop_overridden'`). A platform pause that a stop turned into a stop
-- still holds (`bots_platform_pause_holds`).
--
-- A worker that settled a stop (closed the position, or cancelled the close and rested the
-- stop) whose write commits after the owner's `running` now leaves the bot `running`, as for
-- a pause: the worker names every bot it settles in `tradefleet.settled_bots`, stops too,
-- and such a write takes its status only while a stop or pause still waits. The database
-- writes what the bot's log says either way (`bot_stopped`, `bot_settled`, or
-- `settle_overridden`: "the bot was set running again before its stop settled: it runs
-- on"), so a log never claims a stop or pause that did not happen.

-- ======================================================================================
-- Functions
-- ======================================================================================

-- The owner sets `running` a bot whose stop, pause or error waits for its worker.
create or replace function private.bots_running_overrides_pause() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_requests uuid[];
  v_status text;
  v_stop boolean;
begin
  -- The fleet's own writes (a step writes the status it keeps) override nothing.
  if (select auth.uid()) is null then
    return new;
  end if;
  select array_agg(r.id order by r.id), min(r.stop_status), bool_or(r.stop_status is null)
    into v_requests, v_status, v_stop
    from public.position_requests r
   where r.bot_id = new.id and r.kind = 'close' and r.status in ('pending', 'working') and r.stop_after;
  if v_requests is null then
    return new;
  end if;
  if old.pause_cause is not null then
    raise exception 'this bot was paused by the platform (%) and cannot run until that changes: %',
      old.pause_cause, coalesce(old.status_reason, old.pause_cause)
      using errcode = 'check_violation', constraint = 'bots_platform_pause_holds';
  end if;
  update public.position_requests r
     set stop_after = false, stop_status = null, stop_reason = null, updated_at = now()
   where r.id = any (v_requests);
  new.status_reason := null;
  if v_status = 'error' then
    new.error_message := null;
  end if;
  insert into public.bot_logs (bot_id, user_id, log_level, message, context, source)
  values (new.id, new.user_id, 'info',
          case
            when v_stop and old.stop_positions = 'close' then
              'the stop closing the position was cancelled: the bot was set running again; the close works on and the bot runs on after it'
            when v_stop then
              'the stop keeping the position was cancelled: the bot was set running again; the close works on'
            else format('the %s waiting for the working close to settle was cancelled: the bot was set running again',
                        case v_status when 'error' then 'error' else 'pause' end)
          end,
          jsonb_build_object('action', case when v_stop then 'stop_overridden' else 'pause_overridden' end,
                             'status', case when v_stop then 'stopped' else v_status end,
                             'stop_positions', case when v_stop then old.stop_positions end,
                             'request_ids', to_jsonb(v_requests)),
          'bot');
  return new;
end;
$$;
revoke all on function private.bots_running_overrides_pause() from public, anon, authenticated;

-- The worker's settled status (a stop, a pause or an error that waited for it) goes through
-- only while one still waits; the bot's log says which way it went.
create or replace function private.bots_pause_settles_close() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_what text := case new.status when 'stopped' then 'stop' when 'error' then 'error' else 'pause' end;
begin
  if new.id::text = any (string_to_array(
       coalesce(pg_catalog.current_setting('tradefleet.settled_bots', true), ''), ',')) then
    if exists (select 1 from public.position_requests r
                where r.bot_id = new.id and r.kind = 'close' and r.status in ('pending', 'working')
                  and r.stop_after) then
      insert into public.bot_logs (bot_id, user_id, log_level, message, context, source)
      values (new.id, new.user_id, 'info',
              case when new.status = 'stopped' then coalesce(new.status_reason, 'stopped by its owner')
                   else new.status || ' once its working close settled'
                        || coalesce(': ' || new.status_reason, '') end,
              jsonb_build_object('action', case when new.status = 'stopped' then 'bot_stopped' else 'bot_settled' end,
                                 'status', new.status),
              'bot');
      return new;
    end if;
    -- The owner set the bot running since: the last request wins.
    insert into public.bot_logs (bot_id, user_id, log_level, message, context, source)
    values (new.id, new.user_id, 'info',
            format('the bot was set running again before its %s settled: it runs on', v_what),
            jsonb_build_object('action', 'settle_overridden', 'status', new.status), 'bot');
    new.status := 'running';
    new.status_reason := old.status_reason;
    new.error_message := old.error_message;
    return new;
  end if;
  if new.is_paper_trade or new.status = 'stopped' then
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

drop trigger bots_pause_settles_close on public.bots;
create trigger bots_pause_settles_close before update of status on public.bots
  for each row when (old.status = 'running' and new.status in ('paused', 'error', 'stopped'))
  execute function private.bots_pause_settles_close();
