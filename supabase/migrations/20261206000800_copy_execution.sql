-- Copy execution: one signal reaches every auto-executing subscriber in one set-based
-- pass (signal_executions, signal_fanouts, signal_fan_out, signal_charge_copies).
-- Owned by worker.signals (job signals.fanout).

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

-- Copy trades belong to copy execution, never to the bot runner.
--
-- Copy execution (public.signal_fan_out) writes its paper fills onto a subscriber's running
-- bot through the bot engine's own path (public.bot_apply_steps), and closes them when the
-- signal closes (private.signal_fan_out_close). The bot's runner keeps its own paper
-- account and rebuilds it from the database when it takes a bot over. The rule, single
-- and explicit:
--
-- - Every order and trade of a copy carries the signal it copies (orders.signal_id,
--   trades.signal_id); the bot runner's rows carry none.
-- - Rows with a signal_id are owned by copy execution: only the signal's close closes
--   them. The runner's loads (open trades, open orders, realized and today's profit; see
--   worker/bots/store.py) leave them out, so a rebuilt paper account, its balance and its
--   daily loss limit are the runner's own, and no stop-loss, take-profit or strategy exit
--   of the runner ever touches a copy.
-- - What is about the whole bot counts both: bot statistics (update_bot_statistics), and
--   the fan-out's own eligibility checks (max open trades, daily loss limit, balance).
--
-- Copy execution: one signal reaches every subscriber in one set-based pass.
--
-- public.signal_fan_out(signal, phase) runs in the fleet (job signals.fanout, enqueued by
-- the signals trigger). For 'open' it takes every active, auto-executing subscription of
-- the strategy at once, sizes each copy with the subscriber's own sizing and their bot's
-- risk limits, skips those whose available credits do not cover the plan's credits per
-- trade, and persists the paper fills (orders + open trades) through the bot engine's own
-- path, public.bot_apply_steps, under each bot's current lease epoch (fencing).
-- Subscribers without credits, over a limit or without a running paper bot are skipped
-- and notified; they never block the others. The credits of the copies are then charged
-- through the ledger by public.signal_charge_copies in chunks, each its own transaction
-- (every charge moves to the one system:usage account, so one huge transaction would
-- serialize on it); a charge the ledger rejects is recorded and the subscriber told. 'close' closes the copies at the signal's exit price;
-- 'update' only notifies. public.signal_executions records one row per (signal,
-- subscription, phase): the gate that makes the whole pass idempotent.
--
-- signal_executions keeps only the foreign keys that cascade (signal, subscription): the
-- subscriber follows from the subscription, the bot is a record of where the copy went.
create table public.signal_executions (
  id uuid primary key default gen_random_uuid(),
  signal_id uuid not null references public.signals (id) on delete cascade,
  subscription_id uuid not null references public.strategy_subscriptions (id) on delete cascade,
  subscriber_id uuid not null,
  bot_id uuid,
  phase text not null constraint signal_executions_phase_known check (phase in ('open', 'close')),
  status text not null constraint signal_executions_status_known check (status in ('executed', 'skipped')),
  reason text,
  -- The copy's order and trade (ids derived from signal and subscription). Not foreign
  -- keys: the execution row is the gate, written before them, and orders/trades are
  -- partitioned by time in production.
  order_id uuid,
  trade_id uuid,
  amount numeric(28, 12),
  price numeric(28, 12),
  credits_due numeric(24, 8) not null default 0,
  charge_status text not null default 'none' constraint signal_executions_charge_status_known
    check (charge_status in ('none', 'pending', 'charged', 'rejected')),
  created_at timestamptz not null default now(),
  constraint signal_executions_once_per_phase unique (signal_id, subscription_id, phase)
);

create index signal_executions_subscription_id_idx on public.signal_executions (subscription_id);
create index signal_executions_subscriber_id_idx on public.signal_executions (subscriber_id, created_at desc);
create index signal_executions_charge_pending_idx on public.signal_executions (signal_id) where charge_status = 'pending';

