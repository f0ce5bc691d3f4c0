-- Orders as traders use them: limit entries and exits with unfilled timeouts, and each
-- bot's unrealised P&L and equity, updated on every candle and published over Realtime.
--
-- Bot settings (owners write them with the rest of the bot):
-- - entry_order_type / exit_order_type: 'market' (fills at the next open) or 'limit' (rests
--   at the deciding close moved by limit_offset percent in the trader's favour: a long's
--   entry below it, its exit above; a short's the other way round);
-- - entry_timeout / exit_timeout in order_timeout_unit ('minutes' or 'candles'): a limit
--   order still unfilled that long after it was placed is cancelled at a candle close;
-- - timeout_action: 'cancel' (give up: an entry is skipped, an exit leaves the position
--   open and managed) or 'requote' (place it again at the latest close with the offset).
-- bot_equity: one row per bot, written by the fleet in the transaction of its candle step
-- through public.bot_record_equity (fenced by the lease epoch), read by the owner.

-- Tables and indexes --------------------------------------------------------------------

alter table public.bots
  add column entry_order_type text not null default 'market'
    constraint bots_entry_order_type_known check (entry_order_type in ('market', 'limit')),
  add column exit_order_type text not null default 'market'
    constraint bots_exit_order_type_known check (exit_order_type in ('market', 'limit')),
  add column limit_offset numeric(8, 4) not null default 0
    constraint bots_limit_offset_range check (limit_offset >= 0 and limit_offset <= 10),
  add column order_timeout_unit text not null default 'candles'
    constraint bots_order_timeout_unit_known check (order_timeout_unit in ('minutes', 'candles')),
  add column entry_timeout integer not null default 1,
  add column exit_timeout integer not null default 1,
  add column timeout_action text not null default 'cancel'
    constraint bots_timeout_action_known check (timeout_action in ('cancel', 'requote'));

-- At least one candle (or minute), at most a week in minutes or 1,000 candles.
alter table public.bots
  add constraint bots_order_timeout_range
    check (entry_timeout >= 1 and exit_timeout >= 1
           and entry_timeout <= case order_timeout_unit when 'minutes' then 10080 else 1000 end
           and exit_timeout <= case order_timeout_unit when 'minutes' then 10080 else 1000 end);

create table public.bot_equity (
  bot_id uuid primary key references public.bots (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  candle_at timestamptz not null,  -- open time of the candle whose close priced it
  price numeric(28, 12),           -- that close; null while the bot holds nothing
  position_amount numeric(28, 12) not null default 0,  -- negative: a short
  unrealized_pnl numeric(28, 12) not null default 0,
  realized_pnl numeric(28, 12) not null default 0,
  equity numeric(28, 12) not null,  -- initial balance + realized + unrealized
  lease_epoch bigint,
  updated_at timestamptz not null default now()
);

create index bot_equity_user_id_idx on public.bot_equity (user_id);

-- RLS -----------------------------------------------------------------------------------

alter table public.bot_equity enable row level security;
revoke all on public.bot_equity from anon, authenticated;
grant select on public.bot_equity to authenticated;
grant all on public.bot_equity to service_role;

create policy "Users can read their own bots' equity" on public.bot_equity
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every bot's equity" on public.bot_equity
  for select to tradefleet_admin using (true);

grant insert (entry_order_type, exit_order_type, limit_offset, order_timeout_unit, entry_timeout,
              exit_timeout, timeout_action) on public.bots to authenticated;
grant update (entry_order_type, exit_order_type, limit_offset, order_timeout_unit, entry_timeout,
              exit_timeout, timeout_action) on public.bots to authenticated;

-- Functions -----------------------------------------------------------------------------

-- Record the equity of a batch of bots (upsert by bot), in the transaction of their step,
-- and the remaining amount of open trades a partially filled exit reduced.
-- p_rows: [{bot_id, user_id, candle_at, price, position_amount, unrealized_pnl, realized_pnl,
--           equity, lease_epoch}]
-- p_trades: [{id, bot_id, lease_epoch, amount, fee}] (open trades, what is left of them)
-- Rows of a bot whose lease epoch is stale are skipped, and an older candle never
-- overwrites a newer one; the leases are locked for share in bot-id order.
create or replace function public.bot_record_equity(p_rows jsonb, p_trades jsonb default '[]')
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_ok uuid[];
  v_n integer;
begin
  if jsonb_typeof(coalesce(p_rows, 'null')) <> 'array' or jsonb_typeof(coalesce(p_trades, 'null')) <> 'array' then
    raise exception 'p_rows and p_trades must be JSON arrays' using errcode = '22023';
  end if;
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join (select distinct r.bot_id, r.lease_epoch
                    from jsonb_to_recordset(p_rows || p_trades) as r(bot_id uuid, lease_epoch bigint)) s
              on s.bot_id = l.bot_id and s.lease_epoch = l.epoch
           order by l.bot_id
             for share of l) x;

  update public.trades t
     set amount = r.amount,
         fee = r.fee,
         lease_epoch = r.lease_epoch
    from jsonb_to_recordset(p_trades) as r(id uuid, bot_id uuid, lease_epoch bigint, amount numeric, fee numeric)
   where t.id = r.id and t.bot_id = r.bot_id and t.status = 'open' and r.bot_id = any (v_ok);

  insert into public.bot_equity as e (bot_id, user_id, candle_at, price, position_amount, unrealized_pnl,
                                      realized_pnl, equity, lease_epoch)
  select r.bot_id, r.user_id, r.candle_at, r.price, coalesce(r.position_amount, 0),
         coalesce(r.unrealized_pnl, 0), coalesce(r.realized_pnl, 0), r.equity, r.lease_epoch
    from jsonb_to_recordset(p_rows) as r(bot_id uuid, user_id uuid, candle_at timestamptz, price numeric,
         position_amount numeric, unrealized_pnl numeric, realized_pnl numeric, equity numeric,
         lease_epoch bigint)
   where r.bot_id = any (v_ok)
   order by r.bot_id
  on conflict (bot_id) do update
     set candle_at = excluded.candle_at,
         price = excluded.price,
         position_amount = excluded.position_amount,
         unrealized_pnl = excluded.unrealized_pnl,
         realized_pnl = excluded.realized_pnl,
         equity = excluded.equity,
         lease_epoch = excluded.lease_epoch,
         updated_at = now()
   where e.candle_at <= excluded.candle_at;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;

revoke execute on function public.bot_record_equity(jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.bot_record_equity(jsonb, jsonb) to service_role;

-- Realtime ------------------------------------------------------------------------------

alter publication supabase_realtime add table public.bot_equity;
