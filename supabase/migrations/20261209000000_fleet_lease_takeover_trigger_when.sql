-- Lease renewals (every LEASE_TTL_S / 3 for every leased bot) no longer run the takeover
-- trigger: it fires on insert, and on update only when the holder or the epoch changes,
-- which are the only updates where it has anything to record (last_worker_id already
-- equals an unchanged holder).

-- ======================================================================================
-- Triggers
-- ======================================================================================

drop trigger bot_leases_track_takeover on public.bot_leases;

create trigger bot_leases_track_takeover before insert on public.bot_leases
  for each row execute function private.bot_leases_track_takeover();

create trigger bot_leases_track_takeover_change before update of worker_id, epoch on public.bot_leases
  for each row
  when (old.worker_id is distinct from new.worker_id or old.epoch is distinct from new.epoch)
  execute function private.bot_leases_track_takeover();
