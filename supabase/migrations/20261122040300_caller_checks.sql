-- Caller checks for the marketplace and billing functions: the service role's requests and
-- the fleet's direct connections, never an app's (anon, users, admins), which the request's
-- JWT role tells even inside a security-definer function (see private.is_service()).
create or replace function private.caller_is_service() returns boolean
language sql stable
set search_path = ''
as $$
  select private.is_service()
$$;
revoke all on function private.caller_is_service() from public;
grant execute on function private.caller_is_service() to anon, authenticated, service_role;

-- The same functions as before, checking the caller with private.caller_is_service()
-- (create or replace keeps their grants).
create or replace function public.billing_apply_invoice_event(
  p_invoice_id uuid,
  p_status text,
  p_amount numeric default null,
  p_occurred_at timestamptz default null,
  p_details jsonb default '{}'
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_inv public.invoices;
  v_allowed boolean;
begin
  if not private.caller_is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  if p_status is null or p_status not in ('paid', 'failed', 'expired', 'cancelled', 'refunded') then
    raise exception 'unknown invoice status %', p_status using errcode = 'invalid_parameter_value';
  end if;
  select * into v_inv from public.invoices i where i.id = p_invoice_id for update;
  if not found then return 'not_found'; end if;

  v_allowed := case p_status
    when 'paid' then v_inv.status in ('pending', 'failed', 'expired')
    when 'failed' then v_inv.status = 'pending'
    when 'expired' then v_inv.status in ('pending', 'failed')
    when 'cancelled' then v_inv.status = 'pending'
    when 'refunded' then v_inv.status in ('pending', 'failed', 'expired', 'paid')
  end;
  if not v_allowed then return 'unchanged'; end if;
  if p_status = 'paid' and p_amount is not null and p_amount < v_inv.amount then
    return 'amount_mismatch';
  end if;

  update public.invoices i
     set status = p_status,
         paid_at = case when p_status = 'paid' then coalesce(p_occurred_at, now()) else i.paid_at end,
         payment_method = coalesce(p_details ->> 'payment_method', i.payment_method),
         payment_channel = coalesce(p_details ->> 'payment_channel', i.payment_channel),
         transaction_id = coalesce(p_details ->> 'transaction_id', i.transaction_id)
   where i.id = v_inv.id
  returning * into v_inv;

  if p_status = 'paid' then
    perform private.billing_on_paid(v_inv);
  elsif p_status = 'refunded' and v_inv.paid_at is not null then
    perform private.billing_on_refunded(v_inv);
  elsif p_status in ('failed', 'expired') then
    insert into public.notifications (user_id, kind, title, body, data)
    values (v_inv.user_id, 'payment', 'Payment ' || p_status,
            format('Your payment of %s %s %s.', v_inv.amount, v_inv.currency,
                   case p_status when 'failed' then 'failed' else 'expired before it was paid' end),
            jsonb_build_object('invoice_id', v_inv.id, 'status', p_status));
  end if;
  return 'applied';
end;
$$;

create or replace function public.billing_expire_due(p_now timestamptz default now())
returns table (invoices_expired integer, subscriptions_expired integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  r record;
begin
  if not private.caller_is_service() then
    raise exception 'only the service role runs the billing sweep' using errcode = 'insufficient_privilege';
  end if;
  invoices_expired := 0;
  for r in select i.id from public.invoices i
            where i.status = 'pending' and i.expired_at is not null and i.expired_at <= p_now
            order by i.id for update skip locked loop
    if public.billing_apply_invoice_event(r.id, 'expired', null, p_now) = 'applied' then
      invoices_expired := invoices_expired + 1;
    end if;
  end loop;

  subscriptions_expired := 0;
  for r in update public.subscriptions s
              set status = 'expired'
            where s.id in (select x.id from public.subscriptions x
                            where x.status in ('active', 'trial') and x.expires_at <= p_now
                            for update skip locked)
           returning s.user_id, s.plan_id loop
    subscriptions_expired := subscriptions_expired + 1;
    perform private.billing_enforce_plan_limits(r.user_id);
    insert into public.notifications (user_id, kind, title, body, data)
    values (r.user_id, 'payment', 'Subscription expired',
            format('Your %s plan expired; you are on the Free plan now.',
                   (select p.name from public.plans p where p.id = r.plan_id)),
            jsonb_build_object('plan_id', r.plan_id, 'status', 'expired'));
  end loop;
  return next;
end;
$$;

create or replace function private.own_strategy_subscription(p_subscription_id uuid)
returns public.strategy_subscriptions
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions;
begin
  select * into v_sub from public.strategy_subscriptions s where s.id = p_subscription_id for update;
  if not found or (v_sub.subscriber_id is distinct from (select auth.uid()) and not private.caller_is_service()) then
    raise exception 'no such subscription of yours: %', p_subscription_id using errcode = 'no_data_found';
  end if;
  return v_sub;
end;
$$;

create or replace function public.renew_strategy_subscriptions(p_limit integer default 1000)
returns table (renewed integer, expired integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_sub public.strategy_subscriptions;
  v_name text;
begin
  if not private.caller_is_service() then
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

create or replace function public.ingest_tradingview_alert(p_token text, p_alert jsonb) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_strategy public.strategies;
  v_action text := lower(coalesce(p_alert ->> 'action', 'entry'));
  v_signal_id uuid;
begin
  if not private.caller_is_service() then
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

create or replace function private.copy_fee_rate() returns numeric
language sql immutable
set search_path = ''
as $$ select 0.001::numeric $$;

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
begin
  if not private.caller_is_service() then
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
    amount numeric, leverage numeric, credits numeric, reason text
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
         end
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
  -- A bot whose lease moved on meanwhile is skipped by it and reported here.
  with stale as (select s.stale_bot_id from public.bot_apply_steps(
    coalesce((select jsonb_agg(jsonb_build_object('bot_id', f.bot_id, 'epoch', f.epoch))
                from pg_temp.fanout_candidates f where f.reason is null), '[]'),
    coalesce((select jsonb_agg(jsonb_build_object(
                'id', md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid,
                'bot_id', f.bot_id, 'user_id', f.subscriber_id,
                'client_order_id', 'tfc-' || substr(md5(v_sig.id || ':' || f.subscription_id || ':open'), 1, 28),
                'exchange', f.exchange, 'symbol', v_sig.pair,
                'side', case v_sig.side when 'long' then 'buy' else 'sell' end, 'order_type', 'market',
                'amount', f.amount, 'filled', f.amount, 'average_price', v_price,
                'fee', round(f.amount * v_price * private.copy_fee_rate(), 12),
                'fee_currency', split_part(split_part(v_sig.pair, '/', 2), ':', 1),
                'status', 'closed', 'reason', 'copy of signal ' || v_sig.id, 'is_paper_trade', true,
                'lease_epoch', f.epoch))
                from pg_temp.fanout_candidates f where f.reason is null), '[]'),
    coalesce((select jsonb_agg(jsonb_build_object(
                'id', md5('copy-trade:' || v_sig.id || ':' || f.subscription_id)::uuid,
                'bot_id', f.bot_id, 'user_id', f.subscriber_id, 'exchange', f.exchange, 'trading_pair', v_sig.pair,
                'side', case v_sig.side when 'long' then 'buy' else 'sell' end, 'direction', v_sig.side,
                'order_type', 'market', 'amount', f.amount, 'price', v_price,
                'fee', round(f.amount * v_price * private.copy_fee_rate(), 12), 'status', 'open',
                'entry_time', now(),
                'entry_order_id', md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid,
                'is_paper_trade', true, 'stop_loss_price', v_sig.stop_loss, 'take_profit_price', v_sig.take_profit,
                'lease_epoch', f.epoch,
                'metadata', jsonb_build_object('signal_id', v_sig.id, 'strategy_id', v_sig.strategy_id,
                                               'subscription_id', f.subscription_id, 'leverage', f.leverage)))
                from pg_temp.fanout_candidates f where f.reason is null), '[]')) s),
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

create or replace function public.signal_charge_copies(p_signal_id uuid, p_limit integer default 500)
returns table (charged integer, rejected integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_usage uuid := (select a.id from public.credit_accounts a where a.code = 'system:usage');
begin
  if not private.caller_is_service() then
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

