-- A live bot paused by its daily loss limit while a close of its position works waits for
-- its worker to settle the close (`bots_pause_settles_close`), `running` meanwhile. The
-- other platform pauses wait with their `pause_cause` (they set it with the status), but the
-- daily loss pause got its cause from `bot_rules` only when the status read `paused`, which
-- it no longer did: it waited without a cause, so its owner could set the bot running and
-- cancel it (`bots_running_overrides_pause` refuses that only for a pause with a cause), and
-- the bot traded on past its limit. The waiting daily loss pause now takes its cause (and
-- `pause_until`, the next UTC day) at once, and the owner's `running` is refused
-- (`23514`, `bots_platform_pause_holds`) as for a paused bot.

-- ======================================================================================
-- Functions
-- ======================================================================================

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
  -- The fleet's daily loss pause is the platform's (`bot_rules` gives it its cause once the
  -- status reads `paused`): it waits with its cause, as the other platform pauses do.
  if new.status = 'paused' and new.pause_cause is null and private.is_service()
     and new.status_reason like 'daily loss limit reached%' then
    new.pause_cause := 'daily_loss';
    new.pause_until := date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' + interval '1 day';
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
