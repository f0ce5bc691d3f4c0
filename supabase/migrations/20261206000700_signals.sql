-- Signals: the strategy marketplace (strategy_marketplace view), provider signals and
-- their lifecycle, strategy subscriptions paid in credits with the provider's revenue
-- share, reviews, and TradingView alerts. Owned by worker.signals.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

create table public.signals (
  id uuid primary key default gen_random_uuid(),
  strategy_id uuid not null references public.strategies (id) on delete cascade,
  provider_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  action text not null default 'entry' constraint signals_action_known check (action in ('entry', 'update', 'exit', 'close')),
  status text not null default 'open' constraint signals_status_known check (status in ('open', 'updated', 'closed', 'cancelled')),
  pair text not null constraint signals_pair_format check (pair ~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$'),
  side text not null constraint signals_side_known check (side in ('long', 'short')),
  entry_price numeric(28, 12) constraint signals_entry_price_positive check (entry_price > 0),
  stop_loss numeric(28, 12) constraint signals_stop_loss_positive check (stop_loss > 0),
  take_profit numeric(28, 12) constraint signals_take_profit_positive check (take_profit > 0),
  leverage numeric(6, 2) not null default 1 constraint signals_leverage_range check (leverage between 1 and 125),
  exit_price numeric(28, 12) constraint signals_exit_price_positive check (exit_price > 0),
  result_pct numeric(12, 4),
  indicators jsonb not null default '{}',
  note text,
  source text not null default 'manual' constraint signals_source_known check (source in ('manual', 'tradingview', 'api')),
  idempotency_key text,
  closed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint signals_idempotency_key_unique unique (strategy_id, idempotency_key)
);

create index signals_strategy_id_idx on public.signals (strategy_id, created_at desc);
create index signals_provider_id_idx on public.signals (provider_id);

create table public.strategy_subscriptions (
  id uuid primary key default gen_random_uuid(),
  strategy_id uuid not null references public.strategies (id) on delete cascade,
  subscriber_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  status text not null default 'active' constraint strategy_subscriptions_status_known
    check (status in ('active', 'paused', 'cancelled', 'expired')),
  auto_execute boolean not null default false,
  bot_id uuid references public.bots (id) on delete set null,
  sizing jsonb not null default '{}',
  price numeric(12, 2) not null default 0 constraint strategy_subscriptions_price_not_negative check (price >= 0),
  current_period_start timestamptz not null default now(),
  current_period_end timestamptz,
  cancelled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint strategy_subscriptions_one_per_subscriber unique (strategy_id, subscriber_id),
  constraint strategy_subscriptions_auto_execute_needs_bot check (not auto_execute or bot_id is not null)
);

create index strategy_subscriptions_subscriber_idx on public.strategy_subscriptions (subscriber_id);
create index strategy_subscriptions_bot_id_idx on public.strategy_subscriptions (bot_id);
create index strategy_subscriptions_active_idx on public.strategy_subscriptions (strategy_id) where status = 'active';

create table public.reviews (
  id uuid primary key default gen_random_uuid(),
  strategy_id uuid not null references public.strategies (id) on delete cascade,
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  rating smallint not null constraint reviews_rating_range check (rating between 1 and 5),
  comment text constraint reviews_comment_length check (char_length(comment) <= 4000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint reviews_one_per_subscriber unique (strategy_id, user_id)
);

create index reviews_user_id_idx on public.reviews (user_id);

-- TradingView alerts. Each strategy may have one secret token; only its SHA-256 is kept,
-- in the private schema (never exposed through the API). The provider sees the token once,
-- when it is (re)generated.
create table private.tradingview_tokens (
  strategy_id uuid primary key references public.strategies (id) on delete cascade,
  token_hash bytea not null constraint tradingview_tokens_hash_unique unique,
  created_at timestamptz not null default now()
);

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

revoke all on public.signals, public.strategy_subscriptions, public.reviews from anon, authenticated;
grant all on public.signals, public.strategy_subscriptions, public.reviews to service_role;
grant select on public.signals, public.strategy_subscriptions, public.reviews to authenticated;
grant select on public.reviews to anon;
grant insert (strategy_id, provider_id, action, pair, side, entry_price, stop_loss, take_profit, leverage, indicators,
              note, idempotency_key)
  on public.signals to authenticated;
grant update (action, status, stop_loss, take_profit, exit_price, indicators, note) on public.signals to authenticated;
grant update (auto_execute, bot_id, sizing) on public.strategy_subscriptions to authenticated;
grant insert (strategy_id, user_id, rating, comment) on public.reviews to authenticated;
grant update (rating, comment) on public.reviews to authenticated;
grant delete on public.reviews to authenticated;
alter table public.signals enable row level security;
alter table public.strategy_subscriptions enable row level security;
alter table public.reviews enable row level security;

-- Who subscribes to what, readable inside policies without recursing through RLS.
create or replace function private.is_active_subscriber(p_strategy_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.strategy_subscriptions ss
     where ss.strategy_id = p_strategy_id and ss.subscriber_id = auth.uid() and ss.status = 'active'
  )
$$;

create or replace function private.has_subscribed(p_strategy_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.strategy_subscriptions ss
     where ss.strategy_id = p_strategy_id and ss.subscriber_id = auth.uid()
  )
$$;

create or replace function private.owns_strategy(p_strategy_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (select 1 from public.strategies s where s.id = p_strategy_id and s.user_id = auth.uid())
$$;

revoke all on function private.is_active_subscriber(uuid), private.has_subscribed(uuid), private.owns_strategy(uuid) from public;
grant execute on function private.is_active_subscriber(uuid), private.has_subscribed(uuid), private.owns_strategy(uuid)
  to authenticated, service_role;
create policy "Providers can read signals of their strategies" on public.signals
  for select to authenticated using (provider_id = (select auth.uid()));
create policy "Active subscribers can read signals" on public.signals
  for select to authenticated using (private.is_active_subscriber(strategy_id));
create policy "Admins can read every signal" on public.signals
  for select to tradefleet_admin using (true);
create policy "Providers can publish signals on their own strategies" on public.signals
  for insert to authenticated with check (
    provider_id = (select auth.uid())
    and (select private.app_role()) in ('provider', 'admin')
    and private.owns_strategy(strategy_id)
  );

create policy "Providers can update their own signals" on public.signals
  for update to authenticated using (provider_id = (select auth.uid())) with check (provider_id = (select auth.uid()));
create policy "Subscribers can read their own subscriptions" on public.strategy_subscriptions
  for select to authenticated using (subscriber_id = (select auth.uid()));
create policy "Providers can read subscriptions to their strategies" on public.strategy_subscriptions
  for select to authenticated using (private.owns_strategy(strategy_id));
create policy "Admins can read every subscription to a strategy" on public.strategy_subscriptions
  for select to tradefleet_admin using (true);
create policy "Subscribers can change execution of their own subscriptions" on public.strategy_subscriptions
  for update to authenticated using (subscriber_id = (select auth.uid())) with check (
    subscriber_id = (select auth.uid())
    and (bot_id is null or exists (select 1 from public.bots b where b.id = bot_id and b.user_id = (select auth.uid())))
  );

create policy "Anyone can read reviews of marketplace strategies" on public.reviews
  for select to anon, authenticated using (exists (select 1 from public.strategies s where s.id = strategy_id));
create policy "Subscribers can review a strategy once" on public.reviews
  for insert to authenticated with check (user_id = (select auth.uid()) and private.has_subscribed(strategy_id));
create policy "Users can edit their own reviews" on public.reviews
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy "Users can delete their own reviews" on public.reviews
  for delete to authenticated using (user_id = (select auth.uid()));
revoke all on private.tradingview_tokens from public, anon, authenticated, service_role;

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

-- The public name of a marketplace author, and nothing else of their profile.
create or replace function private.author_name(p_user_id uuid) returns text
language sql stable security definer
set search_path = ''
as $$
  select p.full_name
    from public.profiles p
   where p.id = p_user_id
     and exists (select 1 from public.strategies s
                  where s.user_id = p_user_id and s.is_public and s.strategy_type = 'marketplace' and s.is_verified)
$$;

revoke all on function private.author_name(uuid) from public;
grant execute on function private.author_name(uuid) to anon, authenticated, service_role;

create or replace view public.strategy_marketplace
with (security_invoker = true) as
select s.id,
       s.user_id as author_id,
       private.author_name(s.user_id) as author_name,
       s.name,
       s.description,
       s.engine,
       s.category,
       s.tags,
       s.risk_level,
       s.monthly_price,
       s.performance,
       s.avg_backtest_return as avg_return_percentage,
       s.backtest_count,
       coalesce(r.avg_rating, 0) as avg_rating,
       coalesce(r.review_count, 0) as review_count,
       s.created_at
  from public.strategies s
  left join lateral (
    select round(avg(rv.rating), 2) as avg_rating, count(*) as review_count
      from public.reviews rv where rv.strategy_id = s.id
  ) r on true
 where s.is_public and s.strategy_type = 'marketplace' and s.is_verified;

revoke all on public.strategy_marketplace from anon, authenticated;
grant select on public.strategy_marketplace to anon, authenticated, service_role;

-- Revenue share ---------------------------------------------------------------------------

-- The subscriber pays a strategy subscription's period in credits: the provider's share
-- (strategies.provider_share, default 0.80) goes to their provider_earnings account, the
-- rest to system:platform_revenue. Both transfers or neither. p_id identifies the payment
-- (one per subscription period); the platform's transfer id is derived from it.
-- Returns the provider's transfer and the platform's.
create or replace function public.credit_pay_strategy_subscription(
  p_id uuid,
  p_strategy_subscription_id uuid,
  p_amount numeric default null
) returns setof public.credit_transfers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions;
  v_strategy public.strategies;
  v_amount numeric;
  v_provider_part numeric;
  v_subscriber_account uuid;
  v_provider_account uuid;
  v_platform_account uuid := private.credit_system_account('system:platform_revenue');
  v_platform_id uuid := md5('credit-revenue-share-platform:' || p_id::text)::uuid;
  v_reference text;
begin
  perform private.credit_require_service();
  select * into v_sub from public.strategy_subscriptions s where s.id = p_strategy_subscription_id;
  if not found then
    raise exception 'strategy subscription % does not exist', p_strategy_subscription_id using errcode = 'no_data_found';
  end if;
  select * into v_strategy from public.strategies s where s.id = v_sub.strategy_id;
  v_amount := coalesce(p_amount, nullif(v_sub.price, 0), v_strategy.monthly_price);
  if v_amount is null or v_amount <= 0 then
    perform private.credit_raise('amount_must_be_positive', p_id, null, v_amount);
  end if;
  v_provider_part := round(v_amount * v_strategy.provider_share, 8);
  v_subscriber_account := private.credit_user_account(v_sub.subscriber_id);
  v_provider_account := private.credit_user_account(v_strategy.user_id, 'provider_earnings');
  v_reference := v_sub.id::text;

  perform 1 from public.credit_accounts a
   where a.id in (v_subscriber_account, v_provider_account, v_platform_account)
   order by a.user_id is null, a.id for no key update;

  if v_provider_part > 0 then
    return next private.credit_apply_or_raise(
      p_id, 'transfer', v_subscriber_account, v_provider_account, v_provider_part, 'revenue_share', null, null,
      'strategy_subscription', v_reference,
      jsonb_build_object('share', 'provider', 'provider_share', v_strategy.provider_share, 'payment', v_amount));
  end if;
  if v_amount - v_provider_part > 0 then
    return next private.credit_apply_or_raise(
      case when v_provider_part > 0 then v_platform_id else p_id end, 'transfer', v_subscriber_account,
      v_platform_account, v_amount - v_provider_part, 'revenue_share', null, null,
      'strategy_subscription', v_reference,
      jsonb_build_object('share', 'platform', 'provider_share', v_strategy.provider_share, 'payment', v_amount));
  end if;
end;
$$;

revoke execute on function public.credit_pay_strategy_subscription(uuid, uuid, numeric) from public, anon, authenticated;
grant execute on function public.credit_pay_strategy_subscription(uuid, uuid, numeric) to service_role;

-- Marketplace: the signal lifecycle and per-strategy performance, strategy subscriptions
-- (subscribe / pause / resume / cancel, monthly price paid in credits with the revenue
-- share through the ledger, renewals), and TradingView alert tokens.

-- Signal lifecycle: open -> updated* -> closed (with result) | cancelled.
-- A provider publishes with an insert (always 'open'); any later change of stop-loss,
-- take-profit, indicators or note makes it 'updated'; action 'exit'/'close' or status
-- 'closed' closes it at exit_price and computes result_pct; 'cancelled' withdraws it.
-- A closed or cancelled signal is history and never changes again.
create or replace function private.signal_lifecycle() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    new.status := 'open';
    new.action := 'entry';
    new.exit_price := null;
    new.result_pct := null;
    new.closed_at := null;
    return new;
  end if;

  if old.status in ('closed', 'cancelled') then
    raise exception 'signal % is % and can no longer change', old.id, old.status
      using errcode = 'check_violation', constraint = 'signals_closed_is_final';
  end if;
  if new.strategy_id <> old.strategy_id or new.provider_id <> old.provider_id or new.pair <> old.pair
     or new.side <> old.side or new.entry_price is distinct from old.entry_price
     or new.leverage <> old.leverage or new.source <> old.source then
    raise exception 'a signal''s strategy, pair, side, entry and leverage are fixed once published'
      using errcode = 'check_violation', constraint = 'signals_terms_fixed';
  end if;

  if new.status = 'cancelled' then
    new.closed_at := now();
    new.result_pct := null;
  elsif new.status = 'closed' or new.action in ('exit', 'close') then
    if new.exit_price is null then
      raise exception 'closing a signal needs its exit_price'
        using errcode = 'not_null_violation', constraint = 'signals_closed_has_exit_price';
    end if;
    new.status := 'closed';
    new.action := 'close';
    new.closed_at := now();
    new.result_pct := case when new.entry_price is not null then
      round((new.exit_price / new.entry_price - 1) * 100 * case new.side when 'long' then 1 else -1 end, 4) end;
  else
    new.status := 'updated';
    new.action := 'update';
    new.exit_price := null;
  end if;
  return new;
end;
$$;

revoke all on function private.signal_lifecycle() from public, anon, authenticated;

-- Per-strategy signal performance, kept on strategies.performance (readable by everyone
-- who can see the strategy, so marketplace readers never touch subscriber-only signals).
create or replace function private.refresh_signal_performance(p_strategy_id uuid) returns void
language sql security definer
set search_path = ''
as $$
  update public.strategies s
     set performance = s.performance || jsonb_build_object(
           'signals_total', f.total,
           'signals_open', f.open,
           'signals_closed', f.closed,
           'wins', f.wins,
           'losses', f.losses,
           'win_rate', case when f.closed > 0 then round(f.wins::numeric / f.closed * 100, 2) else 0 end,
           'avg_return_pct', coalesce(f.avg_return, 0),
           'total_return_pct', coalesce(f.total_return, 0),
           'last_signal_at', f.last_at)
    from (select count(*) as total,
                 count(*) filter (where g.status in ('open', 'updated')) as open,
                 count(*) filter (where g.status = 'closed') as closed,
                 count(*) filter (where g.status = 'closed' and g.result_pct > 0) as wins,
                 count(*) filter (where g.status = 'closed' and g.result_pct <= 0) as losses,
                 round(avg(g.result_pct) filter (where g.status = 'closed'), 4) as avg_return,
                 round(sum(g.result_pct) filter (where g.status = 'closed'), 4) as total_return,
                 max(g.created_at) as last_at
            from public.signals g where g.strategy_id = p_strategy_id) f
   where s.id = p_strategy_id
$$;

revoke all on function private.refresh_signal_performance(uuid) from public, anon, authenticated;

-- After a signal is published or changes state: refresh the figures and hand the signal
-- to the fleet (copy execution and subscriber notifications), once per state change.
create or replace function private.signal_after_change() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_phase text;
begin
  if tg_op = 'INSERT' or new.status is distinct from old.status then
    perform private.refresh_signal_performance(new.strategy_id);
  end if;
  v_phase := case
    when tg_op = 'INSERT' then 'open'
    when new.status in ('closed', 'cancelled') then 'close'
    else 'update' end;
  perform public.enqueue_job(
    'signals.fanout',
    jsonb_build_object('signal_id', new.id, 'phase', v_phase),
    'default', null, 10, 10,
    'signal-fanout:' || new.id || ':' || v_phase ||
      case when v_phase = 'update' then ':' || extract(epoch from new.updated_at)::text else '' end);
  return null;
end;
$$;

revoke all on function private.signal_after_change() from public, anon, authenticated;

-- Strategy subscriptions.

-- The subscription of the caller, locked; raises when it is not theirs.
create or replace function private.own_strategy_subscription(p_subscription_id uuid)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions;
begin
  select * into v_sub from public.strategy_subscriptions s where s.id = p_subscription_id for update;
  if not found or (v_sub.subscriber_id is distinct from (select auth.uid()) and not private.is_service()) then
    raise exception 'no such subscription of yours: %', p_subscription_id using errcode = 'no_data_found';
  end if;
  return v_sub;
end;
$$;

revoke all on function private.own_strategy_subscription(uuid) from public, anon, authenticated;

-- Charge one period of a subscription (monthly price in credits, split provider/platform by
-- the ledger) and move the period forward. The payment id is derived from the subscription
-- and the period start, so a retried renewal charges once.
create or replace function private.charge_strategy_period(p_sub public.strategy_subscriptions, p_start timestamptz)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_price numeric;
  v_sub public.strategy_subscriptions;
begin
  select s.monthly_price into v_price from public.strategies s where s.id = p_sub.strategy_id;
  if v_price > 0 then
    perform public.credit_pay_strategy_subscription(
      md5('strategy-subscription-period:' || p_sub.id || ':' || p_start)::uuid, p_sub.id, v_price);
  end if;
  update public.strategy_subscriptions s
     set status = 'active', price = coalesce(v_price, 0), current_period_start = p_start,
         current_period_end = p_start + interval '1 month', cancelled_at = null
   where s.id = p_sub.id
  returning * into v_sub;
  return v_sub;
end;
$$;

revoke all on function private.charge_strategy_period(public.strategy_subscriptions, timestamptz) from public, anon, authenticated;

-- Subscribe the caller to a marketplace strategy. The first month is paid at once in
-- credits (insufficient credits: nothing happens and the error says so). Subscribing again
-- while active returns the subscription unchanged; a cancelled or expired one starts anew.
create or replace function public.subscribe_to_strategy(
  p_strategy_id uuid,
  p_auto_execute boolean default false,
  p_bot_id uuid default null,
  p_sizing jsonb default '{}'
) returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_user uuid := (select auth.uid());
  v_strategy public.strategies;
  v_sub public.strategy_subscriptions;
begin
  if v_user is null then
    raise exception 'sign in to subscribe' using errcode = 'insufficient_privilege';
  end if;
  select * into v_strategy from public.strategies s
   where s.id = p_strategy_id and s.is_public and s.strategy_type = 'marketplace' and s.is_verified;
  if not found then
    raise exception 'strategy % is not on the marketplace', p_strategy_id using errcode = 'no_data_found';
  end if;
  if v_strategy.user_id = v_user then
    raise exception 'providers cannot subscribe to their own strategy' using errcode = 'check_violation',
      constraint = 'strategy_subscriptions_not_own_strategy';
  end if;
  if p_bot_id is not null and not exists (select 1 from public.bots b where b.id = p_bot_id and b.user_id = v_user) then
    raise exception 'bot % is not yours', p_bot_id using errcode = 'insufficient_privilege';
  end if;
  if p_auto_execute and p_bot_id is null then
    raise exception 'auto-execution needs a bot' using errcode = 'check_violation',
      constraint = 'strategy_subscriptions_auto_execute_needs_bot';
  end if;

  insert into public.strategy_subscriptions (strategy_id, subscriber_id, status, auto_execute, bot_id, sizing, price,
                                             current_period_start, current_period_end)
  values (p_strategy_id, v_user, 'expired', p_auto_execute, p_bot_id, coalesce(p_sizing, '{}'),
          v_strategy.monthly_price, now(), now())
  on conflict (strategy_id, subscriber_id) do nothing;
  select * into v_sub from public.strategy_subscriptions s
   where s.strategy_id = p_strategy_id and s.subscriber_id = v_user for update;
  if v_sub.status = 'active' then
    return v_sub;
  end if;
  if v_sub.status = 'paused' then
    raise exception 'subscription % is paused: resume it instead', v_sub.id using errcode = 'check_violation',
      constraint = 'strategy_subscriptions_resume_paused';
  end if;
  update public.strategy_subscriptions s
     set auto_execute = p_auto_execute, bot_id = p_bot_id, sizing = coalesce(p_sizing, '{}')
   where s.id = v_sub.id
  returning * into v_sub;
  return private.charge_strategy_period(v_sub, now());
end;
$$;

revoke execute on function public.subscribe_to_strategy(uuid, boolean, uuid, jsonb) from public, anon;
grant execute on function public.subscribe_to_strategy(uuid, boolean, uuid, jsonb) to authenticated, service_role;

-- Pause: signals stop (no reading, no copy execution) until resumed; the paid period runs on.
create or replace function public.pause_strategy_subscription(p_subscription_id uuid)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions := private.own_strategy_subscription(p_subscription_id);
begin
  if v_sub.status not in ('active', 'paused') then
    raise exception 'only an active subscription can be paused (this one is %)', v_sub.status
      using errcode = 'check_violation', constraint = 'strategy_subscriptions_pause_active';
  end if;
  update public.strategy_subscriptions s set status = 'paused' where s.id = v_sub.id returning * into v_sub;
  return v_sub;
end;
$$;

revoke execute on function public.pause_strategy_subscription(uuid) from public, anon;
grant execute on function public.pause_strategy_subscription(uuid) to authenticated, service_role;

-- Resume a paused subscription; a period that ended meanwhile is charged anew.
create or replace function public.resume_strategy_subscription(p_subscription_id uuid)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions := private.own_strategy_subscription(p_subscription_id);
begin
  if v_sub.status = 'active' then
    return v_sub;
  end if;
  if v_sub.status <> 'paused' then
    raise exception 'only a paused subscription can be resumed (this one is %): subscribe again', v_sub.status
      using errcode = 'check_violation', constraint = 'strategy_subscriptions_resume_paused';
  end if;
  if v_sub.current_period_end is null or v_sub.current_period_end <= now() then
    return private.charge_strategy_period(v_sub, now());
  end if;
  update public.strategy_subscriptions s set status = 'active' where s.id = v_sub.id returning * into v_sub;
  return v_sub;
end;
$$;

revoke execute on function public.resume_strategy_subscription(uuid) from public, anon;
grant execute on function public.resume_strategy_subscription(uuid) to authenticated, service_role;

-- Cancel: access and copy execution end now; nothing more is charged.
create or replace function public.cancel_strategy_subscription(p_subscription_id uuid)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions := private.own_strategy_subscription(p_subscription_id);
begin
  if v_sub.status in ('cancelled', 'expired') then
    return v_sub;
  end if;
  update public.strategy_subscriptions s
     set status = 'cancelled', cancelled_at = now(), auto_execute = false
   where s.id = v_sub.id
  returning * into v_sub;
  return v_sub;
end;
$$;

revoke execute on function public.cancel_strategy_subscription(uuid) from public, anon;
grant execute on function public.cancel_strategy_subscription(uuid) to authenticated, service_role;

-- The scheduler's renewal sweep: every active subscription whose period ended is charged
-- for the next one; one without the credits expires and its subscriber is told. Each
-- subscription renews in its own subtransaction, so one failure never blocks the others.
create or replace function public.renew_strategy_subscriptions(p_limit integer default 1000)
returns table (renewed integer, expired integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions;
  v_name text;
begin
  if not private.is_service() then
    raise exception 'only the service role renews subscriptions' using errcode = 'insufficient_privilege';
  end if;
  renewed := 0;
  expired := 0;
  for v_sub in select * from public.strategy_subscriptions s
                where s.status = 'active' and s.current_period_end <= now()
                order by s.current_period_end
                limit p_limit
                for update skip locked loop
    begin
      perform private.charge_strategy_period(v_sub, v_sub.current_period_end);
      renewed := renewed + 1;
    exception when check_violation or invalid_parameter_value then
      update public.strategy_subscriptions s set status = 'expired', auto_execute = false where s.id = v_sub.id;
      select st.name into v_name from public.strategies st where st.id = v_sub.strategy_id;
      insert into public.notifications (user_id, kind, title, body, data)
      values (v_sub.subscriber_id, 'low_credits', 'Subscription expired',
              format('Your subscription to %s could not renew: %s', v_name, sqlerrm),
              jsonb_build_object('strategy_id', v_sub.strategy_id, 'subscription_id', v_sub.id));
      expired := expired + 1;
    end;
  end loop;
  return next;
end;
$$;

revoke execute on function public.renew_strategy_subscriptions(integer) from public, anon, authenticated;
grant execute on function public.renew_strategy_subscriptions(integer) to service_role;

create or replace function public.rotate_tradingview_token(p_strategy_id uuid) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_token text := 'tv_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
begin
  if not exists (select 1 from public.strategies s where s.id = p_strategy_id and s.user_id = (select auth.uid()))
     or private.app_role() not in ('provider', 'admin') then
    raise exception 'only the provider of strategy % can set its TradingView token', p_strategy_id
      using errcode = 'insufficient_privilege';
  end if;
  insert into private.tradingview_tokens (strategy_id, token_hash)
  values (p_strategy_id, sha256(convert_to(v_token, 'UTF8')))
  on conflict (strategy_id) do update set token_hash = excluded.token_hash, created_at = now();
  return v_token;
end;
$$;

revoke execute on function public.rotate_tradingview_token(uuid) from public, anon;
grant execute on function public.rotate_tradingview_token(uuid) to authenticated;

-- An alert from TradingView, already parsed by the tradingview-webhook function:
-- p_alert = {action: entry|update|exit|close|cancel, pair, side, price, stop_loss,
-- take_profit, leverage, indicators, note, idempotency_key}. entry publishes a signal
-- (once per idempotency key); the others apply to the strategy's latest live signal on the
-- pair. Returns {status: created|duplicate|updated|closed|cancelled|no_open_signal, signal_id}.
create or replace function public.ingest_tradingview_alert(p_token text, p_alert jsonb) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_strategy public.strategies;
  v_action text := lower(coalesce(p_alert ->> 'action', 'entry'));
  v_signal_id uuid;
begin
  if not private.is_service() then
    raise exception 'only the service role ingests TradingView alerts' using errcode = 'insufficient_privilege';
  end if;
  select s.* into v_strategy
    from private.tradingview_tokens t join public.strategies s on s.id = t.strategy_id
   where t.token_hash = sha256(convert_to(coalesce(p_token, ''), 'UTF8'));
  if not found then
    return jsonb_build_object('status', 'invalid_token');
  end if;

  if v_action = 'entry' then
    insert into public.signals (strategy_id, provider_id, pair, side, entry_price, stop_loss, take_profit, leverage,
                                indicators, note, source, idempotency_key)
    values (v_strategy.id, v_strategy.user_id, p_alert ->> 'pair', p_alert ->> 'side',
            (p_alert ->> 'price')::numeric, (p_alert ->> 'stop_loss')::numeric, (p_alert ->> 'take_profit')::numeric,
            coalesce((p_alert ->> 'leverage')::numeric, 1), coalesce(p_alert -> 'indicators', '{}'),
            p_alert ->> 'note', 'tradingview', p_alert ->> 'idempotency_key')
    on conflict (strategy_id, idempotency_key) do nothing
    returning id into v_signal_id;
    if v_signal_id is null then
      select g.id into v_signal_id from public.signals g
       where g.strategy_id = v_strategy.id and g.idempotency_key = p_alert ->> 'idempotency_key';
      return jsonb_build_object('status', 'duplicate', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
    end if;
    return jsonb_build_object('status', 'created', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
  end if;

  select g.id into v_signal_id from public.signals g
   where g.strategy_id = v_strategy.id and g.pair = p_alert ->> 'pair' and g.status in ('open', 'updated')
     and (p_alert ->> 'side' is null or g.side = p_alert ->> 'side')
   order by g.created_at desc limit 1
   for update;
  if v_signal_id is null then
    return jsonb_build_object('status', 'no_open_signal', 'strategy_id', v_strategy.id);
  end if;
  if v_action in ('exit', 'close') then
    update public.signals g set action = 'close', exit_price = (p_alert ->> 'price')::numeric where g.id = v_signal_id;
    return jsonb_build_object('status', 'closed', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
  elsif v_action = 'cancel' then
    update public.signals g set status = 'cancelled' where g.id = v_signal_id;
    return jsonb_build_object('status', 'cancelled', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
  end if;
  update public.signals g
     set action = 'update',
         stop_loss = coalesce((p_alert ->> 'stop_loss')::numeric, g.stop_loss),
         take_profit = coalesce((p_alert ->> 'take_profit')::numeric, g.take_profit),
         indicators = g.indicators || coalesce(p_alert -> 'indicators', '{}'),
         note = coalesce(p_alert ->> 'note', g.note)
   where g.id = v_signal_id;
  return jsonb_build_object('status', 'updated', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
end;
$$;

revoke execute on function public.ingest_tradingview_alert(text, jsonb) from public, anon, authenticated;
grant execute on function public.ingest_tradingview_alert(text, jsonb) to service_role;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger signals_updated_at before update on public.signals
  for each row execute function private.set_updated_at();
create trigger strategy_subscriptions_updated_at before update on public.strategy_subscriptions
  for each row execute function private.set_updated_at();
create trigger reviews_updated_at before update on public.reviews
  for each row execute function private.set_updated_at();
create trigger signals_lifecycle before insert or update on public.signals
  for each row execute function private.signal_lifecycle();
create trigger signals_after_change after insert or update on public.signals
  for each row execute function private.signal_after_change();

-- ======================================================================================
-- Realtime
-- ======================================================================================

alter publication supabase_realtime add table public.signals;
