-- The last request wins: a live bot paused (or set to error) while a close of its position
-- works stays `running` until its worker has cancelled the close and rested the stop
-- (`bots_pause_settles_close`). Setting it `running` meanwhile used to change nothing (the
-- bot was already `running`), and the worker then paused it anyway. Now the owner's
-- `running` cancels the waiting pause (or error): the close requests lose their
-- `stop_after`/`stop_status`/`stop_reason` (the close works on as before the pause), the
-- bot's "pausing: …" reason is cleared (and a waiting error's message), and a bot log
-- (`context.action = 'pause_overridden'`) records it. A platform pause (`pause_cause`)
-- waiting the same way is not the owner's to override: refused as a paused bot's would be
-- (`23514`, `bots_platform_pause_holds`); such a pause now keeps its `pause_cause` while it
-- waits (`bot_rules` cleared it as soon as the bot's status read `running`). A worker that settled the close while the owner
-- set the bot running (its write commits after the owner's) leaves the bot `running`: its
-- status goes through only while a pause or error still waits.

-- ======================================================================================
-- Functions
-- ======================================================================================

-- The owner sets `running` a live bot whose pause (or error) waits for its worker.
create or replace function private.bots_running_overrides_pause() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_requests uuid[];
  v_status text;
begin
  -- The fleet's own writes (a step writes the status it keeps) override nothing.
  if (select auth.uid()) is null then
    return new;
  end if;
  select array_agg(r.id order by r.id), min(r.stop_status) into v_requests, v_status
    from public.position_requests r
   where r.bot_id = new.id and r.kind = 'close' and r.status = 'working'
     and r.stop_after and r.stop_status is not null;
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
          format('the %s waiting for the working close to settle was cancelled: the bot was set running again',
                 case v_status when 'error' then 'error' else 'pause' end),
          jsonb_build_object('action', 'pause_overridden', 'status', v_status,
                             'request_ids', to_jsonb(v_requests)),
          'bot');
  return new;
end;
$$;
revoke all on function private.bots_running_overrides_pause() from public, anon, authenticated;

-- Named to fire before `bots_pause_settles_close` (triggers fire in name order): a pause
-- that trigger turns into a wait for the worker is not an owner's `running`.
create trigger bots_owner_running_cancels_pause before update of status on public.bots
  for each row when (old.status = 'running' and new.status = 'running')
  execute function private.bots_running_overrides_pause();

-- The worker's settled status goes through only while a pause (or error) still waits: one
-- the owner overrode before the worker's write committed leaves the bot running.
create or replace function private.bots_pause_settles_close() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.is_paper_trade then
    return new;
  end if;
  -- The worker that settled the close writes the status it waited for: that goes through,
  -- unless the owner set the bot running since (the last request wins).
  if new.id::text = any (string_to_array(
       coalesce(pg_catalog.current_setting('tradefleet.settled_bots', true), ''), ',')) then
    if not exists (select 1 from public.position_requests r
                    where r.bot_id = new.id and r.kind = 'close' and r.status = 'working'
                      and r.stop_after and r.stop_status is not null) then
      new.status := 'running';
      new.status_reason := old.status_reason;
      new.error_message := old.error_message;
    end if;
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

-- A platform pause (its cause given with it) that waits for the worker keeps its cause: only
-- a bot that starts running again loses it, not one that was running all along.
create or replace function private.bot_rules() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_strategy public.strategies;
  v_plan public.plans;
  v_n integer;
  v_available numeric;
  v_cause_gone boolean;
begin
  if private.is_service() then
    -- The fleet pausing a bot for its daily loss limit: paused until the next UTC day.
    if new.status = 'paused' and new.pause_cause is null and new.status_reason like 'daily loss limit reached%'
       and (tg_op = 'INSERT' or old.status <> 'paused') then
      new.pause_cause := 'daily_loss';
      new.pause_until := date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' + interval '1 day';
    elsif new.status = 'running' and (tg_op = 'INSERT' or old.status <> 'running') then
      new.pause_cause := null;
      new.pause_until := null;
    end if;
    return new;
  end if;

  -- Changing what a live bot risks needs two-factor authentication.
  if tg_op = 'UPDATE' and not old.is_paper_trade
     and coalesce(auth.jwt() ->> 'aal', 'aal1') <> 'aal2'
     and (new.leverage, new.stake_amount, new.exchange, new.trading_pair, new.timeframe, new.exchange_credential_id,
          new.stop_loss, new.take_profit, new.risk_percentage, new.daily_loss_limit, new.max_open_trades,
          new.allow_short, new.strategy, new.strategy_id, new.parameters, new.metadata -> 'sizing')
         is distinct from
         (old.leverage, old.stake_amount, old.exchange, old.trading_pair, old.timeframe, old.exchange_credential_id,
          old.stop_loss, old.take_profit, old.risk_percentage, old.daily_loss_limit, old.max_open_trades,
          old.allow_short, old.strategy, old.strategy_id, old.parameters, old.metadata -> 'sizing') then
    raise exception 'changing a live bot''s trading settings needs a session with two-factor authentication (aal2)'
      using errcode = 'insufficient_privilege', constraint = 'bots_live_changes_require_aal2';
  end if;

  -- Someone else's strategy only through an active subscription.
  if new.strategy_id is not null
     and (tg_op = 'INSERT' or new.strategy_id is distinct from old.strategy_id
          or (new.status = 'running' and old.status <> 'running')) then
    select * into v_strategy from public.strategies s where s.id = new.strategy_id;
    if found and v_strategy.user_id <> new.user_id
       and not exists (select 1 from public.strategy_subscriptions ss
                        where ss.strategy_id = new.strategy_id and ss.subscriber_id = new.user_id and ss.status = 'active') then
      raise exception 'a bot can run a marketplace strategy only while its owner subscribes to it'
        using errcode = 'insufficient_privilege', constraint = 'bots_strategy_needs_subscription';
    end if;
  end if;

  -- A platform pause holds until its cause is gone.
  if tg_op = 'UPDATE' and old.pause_cause is not null and new.status = 'running' and old.status <> 'running' then
    case old.pause_cause
      when 'plan' then
        v_plan := private.current_plan(new.user_id);
        select count(*) into v_n from public.bots b where b.user_id = new.user_id and b.status = 'running' and b.id <> new.id;
        v_cause_gone := v_n < v_plan.max_bots;
      when 'credits' then
        select a.credits_posted - a.debits_posted - a.debits_pending into v_available
          from public.credit_accounts a where a.user_id = new.user_id and a.kind = 'user';
        v_cause_gone := coalesce(v_available, 0) > 0;
      when 'daily_loss' then
        v_cause_gone := old.pause_until is not null and now() >= old.pause_until;
      when 'subscription' then
        -- the strategy check above passed (or the bot no longer uses it)
        v_cause_gone := true;
      else
        v_cause_gone := false;
    end case;
    if not v_cause_gone then
      raise exception 'this bot was paused by the platform (%) and cannot run until that changes: %',
        old.pause_cause, coalesce(old.status_reason, old.pause_cause)
        using errcode = 'check_violation', constraint = 'bots_platform_pause_holds';
    end if;
    new.pause_cause := null;
    new.pause_until := null;
  end if;
  return new;
end;
$$;
revoke all on function private.bot_rules() from public, anon, authenticated;
