-- Bot engine: what the bot runner needs from the database.
--
-- - bots.last_candle_at: open time of the last candle whose decisions were persisted; a
--   worker that takes a bot over resumes from the candle after it (exactly-once decisions).
-- - A notification on every bots.status change wakes the runners at once (lease sync).
-- - public.bot_apply_steps: persists a batch of decisions (orders, trades, logs,
--   notifications, bot state) in one transaction. Steps whose lease epoch is no longer the
--   bot's are skipped and returned, never written (the fencing trigger stays the last word).
-- - public.bot_trade_prices: credits per trade of each user's current plan.

alter table public.bots add column last_candle_at timestamptz;
comment on column public.bots.last_candle_at is
  'Open time of the last candle whose decisions the fleet persisted (fleet-owned).';

create or replace function private.notify_bot_status() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('tradefleet_bots', json_build_object('id', new.id, 'status', new.status)::text);
  return null;
end;
$$;
revoke all on function private.notify_bot_status() from public, anon, authenticated;
create trigger bots_notify_status_insert after insert on public.bots
  for each row execute function private.notify_bot_status();
create trigger bots_notify_status_update after update of status on public.bots
  for each row when (old.status is distinct from new.status) execute function private.notify_bot_status();

-- p_steps: [{bot_id, epoch, candle_at, status?, status_reason?, error_message?}]
-- p_orders: [{id, bot_id, user_id, client_order_id, exchange_order_id, exchange, symbol, side,
--             order_type, amount, price, stop_price, filled, average_price, fee, fee_currency,
--             status, reason, is_paper_trade, lease_epoch}]
-- p_trades: [{id, bot_id, user_id, exchange, trading_pair, side, direction, order_type, amount,
--             price, exit_price, fee, profit, profit_percentage, status, exit_reason, entry_time,
--             exit_time, entry_order_id, exit_order_id, is_paper_trade, stop_loss_price,
--             take_profit_price, lease_epoch, metadata}]
-- p_logs: [{bot_id, user_id, log_level, message, context}]
-- p_notes: [{user_id, kind, title, body, data}]
-- Returns the bot ids whose steps were skipped because their epoch is stale.
create or replace function public.bot_apply_steps(
  p_steps jsonb,
  p_orders jsonb default '[]',
  p_trades jsonb default '[]',
  p_logs jsonb default '[]',
  p_notes jsonb default '[]'
) returns table (stale_bot_id uuid)
language plpgsql
set search_path = ''
as $$
declare
  v_ok uuid[];
