-- Bot steps atomic with their state, and credit holds fenced by the lease epoch:
-- * orders and trades record the candle their decision was taken on (decided_at), so a lost
--   decision can be told from a skipped one;
-- * public.bot_apply_steps writes decided_at with the rest of a step (orders, trades, logs,
--   notifications, progress; the worker posts and voids the step's holds in the same
--   transaction, after this function has locked the leases);
-- * public.bot_fence_holds locks the leases of bots about to hold credits and names the
--   stale ones: the worker places holds in that transaction, only for current epochs;
-- * public.bot_orphan_holds names the pending holds of a bot whose order never happened
--   although the bot's committed progress is past the candle that decided them; the
--   worker that adopts the bot voids them in that transaction.
--
-- Lock order (the same everywhere leases, bots and steps are locked; see
-- docs/architecture.md): bot_leases rows in bot-id order, then bots, then the step's
-- orders, trades and logs, then credit accounts and transfers.

-- Tables --------------------------------------------------------------------------------

alter table public.orders add column decided_at timestamptz;
alter table public.trades add column decided_at timestamptz;

comment on column public.orders.decided_at is
  'Open time of the candle whose close decided this order (null: a copy of a signal, or older rows).';
comment on column public.trades.decided_at is
  'Open time of the candle whose close decided the entry (null: a copy of a signal, or older rows).';

-- The pending holds of a bot, found at adoption (public.bot_orphan_holds).
create index credit_transfers_pending_bot_idx on public.credit_transfers ((metadata ->> 'bot_id'))
  where phase = 'pending' and reference_type = 'order';

-- Functions -----------------------------------------------------------------------------

-- p_steps: [{bot_id, epoch, candle_at, status?, status_reason?, error_message?}]
-- p_orders: [{id, bot_id, user_id, client_order_id, exchange_order_id, exchange, symbol, side,
--             order_type, amount, price, stop_price, filled, average_price, fee, fee_currency,
--             status, reason, is_paper_trade, lease_epoch, signal_id, decided_at}]
-- p_trades: [{id, bot_id, user_id, exchange, trading_pair, side, direction, order_type, amount,
--             price, exit_price, fee, profit, profit_percentage, status, exit_reason, entry_time,
--             exit_time, entry_order_id, exit_order_id, is_paper_trade, stop_loss_price,
--             take_profit_price, lease_epoch, metadata, signal_id, decided_at}]
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
  -- Lock the leases of the batch first, in bot-id order: a takeover (epoch + 1) waits
  -- until this commits, and lease renewals lock in the same order.
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join jsonb_to_recordset(p_steps) as s(bot_id uuid, epoch bigint)
              on s.bot_id = l.bot_id and s.epoch = l.epoch
           order by l.bot_id
             for share of l) x;
  -- Then the bots, in the same order, before the step's rows (whose triggers update the
  -- bots' statistics): two batches of the same bots (a runner's and a signal's fan-out)
  -- queue behind each other instead of deadlocking.
  perform 1 from public.bots b where b.id = any (v_ok) order by b.id for no key update;

  insert into public.orders as o (id, bot_id, user_id, client_order_id, exchange_order_id, exchange, symbol, side,
                                  order_type, amount, price, stop_price, filled, average_price, fee, fee_currency,
                                  status, reason, is_paper_trade, lease_epoch, signal_id, decided_at)
  select r.id, r.bot_id, r.user_id, r.client_order_id, r.exchange_order_id, r.exchange, r.symbol, r.side,
         r.order_type, r.amount, r.price, r.stop_price, coalesce(r.filled, 0), r.average_price, coalesce(r.fee, 0),
         r.fee_currency, r.status, r.reason, coalesce(r.is_paper_trade, true), r.lease_epoch, r.signal_id,
         r.decided_at
    from jsonb_to_recordset(p_orders) as r(id uuid, bot_id uuid, user_id uuid, client_order_id text,
         exchange_order_id text, exchange text, symbol text, side text, order_type text, amount numeric,
         price numeric, stop_price numeric, filled numeric, average_price numeric, fee numeric, fee_currency text,
         status text, reason text, is_paper_trade boolean, lease_epoch bigint, signal_id uuid,
         decided_at timestamptz)
   where r.bot_id = any (v_ok)
   order by r.bot_id, r.client_order_id
  on conflict (client_order_id) do update
     set exchange_order_id = coalesce(excluded.exchange_order_id, o.exchange_order_id),
         filled = excluded.filled,
         average_price = coalesce(excluded.average_price, o.average_price),
         fee = excluded.fee,
         fee_currency = coalesce(excluded.fee_currency, o.fee_currency),
         status = excluded.status,
         lease_epoch = excluded.lease_epoch,
         decided_at = coalesce(o.decided_at, excluded.decided_at);

  insert into public.trades as t (id, bot_id, user_id, exchange, trading_pair, side, direction, order_type, amount,
                                  price, exit_price, fee, profit, profit_percentage, status, exit_reason, entry_time,
                                  exit_time, entry_order_id, exit_order_id, is_paper_trade, stop_loss_price,
                                  take_profit_price, lease_epoch, metadata, signal_id, decided_at)
  select r.id, r.bot_id, r.user_id, r.exchange, r.trading_pair, r.side, r.direction, r.order_type, r.amount,
         r.price, r.exit_price, r.fee, coalesce(r.profit, 0), coalesce(r.profit_percentage, 0), r.status,
         r.exit_reason, r.entry_time, r.exit_time, r.entry_order_id, r.exit_order_id,
         coalesce(r.is_paper_trade, true), r.stop_loss_price, r.take_profit_price, r.lease_epoch,
         coalesce(r.metadata, '{}'), r.signal_id, r.decided_at
    from jsonb_to_recordset(p_trades) as r(id uuid, bot_id uuid, user_id uuid, exchange text, trading_pair text,
         side text, direction text, order_type text, amount numeric, price numeric, exit_price numeric, fee numeric,
         profit numeric, profit_percentage numeric, status text, exit_reason text, entry_time timestamptz,
         exit_time timestamptz, entry_order_id uuid, exit_order_id uuid, is_paper_trade boolean,
         stop_loss_price numeric, take_profit_price numeric, lease_epoch bigint, metadata jsonb, signal_id uuid,
         decided_at timestamptz)
   where r.bot_id = any (v_ok)
   order by r.bot_id, r.id
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
         metadata = t.metadata || excluded.metadata,
         decided_at = coalesce(t.decided_at, excluded.decided_at);

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

