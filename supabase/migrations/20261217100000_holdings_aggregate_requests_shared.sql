-- Aggregation requests of concurrent account syncs no longer wait for one another.
--
-- holdings_request_aggregates upserted each user's pending row (on conflict do update), a
-- row lock that two workers' batches of the same users took in turns: a user's accounts
-- are synced by any worker, so every batch write of one worker waited for the other's to
-- commit. What the lock is for is the holdings.aggregate job (holdings_aggregate_pending
-- locks the rows for update, then deletes them): it must wait for a sync that has written
-- and not yet committed. A key-share lock does that too, and does not conflict with
-- another sync's. So the rows already pending with their job still to run are now locked
-- for key share, all in user order; only a user without one (a new burst, a job that died
-- or was pruned) gets its row upserted with a new job, as before. A row's requested_at is
-- now the time of its burst's first request.

-- ======================================================================================
-- Functions
-- ======================================================================================

create or replace function private.holdings_request_aggregates(p_user_ids uuid[]) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_users uuid[];
  v_held uuid[];
  v_user_id uuid;
  v_new uuid[];
begin
  select array_agg(distinct u order by u) into v_users from unnest(p_user_ids) u where u is not null;
  if v_users is null then
    return;
  end if;
  -- Every existing row first, in user order (the order the job locks them in): the job's
  -- delete waits for this transaction; other syncs' key-share locks do not.
  select coalesce(array_agg(h.user_id order by h.user_id), '{}'::uuid[]) into v_held
    from (select p.user_id, p.job_id from private.holdings_pending_aggregates p
           where p.user_id = any (v_users)
           order by p.user_id
             for key share) h
   where exists (select 1 from public.jobs j where j.id = h.job_id and j.status in ('queued', 'running'));

  with requested as (
    insert into private.holdings_pending_aggregates as p (user_id)
    select u from unnest(v_users) u where not (u = any (v_held)) order by 1
    on conflict (user_id) do update set requested_at = now()
    returning p.user_id, p.job_id
  )
  select array_agg(r.user_id order by r.user_id) into v_new
    from requested r
   where r.job_id is null
      or not exists (select 1 from public.jobs j where j.id = r.job_id and j.status in ('queued', 'running'));
  -- A new burst, or its job died (out of attempts) or was pruned: a new job.
  foreach v_user_id in array coalesce(v_new, '{}'::uuid[]) loop
    update private.holdings_pending_aggregates
       set job_id = public.enqueue_job('holdings.aggregate', jsonb_build_object('user_id', v_user_id))
     where user_id = v_user_id;
  end loop;
end;
$$;

revoke all on function private.holdings_request_aggregates(uuid[]) from public, anon, authenticated;
grant execute on function private.holdings_request_aggregates(uuid[]) to service_role;
