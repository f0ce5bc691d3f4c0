-- A bot that stops gives back at once the credits it held for entries that will never be.
--
-- An entry's hold (reference_type 'order', reference_id its client order id,
-- metadata.bot_id and metadata.decided_at, the candle that decided it) is placed before its
-- order and posted or voided with the step that writes the order. A hold whose order never
-- happened was voided only by the next worker that adopted the bot (bot_orphan_holds): a
-- bot that stopped, went to error (its refused step's holds) or was deleted was adopted by
-- nobody, so the user's credits stayed held until the hold's timeout, an hour later.
--
-- Now, when a bot stops or goes to error, and again whenever such a bot's progress moves
-- (a step in flight when it stopped commits), its holds that nothing needs are voided in
-- the same transaction: those whose deciding step has committed (decided_at at or before
-- last_candle_at) without an order, the rule bot_orphan_holds applies, unless a pending or
-- working request of the owner still needs the hold. A hold whose order rests or filled is
-- left to that order (a resting order posts or voids it when it ends; a user stopping his
-- bot does not get back the credits of an order that may still fill). A bot's deletion
-- voids every pending hold of it: its orders go with it. Paused bots keep their holds. The
-- user's request stops the bot; the ledger is moved through a delegation, as a
-- subscription's first month is, in the lock order (the bot before the credit accounts).

-- ======================================================================================
-- Functions
-- ======================================================================================

create or replace function private.bot_void_idle_holds() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_bot public.bots;
  v_voids jsonb;
  v_delegated boolean;
begin
  if tg_op = 'DELETE' then
    v_bot := old;
    -- The owner's deletion takes their accounts with it: nothing to give back.
    if not exists (select 1 from public.profiles p where p.id = v_bot.user_id) then
      return null;
    end if;
  else
    v_bot := new;
  end if;
  select jsonb_agg(jsonb_build_object(
           'action', 'void', 'id', md5('bot-idle-hold:' || t.id::text)::uuid, 'pending_id', t.id,
           'metadata', jsonb_build_object('reason', case when tg_op = 'DELETE' then 'bot_deleted'
                                                         else 'bot_' || v_bot.status end))
           order by t.id)
    into v_voids
    from public.credit_transfers t
   where t.reference_type = 'order'
     and t.phase = 'pending'
     and t.metadata ->> 'bot_id' = v_bot.id::text
     and not exists (select 1 from public.credit_transfers r where r.pending_id = t.id)
     and (tg_op = 'DELETE'
          or (t.metadata ? 'decided_at'
              and (t.metadata ->> 'decided_at')::timestamptz <= v_bot.last_candle_at
              and not exists (select 1 from public.orders o
                               where o.client_order_id = t.reference_id
                                 and o.status in ('pending', 'open', 'closed'))
              and not exists (select 1 from public.position_requests q
                               where q.bot_id = v_bot.id
                                 and q.status in ('pending', 'working')
                                 and q.id::text = t.metadata ->> 'request_id')));
  if v_voids is null then
    return null;
  end if;
  v_delegated := exists (select 1 from private.credit_delegations d where d.xact = pg_catalog.pg_current_xact_id());
  if not v_delegated then
    perform private.credit_delegate('the holds of a bot that stopped');
  end if;
  perform 1 from public.credit_create_transfers(v_voids);
  if not v_delegated then
    perform private.credit_delegate(null);
  end if;
  return null;
end;
$$;
revoke all on function private.bot_void_idle_holds() from public, anon, authenticated;

-- ======================================================================================
-- Triggers
-- ======================================================================================

-- After bots_cancel_position_requests (triggers fire in name order): the requests a stop
-- cancels no longer keep their holds.
create trigger bots_void_idle_holds after update of status, last_candle_at on public.bots
  for each row
  when (new.status in ('stopped', 'error')
        and (old.status is distinct from new.status or old.last_candle_at is distinct from new.last_candle_at))
  execute function private.bot_void_idle_holds();

create trigger bots_void_holds_deleted after delete on public.bots
  for each row execute function private.bot_void_idle_holds();