begin
  -- Lock the leases of the batch: a takeover (epoch + 1) waits until this commits.
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join jsonb_to_recordset(p_steps) as s(bot_id uuid, epoch bigint)
              on s.bot_id = l.bot_id and s.epoch = l.epoch
           order by l.bot_id
             for share of l) x;

  insert into public.orders as o (id, bot_id, user_id, client_order_id, exchange_order_id, exchange, symbol, side,
                                  order_type, amount, price, stop_price, filled, average_price, fee, fee_currency,
                                  status, reason, is_paper_trade, lease_epoch, signal_id)
  select r.id, r.bot_id, r.user_id, r.client_order_id, r.exchange_order_id, r.exchange, r.symbol, r.side,
         r.order_type, r.amount, r.price, r.stop_price, coalesce(r.filled, 0), r.average_price, coalesce(r.fee, 0),
         r.fee_currency, r.status, r.reason, coalesce(r.is_paper_trade, true), r.lease_epoch, r.signal_id
    from jsonb_to_recordset(p_orders) as r(id uuid, bot_id uuid, user_id uuid, client_order_id text,
         exchange_order_id text, exchange text, symbol text, side text, order_type text, amount numeric,
         price numeric, stop_price numeric, filled numeric, average_price numeric, fee numeric, fee_currency text,
         status text, reason text, is_paper_trade boolean, lease_epoch bigint, signal_id uuid)
   where r.bot_id = any (v_ok)
  on conflict (client_order_id) do update
     set exchange_order_id = coalesce(excluded.exchange_order_id, o.exchange_order_id),
         filled = excluded.filled,
         average_price = coalesce(excluded.average_price, o.average_price),
         fee = excluded.fee,
         fee_currency = coalesce(excluded.fee_currency, o.fee_currency),
         status = excluded.status,
         lease_epoch = excluded.lease_epoch;

  insert into public.trades as t (id, bot_id, user_id, exchange, trading_pair, side, direction, order_type, amount,
                                  price, exit_price, fee, profit, profit_percentage, status, exit_reason, entry_time,
                                  exit_time, entry_order_id, exit_order_id, is_paper_trade, stop_loss_price,
                                  take_profit_price, lease_epoch, metadata, signal_id)
  select r.id, r.bot_id, r.user_id, r.exchange, r.trading_pair, r.side, r.direction, r.order_type, r.amount,
         r.price, r.exit_price, r.fee, coalesce(r.profit, 0), coalesce(r.profit_percentage, 0), r.status,
         r.exit_reason, r.entry_time, r.exit_time, r.entry_order_id, r.exit_order_id,
         coalesce(r.is_paper_trade, true), r.stop_loss_price, r.take_profit_price, r.lease_epoch,
         coalesce(r.metadata, '{}'), r.signal_id
    from jsonb_to_recordset(p_trades) as r(id uuid, bot_id uuid, user_id uuid, exchange text, trading_pair text,
         side text, direction text, order_type text, amount numeric, price numeric, exit_price numeric, fee numeric,
         profit numeric, profit_percentage numeric, status text, exit_reason text, entry_time timestamptz,
         exit_time timestamptz, entry_order_id uuid, exit_order_id uuid, is_paper_trade boolean,
         stop_loss_price numeric, take_profit_price numeric, lease_epoch bigint, metadata jsonb, signal_id uuid)
   where r.bot_id = any (v_ok)
  on conflict (id) do update
     set exit_price = excluded.exit_price,
         fee = excluded.fee,
         profit = excluded.profit,
         profit_percentage = excluded.profit_percentage,
         status = excluded.status,
         exit_reason = excluded.exit_reason,
         exit_time = excluded.exit_time,
         exit_order_id = excluded.exit_order_id,
         lease_epoch = excluded.lease_epoch,
         metadata = t.metadata || excluded.metadata;

  insert into public.bot_logs (bot_id, user_id, log_level, message, context, source)
  select r.bot_id, r.user_id, r.log_level, r.message, coalesce(r.context, '{}'), 'bot'
    from jsonb_to_recordset(p_logs) as r(bot_id uuid, user_id uuid, log_level text, message text, context jsonb)
   where r.bot_id = any (v_ok);

  insert into public.notifications (user_id, kind, title, body, data)
  select r.user_id, r.kind, r.title, r.body, coalesce(r.data, '{}')
    from jsonb_to_recordset(p_notes) as r(user_id uuid, bot_id uuid, kind text, title text, body text, data jsonb)
   where r.bot_id = any (v_ok);

  update public.bots b
     set last_candle_at = greatest(b.last_candle_at, s.candle_at),
         status = coalesce(s.status, b.status),
         status_reason = case when s.status is not null then s.status_reason else b.status_reason end,
         error_message = case when s.status = 'error' then s.error_message else b.error_message end
    from jsonb_to_recordset(p_steps) as s(bot_id uuid, candle_at timestamptz, status text, status_reason text,
                                          error_message text)
   where b.id = s.bot_id and b.id = any (v_ok)
     and (s.status is not null or b.last_candle_at is distinct from greatest(b.last_candle_at, s.candle_at));

  return query
    select s.bot_id from jsonb_to_recordset(p_steps) as s(bot_id uuid) where not (s.bot_id = any (v_ok));
end;
$$;
revoke execute on function public.bot_apply_steps(jsonb, jsonb, jsonb, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.bot_apply_steps(jsonb, jsonb, jsonb, jsonb, jsonb) to service_role;

-- What the plan of each user allows a bot: credits per trade (plans.features.credits_per_trade),
-- the user's credit account, and whether live trading is included.
create or replace function public.bot_trade_prices(p_user_ids uuid[])
returns table (user_id uuid, credits_per_trade numeric, account_id uuid, live_trading boolean)
language sql
stable
security definer
set search_path = ''
as $$
  select u.id,
         coalesce((p.features ->> 'credits_per_trade')::numeric, 0),
         (select a.id from public.credit_accounts a where a.user_id = u.id and a.kind = 'user'),
         p.live_trading
    from unnest(p_user_ids) as u(id)
   cross join lateral private.current_plan(u.id) p
$$;
revoke execute on function public.bot_trade_prices(uuid[]) from public, anon, authenticated;
grant execute on function public.bot_trade_prices(uuid[]) to service_role;