-- Fence a batch of credit holds: lock the leases of p_bots ([{bot_id, epoch}]) for share in
-- bot-id order and return the bots whose epoch is stale. The caller places the holds of the
-- other bots in the same transaction; a takeover waits until it commits, and a worker that
-- lost a bot holds nothing for it.
create or replace function public.bot_fence_holds(p_bots jsonb)
returns table (stale_bot_id uuid)
language plpgsql
set search_path = ''
as $$
declare
  v_ok uuid[];
begin
  if p_bots is null or jsonb_typeof(p_bots) <> 'array' then
    raise exception 'p_bots must be a JSON array of {bot_id, epoch}' using errcode = '22023';
  end if;
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join jsonb_to_recordset(p_bots) as s(bot_id uuid, epoch bigint)
              on s.bot_id = l.bot_id and s.epoch = l.epoch
           order by l.bot_id
             for share of l) x;
  return query
    select distinct s.bot_id from jsonb_to_recordset(p_bots) as s(bot_id uuid)
     where s.bot_id is not null and not (s.bot_id = any (v_ok));
end;
$$;

revoke execute on function public.bot_fence_holds(jsonb) from public, anon, authenticated;
grant execute on function public.bot_fence_holds(jsonb) to service_role;

-- The pending credit holds of bots (p_bots: [{bot_id, epoch}], current epochs only; the
-- leases are locked for share in bot-id order) whose entry order never happened although
-- the bot's committed progress (last_candle_at) is at or past the candle that decided it
-- (metadata.decided_at): no worker will place that order any more. The adopting worker
-- voids them in the same transaction.
create or replace function public.bot_orphan_holds(p_bots jsonb)
returns table (bot_id uuid, hold_id uuid, client_order_id text, decided_at timestamptz)
language plpgsql
set search_path = ''
as $$
declare
  v_ok uuid[];
begin
  if p_bots is null or jsonb_typeof(p_bots) <> 'array' then
    raise exception 'p_bots must be a JSON array of {bot_id, epoch}' using errcode = '22023';
  end if;
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join jsonb_to_recordset(p_bots) as s(bot_id uuid, epoch bigint)
              on s.bot_id = l.bot_id and s.epoch = l.epoch
           order by l.bot_id
             for share of l) x;
  return query
    select b.id, t.id, t.reference_id, (t.metadata ->> 'decided_at')::timestamptz
      from public.bots b
      join public.credit_transfers t
        on t.reference_type = 'order'
       and t.phase = 'pending'
       and t.metadata ->> 'bot_id' = b.id::text
     where b.id = any (v_ok)
       and t.metadata ? 'decided_at'
       and (t.metadata ->> 'decided_at')::timestamptz <= b.last_candle_at
       and not exists (select 1 from public.credit_transfers r where r.pending_id = t.id)
       and not exists (select 1 from public.orders o where o.client_order_id = t.reference_id)
     order by b.id, t.id;
end;
$$;

revoke execute on function public.bot_orphan_holds(jsonb) from public, anon, authenticated;
grant execute on function public.bot_orphan_holds(jsonb) to service_role;
