-- A manual trade's credit hold is no orphan while its request is still to be executed.
--
-- The worker executing a manual trade (public.position_requests, kind 'open') holds the
-- trade's price before it places the order, and names the request in the hold's metadata
-- (request_id). If that worker dies in between, the request stays pending (or working) and
-- the bot's next worker executes it again under the same client order id and the same
-- hold. public.bot_orphan_holds used to name such a hold as an orphan once the bot's
-- progress passed its time, so the adopting worker voided it and the retried trade opened
-- without being charged. It now leaves alone the holds of requests that are pending or
-- working; once the request is done, failed or cancelled, an unused hold is an orphan again.

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- The pending holds of these (just adopted) bots whose order never happened although the
-- bot's committed progress (last_candle_at) is at or past the time that decided it
-- (metadata.decided_at), except the holds of the owner's requests still to be executed
-- (metadata.request_id of a pending or working position request). The adopting worker
-- voids them in the same transaction.
create or replace function public.bot_orphan_holds(p_bots jsonb)
returns table (bot_id uuid, hold_id uuid, client_order_id text, decided_at timestamptz)
language plpgsql
set search_path = ''
as $$
declare
  v_ok uuid[];
begin
  if p_bots is null or jsonb_typeof(p_bots) <> 'array' then
    raise exception 'p_bots must be a JSON array of {bot_id, epoch}' using errcode = '22023';
  end if;
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join jsonb_to_recordset(p_bots) as s(bot_id uuid, epoch bigint)
              on s.bot_id = l.bot_id and s.epoch = l.epoch
           order by l.bot_id
             for share of l) x;
  return query
    select b.id, t.id, t.reference_id, (t.metadata ->> 'decided_at')::timestamptz
      from public.bots b
      join public.credit_transfers t
        on t.reference_type = 'order'
       and t.phase = 'pending'
       and t.metadata ->> 'bot_id' = b.id::text
     where b.id = any (v_ok)
       and t.metadata ? 'decided_at'
       and (t.metadata ->> 'decided_at')::timestamptz <= b.last_candle_at
       and not exists (select 1 from public.credit_transfers r where r.pending_id = t.id)
       and not exists (select 1 from public.orders o where o.client_order_id = t.reference_id)
       and not exists (select 1 from public.position_requests q
                        where q.bot_id = b.id
                          and q.status in ('pending', 'working')
                          and q.id::text = t.metadata ->> 'request_id')
     order by b.id, t.id;
end;
$$;

revoke execute on function public.bot_orphan_holds(jsonb) from public, anon, authenticated;
grant execute on function public.bot_orphan_holds(jsonb) to service_role;