-- Which phases of a signal have been announced to its followers (once each).
create table private.signal_fanouts (
  signal_id uuid not null references public.signals (id) on delete cascade,
  phase text not null,
  created_at timestamptz not null default now(),
  primary key (signal_id, phase)
);

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

revoke all on public.signal_executions from anon, authenticated;
grant all on public.signal_executions to service_role;
grant select on public.signal_executions to authenticated;
alter table public.signal_executions enable row level security;
create policy "Subscribers can read their own copy executions" on public.signal_executions
  for select to authenticated using (subscriber_id = (select auth.uid()));
create policy "Admins can read every copy execution" on public.signal_executions
  for select to authenticated using ((select private.is_admin()));
revoke all on private.signal_fanouts from public, anon, authenticated, service_role;

-- ======================================================================================
-- Functions and views, each followed by its grants
-- ======================================================================================

-- True the first time (signal, phase) is announced, false on every repeat.
create or replace function private.signal_first_announcement(p_signal_id uuid, p_phase text) returns boolean
language plpgsql security definer
set search_path = ''
as $$
declare
  v_n integer;
begin
  insert into private.signal_fanouts (signal_id, phase) values (p_signal_id, p_phase) on conflict do nothing;
  get diagnostics v_n = row_count;
  return v_n = 1;
end;
$$;

revoke all on function private.signal_first_announcement(uuid, text) from public, anon, authenticated;

