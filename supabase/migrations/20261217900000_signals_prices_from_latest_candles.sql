-- A market's latest price and recent range without reading every candle of its symbol.
--
-- Signals name a pair, not an exchange or a timeframe, so the signal checks (an entry or an
-- exit within the market's range, a close needing prices), the fan-out's copy price and the
-- holdings' valuation from candles looked candles up by symbol alone. candles' primary key
-- leads with the exchange, so each of those read the whole index (or table) of every
-- monthly partition: about 88 ms with 720,000 candles, and linear in every candle ever
-- stored, on every signal published, edited or closed and every fan-out. The latest candle
-- of each market is kept in market_latest_candles (by the candles' insert trigger; a
-- download inserts its newest candle through the parent for that reason), so the latest
-- close is read there, and a range is read per market (exchange, symbol, timeframe) of the
-- symbol through candles' primary key. An index on market_latest_candles (symbol) keeps its
-- updates HOT (a symbol never changes). Results are unchanged, but for one: an entry price is
-- checked only against a market whose latest candle is at most two days old (a TradingView
-- alert on a pair whose stored candles are months old was refused for today's price).

create index market_latest_candles_symbol on public.market_latest_candles (symbol);

-- ======================================================================================
-- Functions
-- ======================================================================================

-- The last close of a symbol on any exchange and timeframe (the latest candle's). Definer:
-- market_latest_candles shows a user only their bots' markets (what Realtime sends them),
-- while every candle is readable by any signed-in user, and a provider's close of a signal
-- (signal_exit_needs_market runs as the provider) needs any market's price.
create or replace function private.market_last_close(p_symbol text) returns numeric
language sql
stable
security definer
set search_path = ''
as $$
  select m.close from public.market_latest_candles m where m.symbol = p_symbol order by m.open_time desc limit 1
$$;
revoke all on function private.market_last_close(text) from public, anon, authenticated;
grant execute on function private.market_last_close(text) to authenticated, service_role;

-- The lowest low and highest high of a symbol's candles since p_since, on every exchange and
-- timeframe that has them, each market's latest candle included (nulls when none).
create or replace function private.market_range(p_symbol text, p_since timestamptz)
returns table (low numeric, high numeric)
language sql
stable
set search_path = ''
as $$
  select min(least(m.low, r.low)), max(greatest(m.high, r.high))
    from public.market_latest_candles m
   cross join lateral (
     select min(c.low) as low, max(c.high) as high
       from public.candles c
      where c.exchange = m.exchange and c.symbol = m.symbol and c.timeframe = m.timeframe
        and c.open_time >= p_since
   ) r
   where m.symbol = p_symbol
$$;
revoke all on function private.market_range(text, timestamptz) from public, anon, authenticated;

create or replace function private.signal_lifecycle() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_low numeric;
  v_high numeric;
  v_last numeric;
  v_latest timestamptz;
  -- Alerts arrive through the service but speak for the provider.
  v_service boolean := private.is_service() and new.source <> 'tradingview';
begin
  if tg_op = 'INSERT' then
    -- The entry, like the exit, is a price the market traded at: over the last day of the
    -- fleet's candles of the pair, when it holds any.
    if not v_service and new.entry_price is not null then
      select max(m.open_time) into v_latest from public.market_latest_candles m where m.symbol = new.pair;
      -- Candles of a market no bot trades any more say nothing of today's price.
      if v_latest >= now() - interval '2 days' then
        select r.low, r.high into v_low, v_high
          from private.market_range(new.pair, v_latest - interval '1 day' - interval '5 minutes') r;
      end if;
      if v_low is not null and (new.entry_price < v_low or new.entry_price > v_high) then
        raise exception 'entry price % is outside the market''s range for % over its last day (% to %)',
          new.entry_price, new.pair, v_low, v_high
          using errcode = 'check_violation', constraint = 'signals_entry_within_market';
      end if;
    end if;
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
    if not v_service and exists (select 1 from private.signal_fanouts f where f.signal_id = old.id and f.phase = 'open') then
      raise exception 'signal % is live: close it at the market instead of cancelling it', old.id
        using errcode = 'check_violation', constraint = 'signals_cancel_before_entry';
    end if;
    new.closed_at := now();
    new.result_pct := null;
  elsif new.status = 'closed' or new.action in ('exit', 'close') then
    if not v_service then
      select m.close, m.open_time into v_last, v_latest
        from public.market_latest_candles m where m.symbol = new.pair order by m.open_time desc limit 1;
      select r.low, r.high into v_low, v_high
        from private.market_range(new.pair, least(old.created_at, v_latest - interval '1 day') - interval '5 minutes') r;
      if new.exit_price is null then
        new.exit_price := v_last;
      elsif v_low is not null and (new.exit_price < v_low or new.exit_price > v_high) then
        raise exception 'exit price % is outside the market''s range for % (% to %)', new.exit_price, new.pair, v_low, v_high
          using errcode = 'check_violation', constraint = 'signals_exit_within_market';
      end if;
    end if;
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

create or replace function private.signal_exit_needs_market() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if (private.is_service() and new.source <> 'tradingview')
     or not (new.status = 'closed' or new.action in ('exit', 'close'))
     or old.status in ('closed', 'cancelled')
     or private.market_last_close(new.pair) is not null then
    return new;
  end if;
  raise exception 'the fleet holds no prices for % yet: a signal can be closed once its market has candles', new.pair
    using errcode = 'check_violation', constraint = 'signals_exit_within_market';
end;
$$;

create or replace function private.signal_fan_out_close(p_sig public.signals, p_label text)
returns table (executed integer, skipped integer, notified integer)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_exit numeric;
  v_closes private.fanout_close[];
  v_stale integer;
  v_chunk integer;
  v_lo bigint;
  v_hi bigint;
begin
  executed := 0; skipped := 0; notified := 0;
  v_exit := coalesce(case when p_sig.status = 'closed' then p_sig.exit_price end, p_sig.entry_price,
                     private.market_last_close(p_sig.pair));

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
  select coalesce(array_agg(x.c), '{}'::private.fanout_close[]) into v_closes
    from (select row(d.subscription_id, d.subscriber_id, d.trade, d.epoch, d.reason,
                     ((row_number() over (order by d.subscription_id)) - 1)::integer / 1000)::private.fanout_close as c
            from todo d join gate g on g.subscription_id = d.subscription_id) x;

  select count(*) filter (where f.reason is null), count(*) filter (where f.reason is not null)
    into executed, skipped from unnest(v_closes) f;

  -- Each chunk's candidates lie together (v_closes is in bot order, chunks are runs of it):
  -- slice them out instead of reading the whole array once per chunk.
  for v_chunk, v_lo, v_hi in
    select u.chunk, min(u.ordinality), max(u.ordinality)
      from unnest(v_closes) with ordinality u where u.reason is null group by u.chunk order by 1
  loop
  with stale as (select s.stale_bot_id from public.bot_apply_steps(
    coalesce((select jsonb_agg(jsonb_build_object('bot_id', (f.trade).bot_id, 'epoch', f.epoch))
                from unnest(v_closes[v_lo:v_hi]) f where f.reason is null and f.chunk = v_chunk), '[]'),
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
                from unnest(v_closes[v_lo:v_hi]) f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(to_jsonb(f.trade) || jsonb_build_object(
                'exit_price', v_exit, 'exit_time', now(), 'status', 'closed',
                'exit_reason', case p_sig.status when 'cancelled' then 'signal_cancelled' else 'signal_closed' end,
                'exit_order_id', md5('copy-order:' || p_sig.id || ':' || f.subscription_id || ':close')::uuid,
                'fee', (f.trade).fee + round((f.trade).amount * v_exit * private.copy_fee_rate(), 12),
                'profit', x.profit,
                'profit_percentage', round(x.profit / ((f.trade).amount * (f.trade).price) * 100, 4),
                'lease_epoch', f.epoch))
                from unnest(v_closes[v_lo:v_hi]) f
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

create or replace function public.signal_fan_out(p_signal_id uuid, p_phase text default 'open')
returns table (executed integer, skipped integer, notified integer)
language plpgsql security definer
set search_path = ''
-- One pass over every subscriber: JIT compilation of the candidate query cost more than the
-- query itself, and its sorts of 100,000 rows should not spill to disk.
set jit = off
set work_mem = '64MB'
as $$
declare
  v_sig public.signals;
  v_strategy_name text;
  v_price numeric;
  v_label text;
  v_announce boolean;
  v_fee_rate numeric := private.copy_fee_rate();
  v_free_plan uuid;
  v_cands private.fanout_candidate[];
  v_ok uuid[];                     -- the copying bots whose lease epoch still holds
  v_lost uuid[] := '{}'::uuid[];   -- copied, then skipped: the bot's lease moved on
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
                      private.market_last_close(v_sig.pair));

  select coalesce(array_agg(x.c), '{}'::private.fanout_candidate[]) into v_cands
    from (
  -- An amount an order, a trade and an execution row cannot hold (numeric(28,12): below 1e16)
  -- is kept as no amount, and skips the copy as invalid_sizing.
  select row(c.subscription_id, c.subscriber_id, c.bot_id, c.epoch, c.exchange,
         case when c.amount < 1e16 then c.amount end, c.leverage, c.credits,
         case
           when c.bot_id is null then 'no_bot'
           when not c.sizing_valid then 'invalid_sizing'
           when not c.is_paper_trade then 'live_bot_not_supported'
           when c.bot_status <> 'running' or c.epoch is null then 'bot_not_running'
           when v_sig.side = 'short' and not c.allow_short then 'short_not_allowed'
           when v_price is null then 'no_price'
           when c.amount is null or c.amount <= 0 or c.amount >= 1e16 then 'invalid_sizing'
           when c.open_trades >= c.max_open_trades then 'max_open_trades'
           when c.daily_loss_limit is not null and -c.daily_pnl >= c.daily_loss_limit then 'daily_loss_limit'
           when c.amount * v_price / c.leverage > c.current_balance then 'insufficient_balance'
           when c.credits > c.available then 'insufficient_credits'
         end,
         ((row_number() over (order by c.bot_id)) - 1)::integer / 1000)::private.fanout_candidate as c
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
        -- Each distinct sizing is validated once: the check is a function PostgreSQL cannot
        -- inline, and without 'offset 0' the planner pulls it up into every expression that
        -- reads the sizing (a dozen calls per subscription).
        from (select s0.*, v.sizing_valid, case when v.sizing_valid then s0.sizing else '{}'::jsonb end as safe_sizing
                from public.strategy_subscriptions s0
                join (select d.sizing, private.sizing_is_valid(d.sizing) as sizing_valid
                        from (select distinct s1.sizing from public.strategy_subscriptions s1
                               where s1.strategy_id = v_sig.strategy_id and s1.status = 'active' and s1.auto_execute) d
                      offset 0) v on v.sizing = s0.sizing) ss
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
    ) c
    ) x;

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
      from unnest(v_cands) f
    on conflict (signal_id, subscription_id, phase) do nothing
    returning subscription_id
  )
  select coalesce(array_agg(f order by f.bot_id), '{}'::private.fanout_candidate[]) into v_cands
    from unnest(v_cands) f where exists (select 1 from gate where gate.subscription_id = f.subscription_id);

  select count(*) filter (where f.reason is null), count(*) filter (where f.reason is not null)
    into executed, skipped from unnest(v_cands) f;

  -- Lock the leases of the copying bots for share, in bot-id order, and keep the bots whose
  -- epoch still holds; then the bots, in the same order, before their orders and trades.
  select coalesce(array_agg(x.bot_id order by x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join unnest(v_cands) f on f.bot_id = l.bot_id and f.epoch = l.epoch and f.reason is null
           order by l.bot_id
             for share of l) x;
  perform 1 from public.bots b join unnest(v_ok) k(id) on k.id = b.id order by b.id for no key update of b;

  -- The copies whose bot's lease moved on since the candidates were read.
  select coalesce(array_agg(f.subscription_id), '{}'::uuid[]) into v_lost
    from unnest(v_cands) f
   where f.reason is null and not exists (select 1 from unnest(v_ok) k(id) where k.id = f.bot_id);
  if cardinality(v_lost) > 0 then
    update public.signal_executions e
       set status = 'skipped', reason = 'bot_lease_changed', order_id = null, trade_id = null,
           credits_due = 0, charge_status = 'none'
     where e.signal_id = v_sig.id and e.phase = 'open' and e.subscription_id = any (v_lost);
    select array_agg(row(f.subscription_id, f.subscriber_id, f.bot_id, f.epoch, f.exchange, f.amount, f.leverage,
                         f.credits, case when l.id is null then f.reason else 'bot_lease_changed' end,
                         f.chunk)::private.fanout_candidate order by f.bot_id)
      into v_cands
      from unnest(v_cands) f left join unnest(v_lost) l(id) on l.id = f.subscription_id;
    executed := executed - cardinality(v_lost);
    skipped := skipped + cardinality(v_lost);
  end if;

  -- Filled paper orders and open trades, in bot order (the order bot_apply_steps writes in).
  insert into public.orders (id, bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount,
                             filled, average_price, fee, fee_currency, status, reason, is_paper_trade, lease_epoch,
                             signal_id)
  select md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid, f.bot_id, f.subscriber_id,
         'tfc-' || substr(md5(v_sig.id || ':' || f.subscription_id || ':open'), 1, 28), f.exchange, v_sig.pair,
         case v_sig.side when 'long' then 'buy' else 'sell' end, 'market', f.amount, f.amount, v_price,
         round(f.amount * v_price * v_fee_rate, 12), split_part(split_part(v_sig.pair, '/', 2), ':', 1),
         'closed', 'copy of signal ' || v_sig.id, true, f.epoch, v_sig.id
    from unnest(v_cands) f
   where f.reason is null
   order by f.bot_id;

  insert into public.trades (id, bot_id, user_id, exchange, trading_pair, side, direction, order_type, amount, price,
                             fee, profit, profit_percentage, status, entry_time, entry_order_id, is_paper_trade,
                             stop_loss_price, take_profit_price, lease_epoch, metadata, signal_id)
  select md5('copy-trade:' || v_sig.id || ':' || f.subscription_id)::uuid, f.bot_id, f.subscriber_id, f.exchange,
         v_sig.pair, case v_sig.side when 'long' then 'buy' else 'sell' end, v_sig.side, 'market', f.amount, v_price,
         round(f.amount * v_price * v_fee_rate, 12), 0, 0, 'open', now(),
         md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid, true,
         v_sig.stop_loss, v_sig.take_profit, f.epoch,
         jsonb_build_object('signal_id', v_sig.id, 'strategy_id', v_sig.strategy_id,
                            'subscription_id', f.subscription_id, 'leverage', f.leverage),
         v_sig.id
    from unnest(v_cands) f
   where f.reason is null
   order by f.bot_id;

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
    left join unnest(v_cands) f on f.subscription_id = ss.id
   where ss.strategy_id = v_sig.strategy_id and ss.status = 'active'
     and (f.subscription_id is not null
          or (not ss.auto_execute and v_announce));
  get diagnostics notified = row_count;
  return next;
end;
$$;

create or replace function private.holdings_prices_from_candles() returns integer
language sql
set search_path = ''
as $$
  select private.holdings_apply_prices(coalesce(jsonb_agg(jsonb_build_object(
           'symbol', c.symbol, 'price', c.close, 'currency', split_part(c.symbol, '/', 2),
           'source', 'candles:' || c.exchange, 'as_of', c.open_time)), '[]'))
    from (select distinct on (m.symbol) m.symbol, m.close, m.exchange, m.open_time
            from public.market_latest_candles m
           where m.symbol in (select b.trading_pair from public.bots b where b.status = 'running')
           order by m.symbol, m.open_time desc) c
$$;
