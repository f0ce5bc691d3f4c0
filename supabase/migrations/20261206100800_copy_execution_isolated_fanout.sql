-- Copy-trading fan-out isolates a bad subscriber. Sizing is validated when written
-- (strategy_subscriptions_sizing_valid), but rows written before that rule may still hold
-- sizing the engine cannot read ({"max_leverage": 0}, {"amount": "lots"}); the fan-out
-- used to cast it and fail for every subscriber of the strategy. Now such a subscription
-- is skipped with reason 'invalid_sizing' and the others are copied.

-- Functions -----------------------------------------------------------------------------

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
           when not c.sizing_valid then 'invalid_sizing'
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
             ss.sizing_valid,
             least(v_sig.leverage, b.leverage, coalesce((ss.safe_sizing ->> 'max_leverage')::numeric, 125)) as leverage,
             round(least(
               case coalesce(ss.safe_sizing ->> 'mode', 'stake')
                 when 'fixed_base' then (ss.safe_sizing ->> 'amount')::numeric
                 when 'fixed_quote' then (ss.safe_sizing ->> 'amount')::numeric / v_price
                 when 'percent_balance' then b.current_balance * (ss.safe_sizing ->> 'percent')::numeric / 100 / v_price
                 else b.stake_amount / v_price
               end,
               coalesce((ss.safe_sizing ->> 'max_amount')::numeric, 'infinity'::numeric)), 8) as amount,
             coalesce((p.features ->> 'credits_per_trade')::numeric, 0) as credits,
             coalesce(a.credits_posted - a.debits_posted - a.debits_pending, 0) as available,
             (select count(*) from public.trades t where t.bot_id = b.id and t.status = 'open') as open_trades,
             case when b.daily_loss_limit is null then 0 else
               (select coalesce(sum(t.profit), 0) from public.trades t
                 where t.bot_id = b.id and t.status = 'closed' and t.exit_time >= date_trunc('day', now())) end as daily_pnl
        from (select s0.*, private.sizing_is_valid(s0.sizing) as sizing_valid,
                     case when private.sizing_is_valid(s0.sizing) then s0.sizing else '{}'::jsonb end as safe_sizing
                from public.strategy_subscriptions s0) ss
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