-- The 'close' phase: every open copy of the signal is closed at its exit price (at entry
-- when the signal was cancelled: no gain, no loss), through the bot engine's path.
create or replace function private.signal_fan_out_close(p_sig public.signals, p_label text)
returns table (executed integer, skipped integer, notified integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_exit numeric;
  v_stale integer;
  v_chunk integer;
begin
  executed := 0; skipped := 0; notified := 0;
  v_exit := coalesce(case when p_sig.status = 'closed' then p_sig.exit_price end, p_sig.entry_price,
                     (select c.close from public.candles c where c.symbol = p_sig.pair order by c.open_time desc limit 1));

  create temporary table if not exists fanout_closes (
    subscription_id uuid primary key, subscriber_id uuid, trade public.trades, epoch bigint, reason text,
    chunk integer
  ) on commit drop;
  truncate pg_temp.fanout_closes;

  with todo as (
    select e.subscription_id, e.subscriber_id, t as trade, l.epoch,
           case when v_exit is null then 'no_price' when l.epoch is null then 'bot_not_running' end as reason
      from public.signal_executions e
      join public.trades t on t.id = e.trade_id and t.status = 'open'
      left join public.bot_leases l on l.bot_id = t.bot_id
     where e.signal_id = p_sig.id and e.phase = 'open' and e.status = 'executed'
  ), gate as (
    insert into public.signal_executions (signal_id, subscription_id, subscriber_id, bot_id, phase, status, reason,
                                          order_id, trade_id, amount, price)
    select p_sig.id, d.subscription_id, d.subscriber_id, (d.trade).bot_id, 'close',
           case when d.reason is null then 'executed' else 'skipped' end, d.reason,
           case when d.reason is null then md5('copy-order:' || p_sig.id || ':' || d.subscription_id || ':close')::uuid end,
           (d.trade).id, (d.trade).amount, v_exit
      from todo d
    on conflict (signal_id, subscription_id, phase) do nothing
    returning subscription_id
  )
  insert into pg_temp.fanout_closes
  select d.subscription_id, d.subscriber_id, d.trade, d.epoch, d.reason,
         ((row_number() over (order by d.subscription_id)) - 1)::integer / 1000
    from todo d join gate g on g.subscription_id = d.subscription_id;

  select count(*) filter (where f.reason is null), count(*) filter (where f.reason is not null)
    into executed, skipped from pg_temp.fanout_closes f;

  for v_chunk in select distinct f.chunk from pg_temp.fanout_closes f where f.reason is null order by 1 loop
  with stale as (select s.stale_bot_id from public.bot_apply_steps(
    coalesce((select jsonb_agg(jsonb_build_object('bot_id', (f.trade).bot_id, 'epoch', f.epoch))
                from pg_temp.fanout_closes f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(jsonb_build_object(
                'id', md5('copy-order:' || p_sig.id || ':' || f.subscription_id || ':close')::uuid,
                'bot_id', (f.trade).bot_id, 'user_id', f.subscriber_id,
                'client_order_id', 'tfc-' || substr(md5(p_sig.id || ':' || f.subscription_id || ':close'), 1, 28),
                'exchange', (f.trade).exchange, 'symbol', (f.trade).trading_pair,
                'side', case (f.trade).direction when 'long' then 'sell' else 'buy' end, 'order_type', 'market',
                'amount', (f.trade).amount, 'filled', (f.trade).amount, 'average_price', v_exit,
                'fee', round((f.trade).amount * v_exit * private.copy_fee_rate(), 12),
                'fee_currency', split_part(split_part((f.trade).trading_pair, '/', 2), ':', 1),
                'status', 'closed', 'reason', 'copy of signal ' || p_sig.id || ' closed', 'is_paper_trade', true, 'signal_id', p_sig.id,
                'lease_epoch', f.epoch))
                from pg_temp.fanout_closes f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(to_jsonb(f.trade) || jsonb_build_object(
                'exit_price', v_exit, 'exit_time', now(), 'status', 'closed',
                'exit_reason', case p_sig.status when 'cancelled' then 'signal_cancelled' else 'signal_closed' end,
                'exit_order_id', md5('copy-order:' || p_sig.id || ':' || f.subscription_id || ':close')::uuid,
                'fee', (f.trade).fee + round((f.trade).amount * v_exit * private.copy_fee_rate(), 12),
                'profit', x.profit,
                'profit_percentage', round(x.profit / ((f.trade).amount * (f.trade).price) * 100, 4),
                'lease_epoch', f.epoch))
                from pg_temp.fanout_closes f
                cross join lateral (select round(((v_exit - (f.trade).price) * (f.trade).amount
                                                  * case (f.trade).direction when 'long' then 1 else -1 end)
                                                 - (f.trade).fee - (f.trade).amount * v_exit * private.copy_fee_rate(), 12)
                                           as profit) x
               where f.reason is null and f.chunk = v_chunk), '[]')) s)
  update public.signal_executions e
     set status = 'skipped', reason = 'bot_lease_changed', order_id = null
    from stale where e.signal_id = p_sig.id and e.phase = 'close' and e.bot_id = stale.stale_bot_id;
  get diagnostics v_stale = row_count;
  executed := executed - v_stale;
  skipped := skipped + v_stale;
  end loop;

  if private.signal_first_announcement(p_sig.id, 'close') then
    insert into public.notifications (user_id, kind, title, body, data)
    select ss.subscriber_id, 'signal',
           case p_sig.status when 'cancelled' then 'Signal cancelled: ' else 'Signal closed: ' end || p_label,
           case when p_sig.status = 'closed'
                then format('Exit %s, result %s%%.', p_sig.exit_price, coalesce(p_sig.result_pct::text, '-'))
                else 'The provider withdrew this signal.' end,
           jsonb_build_object('signal_id', p_sig.id, 'strategy_id', p_sig.strategy_id, 'status', p_sig.status,
                              'result_pct', p_sig.result_pct)
      from public.strategy_subscriptions ss
     where ss.strategy_id = p_sig.strategy_id and ss.status = 'active';
    get diagnostics notified = row_count;
  end if;
  return next;
end;
$$;

revoke all on function private.signal_fan_out_close(public.signals, text) from public, anon, authenticated;

-- Paper copies pay the taker fee the paper exchange would charge by default.
create or replace function private.copy_fee_rate() returns numeric
language sql immutable
set search_path = ''
as $$ select 0.001::numeric $$;

-- The fan-out hands its fills to public.bot_apply_steps in chunks of 1,000 bots (that
-- function checks every row against its batch's array of bot ids, so one call with all
-- 10,000 bots costs 10,000 x 10,000 comparisons).
create or replace function public.signal_fan_out(p_signal_id uuid, p_phase text default 'open')
returns table (executed integer, skipped integer, notified integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sig public.signals;
  v_strategy_name text;
    v_price numeric;
  v_label text;
  v_announce boolean;
  v_stale integer;
  v_free_plan uuid;
  v_chunk integer;
begin
  if not private.is_service() then
    raise exception 'only the fleet fans signals out' using errcode = 'insufficient_privilege';
  end if;
  if p_phase not in ('open', 'close', 'update') then
    raise exception 'unknown fan-out phase %', p_phase using errcode = 'invalid_parameter_value';
  end if;
  executed := 0; skipped := 0; notified := 0;
  select * into v_sig from public.signals g where g.id = p_signal_id;
  if not found then
    return next;
    return;
  end if;
  select s.name into v_strategy_name from public.strategies s where s.id = v_sig.strategy_id;
  v_label := format('%s %s %s', v_strategy_name, upper(v_sig.side), v_sig.pair);

  if p_phase = 'update' then
    if not private.signal_first_announcement(v_sig.id, 'update:' || v_sig.updated_at) then
      return next;
      return;
    end if;
    insert into public.notifications (user_id, kind, title, body, data)
    select ss.subscriber_id, 'signal', 'Signal updated: ' || v_label,
           format('Stop-loss %s, take-profit %s.', coalesce(v_sig.stop_loss::text, '-'), coalesce(v_sig.take_profit::text, '-')),
           jsonb_build_object('signal_id', v_sig.id, 'strategy_id', v_sig.strategy_id, 'status', v_sig.status)
      from public.strategy_subscriptions ss
     where ss.strategy_id = v_sig.strategy_id and ss.status = 'active';
    get diagnostics notified = row_count;
    return next;
    return;
  end if;

  if p_phase = 'close' then
    return query select * from private.signal_fan_out_close(v_sig, v_label);
    return;
  end if;

  -- 'open' ------------------------------------------------------------------------------
  if v_sig.status not in ('open', 'updated') then
    return next;   -- closed before it could be copied: nothing to open
    return;
  end if;
  v_free_plan := (select pl.id from public.plans pl where pl.name = 'Free');
  -- A signal without an entry price copies at the last close of its market.
  v_price := coalesce(v_sig.entry_price,
                      (select c.close from public.candles c where c.symbol = v_sig.pair
                        order by c.open_time desc limit 1));

  create temporary table if not exists fanout_candidates (
    subscription_id uuid primary key, subscriber_id uuid, bot_id uuid, epoch bigint, exchange text,
    amount numeric, leverage numeric, credits numeric, reason text, chunk integer
  ) on commit drop;
  truncate pg_temp.fanout_candidates;

  insert into pg_temp.fanout_candidates
  select c.subscription_id, c.subscriber_id, c.bot_id, c.epoch, c.exchange, c.amount, c.leverage, c.credits,
         case
           when c.bot_id is null then 'no_bot'
           when not c.is_paper_trade then 'live_bot_not_supported'
           when c.bot_status <> 'running' or c.epoch is null then 'bot_not_running'
           when v_sig.side = 'short' and not c.allow_short then 'short_not_allowed'
           when v_price is null then 'no_price'
           when c.amount is null or c.amount <= 0 then 'invalid_sizing'
           when c.open_trades >= c.max_open_trades then 'max_open_trades'
           when c.daily_loss_limit is not null and -c.daily_pnl >= c.daily_loss_limit then 'daily_loss_limit'
           when c.amount * v_price / c.leverage > c.current_balance then 'insufficient_balance'
           when c.credits > c.available then 'insufficient_credits'
         end,
         ((row_number() over (order by c.bot_id)) - 1)::integer / 1000
    from (
      select ss.id as subscription_id, ss.subscriber_id, b.id as bot_id, l.epoch, b.exchange, b.status as bot_status,
             b.is_paper_trade, b.allow_short, b.max_open_trades, b.daily_loss_limit, b.current_balance,
             least(v_sig.leverage, b.leverage, coalesce((ss.sizing ->> 'max_leverage')::numeric, 125)) as leverage,
             round(least(
               case coalesce(ss.sizing ->> 'mode', 'stake')
                 when 'fixed_base' then (ss.sizing ->> 'amount')::numeric
                 when 'fixed_quote' then (ss.sizing ->> 'amount')::numeric / v_price
                 when 'percent_balance' then b.current_balance * (ss.sizing ->> 'percent')::numeric / 100 / v_price
                 else b.stake_amount / v_price
               end,
               coalesce((ss.sizing ->> 'max_amount')::numeric, 'infinity'::numeric)), 8) as amount,
             coalesce((p.features ->> 'credits_per_trade')::numeric, 0) as credits,
             coalesce(a.credits_posted - a.debits_posted - a.debits_pending, 0) as available,
             (select count(*) from public.trades t where t.bot_id = b.id and t.status = 'open') as open_trades,
             case when b.daily_loss_limit is null then 0 else
               (select coalesce(sum(t.profit), 0) from public.trades t
                 where t.bot_id = b.id and t.status = 'closed' and t.exit_time >= date_trunc('day', now())) end as daily_pnl
        from public.strategy_subscriptions ss
        left join public.bots b on b.id = ss.bot_id and b.user_id = ss.subscriber_id
        left join public.bot_leases l on l.bot_id = b.id
        left join public.credit_accounts a on a.user_id = ss.subscriber_id and a.kind = 'user'
        -- The subscriber's current plan (private.current_plan, inlined for the whole set).
        left join lateral (select cs.plan_id from public.subscriptions cs
                            where cs.user_id = ss.subscriber_id and cs.status in ('active', 'trial')
                              and cs.expires_at > now() limit 1) cur on true
        left join public.plans p on p.id = coalesce(cur.plan_id, v_free_plan)
       where ss.strategy_id = v_sig.strategy_id and ss.status = 'active' and ss.auto_execute
         and not exists (select 1 from public.signal_executions e
                          where e.signal_id = v_sig.id and e.subscription_id = ss.id and e.phase = 'open')
    ) c;

  -- The gate: one execution row per (signal, subscription); a concurrent or repeated pass
  -- finds them and writes nothing more.
  with gate as (
    insert into public.signal_executions (signal_id, subscription_id, subscriber_id, bot_id, phase, status, reason,
                                          order_id, trade_id, amount, price, credits_due, charge_status)
    select v_sig.id, f.subscription_id, f.subscriber_id, f.bot_id, 'open',
           case when f.reason is null then 'executed' else 'skipped' end, f.reason,
           case when f.reason is null then md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid end,
           case when f.reason is null then md5('copy-trade:' || v_sig.id || ':' || f.subscription_id)::uuid end,
           f.amount, v_price, case when f.reason is null then f.credits else 0 end,
           case when f.reason is null and f.credits > 0 then 'pending' else 'none' end
      from pg_temp.fanout_candidates f
    on conflict (signal_id, subscription_id, phase) do nothing
    returning subscription_id
  )
  delete from pg_temp.fanout_candidates f where not exists (select 1 from gate where gate.subscription_id = f.subscription_id);

  select count(*) filter (where f.reason is null), count(*) filter (where f.reason is not null)
    into executed, skipped from pg_temp.fanout_candidates f;

  -- The bot engine's persistence path: filled paper orders and open trades, fenced by epoch.
  -- A bot whose lease moved on meanwhile is skipped by it and reported here. In chunks of
  -- 1,000 bots: the bot engine's batch checks membership in its batch's bot array.
  for v_chunk in select distinct f.chunk from pg_temp.fanout_candidates f where f.reason is null order by 1 loop
  with stale as (select s.stale_bot_id from public.bot_apply_steps(
    coalesce((select jsonb_agg(jsonb_build_object('bot_id', f.bot_id, 'epoch', f.epoch))
                from pg_temp.fanout_candidates f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(jsonb_build_object(
                'id', md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid,
                'bot_id', f.bot_id, 'user_id', f.subscriber_id,
                'client_order_id', 'tfc-' || substr(md5(v_sig.id || ':' || f.subscription_id || ':open'), 1, 28),
                'exchange', f.exchange, 'symbol', v_sig.pair,
                'side', case v_sig.side when 'long' then 'buy' else 'sell' end, 'order_type', 'market',
                'amount', f.amount, 'filled', f.amount, 'average_price', v_price,
                'fee', round(f.amount * v_price * private.copy_fee_rate(), 12),
                'fee_currency', split_part(split_part(v_sig.pair, '/', 2), ':', 1),
                'status', 'closed', 'reason', 'copy of signal ' || v_sig.id, 'is_paper_trade', true, 'signal_id', v_sig.id,
                'lease_epoch', f.epoch))
                from pg_temp.fanout_candidates f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(jsonb_build_object(
                'id', md5('copy-trade:' || v_sig.id || ':' || f.subscription_id)::uuid,
                'bot_id', f.bot_id, 'user_id', f.subscriber_id, 'exchange', f.exchange, 'trading_pair', v_sig.pair,
                'side', case v_sig.side when 'long' then 'buy' else 'sell' end, 'direction', v_sig.side,
                'order_type', 'market', 'amount', f.amount, 'price', v_price,
                'fee', round(f.amount * v_price * private.copy_fee_rate(), 12), 'status', 'open',
                'entry_time', now(),
                'entry_order_id', md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid,
                'is_paper_trade', true, 'signal_id', v_sig.id, 'stop_loss_price', v_sig.stop_loss, 'take_profit_price', v_sig.take_profit,
                'lease_epoch', f.epoch,
                'metadata', jsonb_build_object('signal_id', v_sig.id, 'strategy_id', v_sig.strategy_id,
                                               'subscription_id', f.subscription_id, 'leverage', f.leverage)))
                from pg_temp.fanout_candidates f where f.reason is null and f.chunk = v_chunk), '[]')) s),
  marked as (
    update public.signal_executions e
       set status = 'skipped', reason = 'bot_lease_changed', order_id = null, trade_id = null,
           credits_due = 0, charge_status = 'none'
      from stale where e.signal_id = v_sig.id and e.phase = 'open' and e.bot_id = stale.stale_bot_id
    returning e.subscription_id
  )
  update pg_temp.fanout_candidates f set reason = 'bot_lease_changed' from marked m where m.subscription_id = f.subscription_id;
  get diagnostics v_stale = row_count;
  executed := executed - v_stale;
  skipped := skipped + v_stale;
  end loop;

  v_announce := private.signal_first_announcement(v_sig.id, 'open');
  -- Everyone subscribed hears about the signal: a fill for those copied, the reason for
  -- those skipped, the signal itself for those who only follow.
  insert into public.notifications (user_id, kind, title, body, data)
  select ss.subscriber_id,
         case when f.subscription_id is null then 'signal'
              when f.reason is null then 'fill'
              when f.reason = 'insufficient_credits' then 'low_credits'
              else 'error' end,
         case when f.subscription_id is null then 'New signal: ' || v_label
              when f.reason is null then 'Copied: ' || v_label
              else 'Not copied: ' || v_label end,
         case when f.subscription_id is null
                then format('Entry %s, stop-loss %s, take-profit %s, leverage %s.', coalesce(v_sig.entry_price::text, 'market'),
                            coalesce(v_sig.stop_loss::text, '-'), coalesce(v_sig.take_profit::text, '-'), v_sig.leverage)
              when f.reason is null then format('Bought %s at %s on your paper bot.', f.amount, v_price)
              else 'Skipped: ' || replace(f.reason, '_', ' ') || '.' end,
         jsonb_build_object('signal_id', v_sig.id, 'strategy_id', v_sig.strategy_id, 'reason', f.reason)
    from public.strategy_subscriptions ss
    left join pg_temp.fanout_candidates f on f.subscription_id = ss.id
   where ss.strategy_id = v_sig.strategy_id and ss.status = 'active'
     and (f.subscription_id is not null
          or (not ss.auto_execute and v_announce));
  get diagnostics notified = row_count;
  return next;
end;
$$;

revoke execute on function public.signal_fan_out(uuid, text) from public, anon, authenticated;
grant execute on function public.signal_fan_out(uuid, text) to service_role;

-- Charge the credits of up to p_limit copies of a signal (the plan's credits per trade,
-- posted through the ledger batch to system:usage). Transfer ids are derived from (signal,
-- subscription), so a repeated chunk charges nobody twice. A rejected charge (the credits
-- were spent since the fan-out looked) is recorded and its subscriber notified.
-- Returns how many were charged and rejected; call again until both are 0.
create or replace function public.signal_charge_copies(p_signal_id uuid, p_limit integer default 500)
returns table (charged integer, rejected integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_usage uuid := (select a.id from public.credit_accounts a where a.code = 'system:usage');
begin
  if not private.is_service() then
    raise exception 'only the fleet charges copy trades' using errcode = 'insufficient_privilege';
  end if;
  with todo as (
    select e.id, e.subscription_id, e.subscriber_id, e.credits_due,
           md5('copy-trade-credits:' || e.signal_id || ':' || e.subscription_id)::uuid as transfer_id,
           a.id as account_id
      from public.signal_executions e
      join public.credit_accounts a on a.user_id = e.subscriber_id and a.kind = 'user'
     where e.signal_id = p_signal_id and e.charge_status = 'pending'
     order by e.id
     limit p_limit
     for update of e skip locked
  ), results as (
    select t.id, r.result
      from public.credit_create_transfers(coalesce((
             select jsonb_agg(jsonb_build_object(
                      'action', 'transfer', 'id', t.transfer_id, 'debit_account_id', t.account_id,
                      'credit_account_id', v_usage, 'amount', t.credits_due, 'kind', 'usage',
                      'reference_type', 'signal', 'reference_id', p_signal_id::text,
                      'metadata', jsonb_build_object('usage', 'trade', 'quantity', 1, 'unit_price', t.credits_due,
                                                     'subscription_id', t.subscription_id)) order by t.transfer_id)
               from todo t), '[]')) r
      join todo t on t.transfer_id = r.id
  ), marked as (
    update public.signal_executions e
       set charge_status = case when r.result in ('ok', 'exists') then 'charged' else 'rejected' end
      from results r
     where e.id = r.id
    returning e.charge_status, e.subscriber_id, e.signal_id
  ), notes as (
    insert into public.notifications (user_id, kind, title, body, data)
    select m.subscriber_id, 'low_credits', 'Copy trade not charged',
           'Your credits no longer covered a copied trade; top up to keep copying signals.',
           jsonb_build_object('signal_id', m.signal_id)
      from marked m where m.charge_status = 'rejected'
  )
  select count(*) filter (where m.charge_status = 'charged')::integer,
         count(*) filter (where m.charge_status = 'rejected')::integer
    into charged, rejected
    from marked m;
  return next;
end;
$$;

revoke execute on function public.signal_charge_copies(uuid, integer) from public, anon, authenticated;
grant execute on function public.signal_charge_copies(uuid, integer) to service_role;
