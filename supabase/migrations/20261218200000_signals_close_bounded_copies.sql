-- One subscriber's copy no longer stops a signal's close for every subscriber.
--
-- A copy's size is its subscriber's to choose (a fixed_base sizing of up to 1e12 units, a
-- leverage of up to 125 on a paper balance of up to 1e12), so its notional at the entry can
-- be some 1e14 of the quote. A market that then moves a few hundredfold (a penny coin, or an
-- entry the market was never checked against) takes that copy's profit, or its fee, past what
-- an order and a trade hold (numeric(28,12): below 1e16), and its profit percentage past
-- numeric(12,4) at a millionfold. The close fan-out writes every copy's close in one
-- statement, so the cast failed with numeric_value_out_of_range for all of them, on every
-- retry, and every subscriber's copy stayed open. A copy's close fee, profit and profit
-- percentage now stop at the bounds of their columns, as a bot's profit and balance do
-- (20261217400100_bots_stats_saturate); the percentage is still the market's (computed from
-- the profit before it is bounded). Nothing else changes
-- (20261217900000_signals_prices_from_latest_candles).
--
-- The open phase was checked for the same kind of per-subscriber failure: its amounts are
-- bounded (invalid_sizing, 20261217400000), its notional by the bot's balance and leverage
-- (insufficient_balance), its fee by both, and it updates no bot row; its triggers on orders
-- and trades (lease fence, daily totals) are per statement and cannot fail for one row.

-- ======================================================================================
-- Functions
-- ======================================================================================

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
  -- The largest magnitude an order's or a trade's amount, fee and profit hold (numeric(28,12)).
  v_max numeric := 9999999999999999.999999999999;
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
                'fee', least(round((f.trade).amount * v_exit * private.copy_fee_rate(), 12), v_max),
                'fee_currency', split_part(split_part((f.trade).trading_pair, '/', 2), ':', 1),
                'status', 'closed', 'reason', 'copy of signal ' || p_sig.id || ' closed', 'is_paper_trade', true, 'signal_id', p_sig.id,
                'lease_epoch', f.epoch))
                from unnest(v_closes[v_lo:v_hi]) f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(to_jsonb(f.trade) || jsonb_build_object(
                'exit_price', v_exit, 'exit_time', now(), 'status', 'closed',
                'exit_reason', case p_sig.status when 'cancelled' then 'signal_cancelled' else 'signal_closed' end,
                'exit_order_id', md5('copy-order:' || p_sig.id || ':' || f.subscription_id || ':close')::uuid,
                'fee', least((f.trade).fee + round((f.trade).amount * v_exit * private.copy_fee_rate(), 12), v_max),
                'profit', least(greatest(x.profit, -v_max), v_max),
                'profit_percentage', least(greatest(round(x.profit / ((f.trade).amount * (f.trade).price) * 100, 4),
                                                    -99999999.9999), 99999999.9999),
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
revoke all on function private.signal_fan_out_close(public.signals, text) from public, anon, authenticated;
