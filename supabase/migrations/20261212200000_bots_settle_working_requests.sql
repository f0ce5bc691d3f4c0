-- Owners' requests that were already working (a limit close resting, a manual entry whose
-- order had not filled) when their bot stopped running (paused, stopped, error) used to stay
-- `working` until the bot ran again: no worker serves a bot that does not run. They now end
-- `failed` with the reason, as pending ones end `cancelled`. Whatever order such a request
-- placed is the bot's own (an `orders` row): the worker that runs the bot again follows it.
-- The worker ending a close-and-stop (`stop_bot(…, 'close')`) stops the bot in the same
-- transaction that records the close's outcome: that request is left to it (it used to be
-- cancelled there, and its outcome then found nothing to update).

-- ======================================================================================
-- Functions
-- ======================================================================================

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
     and not (r.stop_after and new.status = 'stopped' and new.stop_positions = 'close');
  return null;
end;
$$;
revoke all on function private.cancel_position_requests() from public, anon, authenticated;
