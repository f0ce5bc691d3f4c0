-- Fleet: lease takeovers, for the console's Fleet page. A takeover is a lease acquired with
-- a new epoch by a different worker than the one that last held it (after it expired, was
-- released or its worker was forgotten). bot_leases keeps the last holder and when and from
-- whom the bot was last taken over; a trigger sets them, so acquire_bot_leases is unchanged.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

alter table public.bot_leases
  add column last_worker_id uuid references public.workers (id) on delete set null,
  add column taken_over_at timestamptz,
  add column taken_over_from uuid references public.workers (id) on delete set null;

update public.bot_leases set last_worker_id = worker_id where worker_id is not null;

create index bot_leases_taken_over_idx on public.bot_leases (taken_over_at desc) where taken_over_at is not null;
create index bot_leases_last_worker_id_idx on public.bot_leases (last_worker_id);
create index bot_leases_taken_over_from_idx on public.bot_leases (taken_over_from);

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

create or replace function private.bot_leases_track_takeover() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and new.epoch > old.epoch and new.worker_id is not null
     and coalesce(old.worker_id, old.last_worker_id) is distinct from new.worker_id
     and coalesce(old.worker_id, old.last_worker_id) is not null then
    new.taken_over_at := now();
    new.taken_over_from := coalesce(old.worker_id, old.last_worker_id);
  end if;
  if new.worker_id is not null then
    new.last_worker_id := new.worker_id;
  end if;
  return new;
end;
$$;

revoke all on function private.bot_leases_track_takeover() from public, anon, authenticated;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger bot_leases_track_takeover before insert or update on public.bot_leases
  for each row execute function private.bot_leases_track_takeover();
