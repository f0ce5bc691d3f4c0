-- Notifications: what every capability tells a user, and the outbound deliveries to
-- Telegram and Discord for users who opted in. Owned by worker.notify.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  kind text not null constraint notifications_kind_known
    check (kind in ('signal', 'fill', 'error', 'low_credits', 'payment', 'sync', 'system')),
  title text not null,
  body text,
  data jsonb not null default '{}',
  channels jsonb not null default '{}',
  read_at timestamptz,
  created_at timestamptz not null default now()
);

create index notifications_user_id_idx on public.notifications (user_id, created_at desc);

-- A Discord webhook URL is where the fleet will POST: only Discord's webhook endpoints.
alter table public.profiles add constraint profiles_discord_webhook_url_is_discord
  check (discord_webhook_url is null
         or discord_webhook_url ~ '^https://(ptb\.|canary\.)?(discord|discordapp)\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]+$')
  not valid;

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

revoke all on public.notifications from anon, authenticated;
grant all on public.notifications to service_role;
grant select on public.notifications to authenticated;
grant update (read_at) on public.notifications to authenticated;
grant delete on public.notifications to authenticated;
alter table public.notifications enable row level security;
create policy "Users can read their own notifications" on public.notifications
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Users can mark their own notifications read" on public.notifications
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy "Users can delete their own notifications" on public.notifications
  for delete to authenticated using (user_id = (select auth.uid()));

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

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

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger notifications_enqueue_outbound after insert on public.notifications
  referencing new table as new_rows
  for each statement execute function private.notify_enqueue_outbound();

-- ======================================================================================
-- Realtime
-- ======================================================================================

alter publication supabase_realtime add table public.notifications;
