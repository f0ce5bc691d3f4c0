-- Outbound notifications: every insert into public.notifications (from any capability) for
-- users who opted in to Telegram or Discord (profiles.telegram_chat_id /
-- discord_webhook_url) queues notify.deliver jobs, 100 notifications per job, in one
-- statement-level pass. The worker records each channel's outcome in
-- notifications.channels, so a retried job never sends a channel twice.
create or replace function private.notify_enqueue_outbound() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_payloads jsonb[];
begin
  select array_agg(jsonb_build_object('notification_ids', c.ids)) into v_payloads
    from (select jsonb_agg(x.id order by x.id) as ids
            from (select n.id, (row_number() over (order by n.id) - 1) / 100 as chunk
                    from new_rows n join public.profiles p on p.id = n.user_id
                   where p.telegram_chat_id is not null or p.discord_webhook_url is not null) x
           group by x.chunk) c;
  if v_payloads is not null then
    perform public.enqueue_jobs('notify.deliver', v_payloads, 'default', 0, 8);
  end if;
  return null;
end;
$$;
revoke all on function private.notify_enqueue_outbound() from public, anon, authenticated;
create trigger notifications_enqueue_outbound after insert on public.notifications
  referencing new table as new_rows
  for each statement execute function private.notify_enqueue_outbound();

-- A Discord webhook URL is where the fleet will POST: only Discord's webhook endpoints.
alter table public.profiles add constraint profiles_discord_webhook_url_is_discord
  check (discord_webhook_url is null
         or discord_webhook_url ~ '^https://(ptb\.|canary\.)?(discord|discordapp)\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]+$')
  not valid;
