-- Rules on bots that hold against their owners:
-- * a change to a live bot's risk-relevant settings needs a two-factor (aal2) session;
-- * a bot paused by the platform (plan, credits, daily loss, subscription) resumes only
--   when the cause is gone; the cause is kept in pause_cause (fleet-owned);
-- * a bot runs a marketplace strategy only while its owner subscribes to it, and is
--   paused when the subscription stops being active;
-- * settings are validated and bounded when written.

-- Tables --------------------------------------------------------------------------------

alter table public.bots
  add column pause_cause text constraint bots_pause_cause_known
    check (pause_cause in ('plan', 'credits', 'daily_loss', 'subscription')),
  add column pause_until timestamptz;

-- Settings are JSON objects of bounded size; metadata.sizing is one the engine knows and
-- metadata.paper_fee / paper_slippage are fractions (0 to 0.5).
-- Rows written before these rules are left as they are; every new write is checked.
alter table public.bots
  add constraint bots_parameters_object check (jsonb_typeof(parameters) = 'object' and pg_column_size(parameters) <= 16384) not valid,
  add constraint bots_metadata_object check (jsonb_typeof(metadata) = 'object' and pg_column_size(metadata) <= 16384) not valid,
  add constraint bots_metadata_sizing_known check (coalesce(metadata ->> 'sizing', 'stake') in ('stake', 'risk')) not valid,
  add constraint bots_metadata_paper_costs check (
    (not metadata ? 'paper_fee' or coalesce(private.sizing_number(metadata -> 'paper_fee') between 0 and 0.5, false))
    and (not metadata ? 'paper_slippage' or coalesce(private.sizing_number(metadata -> 'paper_slippage') between 0 and 0.5, false))) not valid,
  add constraint bots_name_length check (char_length(name) <= 200) not valid,
  add constraint bots_status_reason_length check (char_length(status_reason) <= 2000) not valid;

-- Functions -----------------------------------------------------------------------------

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
    elsif new.status = 'running' then
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

-- Plan limits pause with their cause recorded.
create or replace function private.billing_enforce_plan_limits(p_user_id uuid) returns integer
language plpgsql security definer
set search_path = ''
as $$
declare
  v_plan public.plans;
  v_n integer;
begin
  v_plan := private.current_plan(p_user_id);
  update public.bots b
     set status = 'paused', pause_cause = 'plan',
         status_reason = format('plan limit: the %s plan allows %s bots', v_plan.name, v_plan.max_bots)
   where b.id in (select x.id from public.bots x
                   where x.user_id = p_user_id and x.status = 'running'
                   order by x.created_at desc
                   offset greatest(v_plan.max_bots, 0));
  get diagnostics v_n = row_count;
  if v_n > 0 then
    insert into public.notifications (user_id, kind, title, body, data)
    values (p_user_id, 'system', 'Bots paused by your plan',
            format('%s running bot(s) were paused: the %s plan allows %s bots.', v_n, v_plan.name, v_plan.max_bots),
            jsonb_build_object('plan', v_plan.name, 'paused', v_n));
  end if;
  return v_n;
end;
$$;
revoke all on function private.billing_enforce_plan_limits(uuid) from public, anon, authenticated;

-- A subscription that stops being active pauses the subscriber's bots on that strategy.
create or replace function private.strategy_subscription_lapsed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.bots b
     set status = 'paused', pause_cause = 'subscription',
         status_reason = 'the subscription to this bot''s marketplace strategy is ' || new.status
   where b.user_id = new.subscriber_id and b.strategy_id = new.strategy_id and b.status = 'running';
  return null;
end;
$$;
revoke all on function private.strategy_subscription_lapsed() from public, anon, authenticated;

-- Triggers ------------------------------------------------------------------------------

create trigger bots_platform_rules before insert or update on public.bots
  for each row execute function private.bot_rules();
create trigger strategy_subscriptions_lapsed after update of status on public.strategy_subscriptions
  for each row when (old.status = 'active' and new.status <> 'active')
  execute function private.strategy_subscription_lapsed();
