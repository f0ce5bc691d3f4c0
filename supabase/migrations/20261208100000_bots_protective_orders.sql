-- Protective orders: the stop-loss (and take-profit) a live bot rests on the exchange as
-- soon as its position opens, so the position stays protected while no worker watches it.
-- One row per order the fleet placed (a replaced stop is a new row, the old one 'canceled'),
-- keyed by its deterministic client order id. Owners read their rows; only the fleet
-- writes, through public.bot_record_protection in the transaction of the bot's step.
-- The bots table also gets the save rules of stops on the wrong side of the price.

-- Tables and indexes --------------------------------------------------------------------

create table public.protective_orders (
  id uuid primary key default gen_random_uuid(),
  bot_id uuid not null references public.bots (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  trade_id uuid not null references public.trades (id) on delete cascade,
  client_order_id text not null constraint protective_orders_client_order_id_unique unique,
  exchange_order_id text,
  exchange text not null,
  symbol text not null,
  kind text not null constraint protective_orders_kind_known check (kind in ('stop_loss', 'take_profit')),
  side text not null constraint protective_orders_side_known check (side in ('buy', 'sell')),
  amount numeric(28, 12) not null constraint protective_orders_amount_positive check (amount > 0),
  trigger_price numeric(28, 12) not null constraint protective_orders_trigger_positive check (trigger_price > 0),
  limit_price numeric(28, 12) constraint protective_orders_limit_positive check (limit_price > 0),
  status text not null default 'open'
    constraint protective_orders_status_known check (status in ('open', 'filled', 'canceled', 'rejected')),
  -- why it is no longer open: replaced (settings, trailing), exit (the position closed by
  -- another path), filled (it closed the position itself)
  status_reason text,
  filled_at timestamptz,
  lease_epoch bigint,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index protective_orders_bot_open_idx on public.protective_orders (bot_id) where status = 'open';
create index protective_orders_user_id_idx on public.protective_orders (user_id);
create index protective_orders_trade_id_idx on public.protective_orders (trade_id);

-- A short's take-profit is below its entry: 100 % or more would be a target at or below zero.
alter table public.bots
  add constraint bots_take_profit_short_side
    check (not allow_short or take_profit is null or take_profit < 100);
-- A trailing stop trails the stop-loss: it needs one.
alter table public.bots
  add constraint bots_trailing_stop_needs_stop_loss
    check (case when jsonb_typeof(metadata -> 'trailing_stop') = 'boolean'
                then not (metadata -> 'trailing_stop')::boolean or stop_loss is not null
                else coalesce(jsonb_typeof(metadata -> 'trailing_stop'), 'null') = 'null' end);

-- RLS -----------------------------------------------------------------------------------

alter table public.protective_orders enable row level security;
revoke all on public.protective_orders from anon, authenticated;
grant select on public.protective_orders to authenticated;
grant all on public.protective_orders to service_role;

create policy "Users can read their own protective orders" on public.protective_orders
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every protective order" on public.protective_orders
  for select to tradefleet_admin using (true);

-- Functions -----------------------------------------------------------------------------

-- Record a batch of protective orders (upsert by client order id) and the stop and target
-- prices of the open trades they protect, in the transaction of public.bot_apply_steps.
-- p_orders: [{id, bot_id, user_id, trade_id, client_order_id, exchange_order_id, exchange,
--             symbol, kind, side, amount, trigger_price, limit_price, status, status_reason,
--             filled_at, lease_epoch}]
-- p_trades: [{id, bot_id, lease_epoch, stop_loss_price, take_profit_price}] (open trades whose
--             stop moved: a settings change or a trailing stop)
-- Rows of a bot whose lease epoch is stale are skipped (a worker that lost the bot writes
-- nothing); the leases are locked for share in bot-id order, as bot_apply_steps locks them.
create or replace function public.bot_record_protection(p_orders jsonb, p_trades jsonb default '[]')
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_ok uuid[];
  v_n integer;
begin
  if jsonb_typeof(coalesce(p_orders, 'null')) <> 'array' or jsonb_typeof(coalesce(p_trades, 'null')) <> 'array' then
    raise exception 'p_orders and p_trades must be JSON arrays' using errcode = '22023';
  end if;
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join (select distinct r.bot_id, r.lease_epoch
                    from jsonb_to_recordset(p_orders || p_trades) as r(bot_id uuid, lease_epoch bigint)) s
              on s.bot_id = l.bot_id and s.lease_epoch = l.epoch
           order by l.bot_id
             for share of l) x;

  update public.trades t
     set stop_loss_price = r.stop_loss_price,
         take_profit_price = r.take_profit_price,
         lease_epoch = r.lease_epoch
    from jsonb_to_recordset(p_trades) as r(id uuid, bot_id uuid, lease_epoch bigint, stop_loss_price numeric,
                                           take_profit_price numeric)
   where t.id = r.id and t.bot_id = r.bot_id and t.status = 'open' and r.bot_id = any (v_ok);

  insert into public.protective_orders as p (id, bot_id, user_id, trade_id, client_order_id, exchange_order_id,
                                             exchange, symbol, kind, side, amount, trigger_price, limit_price,
                                             status, status_reason, filled_at, lease_epoch)
  select r.id, r.bot_id, r.user_id, r.trade_id, r.client_order_id, r.exchange_order_id, r.exchange, r.symbol,
         r.kind, r.side, r.amount, r.trigger_price, r.limit_price, coalesce(r.status, 'open'), r.status_reason,
         r.filled_at, r.lease_epoch
    from jsonb_to_recordset(p_orders) as r(id uuid, bot_id uuid, user_id uuid, trade_id uuid, client_order_id text,
         exchange_order_id text, exchange text, symbol text, kind text, side text, amount numeric,
         trigger_price numeric, limit_price numeric, status text, status_reason text, filled_at timestamptz,
         lease_epoch bigint)
   where r.bot_id = any (v_ok)
   order by r.bot_id, r.client_order_id
  on conflict (client_order_id) do update
     set exchange_order_id = coalesce(excluded.exchange_order_id, p.exchange_order_id),
         status = excluded.status,
         status_reason = coalesce(excluded.status_reason, p.status_reason),
         filled_at = coalesce(excluded.filled_at, p.filled_at),
         lease_epoch = excluded.lease_epoch,
         updated_at = now();
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;

revoke execute on function public.bot_record_protection(jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.bot_record_protection(jsonb, jsonb) to service_role;

-- Triggers ------------------------------------------------------------------------------

create trigger protective_orders_set_updated_at
  before update on public.protective_orders
  for each row execute function private.set_updated_at();
