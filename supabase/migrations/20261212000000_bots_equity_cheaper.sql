-- Each bot's equity at a lower cost per candle close.
--
-- bot_equity is written on every candle for every bot holding a position, which is most of
-- the rows the fleet writes per close. Those rows used to take a share lock on the bot's
-- lease (and the fleet sent a head without progress for them to bot_apply_steps, which
-- locked the lease and the bot row again): two row-lock passes, each a WAL record per bot.
-- An equity row changes nothing else and is recomputed on the next candle, so it needs no
-- lock: it is written when the lease epoch it carries is the current one (read, not locked)
-- and never over a row of a newer epoch or a newer candle. A worker that loses the bot
-- between the read and the write leaves at most that candle's row, which the new owner's
-- next row (a newer epoch) replaces. Open trades an exit reduced still take the share lock
-- (the fleet's step locked them first in the same transaction).
--
-- The table keeps room on each page so that the per-candle updates are HOT (no indexed
-- column changes): no index writes, and pages pruned in place.

-- Tables and indexes --------------------------------------------------------------------

alter table public.bot_equity set (fillfactor = 50);

-- Functions -----------------------------------------------------------------------------

-- Record the equity of a batch of bots (upsert by bot), and the remaining amount of open
-- trades a partially filled exit reduced.
-- p_rows: [{bot_id, user_id, candle_at, price, position_amount, unrealized_pnl, realized_pnl,
--           equity, lease_epoch}]
-- p_trades: [{id, bot_id, lease_epoch, amount, fee}] (open trades, what is left of them)
-- Rows whose lease epoch is not the bot's current one are skipped, and a row never
-- overwrites one of a newer candle or a newer epoch. The leases of p_trades' bots are
-- locked for share in bot-id order; p_rows take no lease lock.
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

  if jsonb_array_length(p_trades) > 0 then
    select coalesce(array_agg(x.bot_id), '{}') into v_ok
      from (select l.bot_id
              from public.bot_leases l
              join (select distinct r.bot_id, r.lease_epoch
                      from jsonb_to_recordset(p_trades) as r(bot_id uuid, lease_epoch bigint)) s
                on s.bot_id = l.bot_id and s.lease_epoch = l.epoch
             order by l.bot_id
               for share of l) x;

    update public.trades t
       set amount = r.amount,
           fee = r.fee,
           lease_epoch = r.lease_epoch
      from jsonb_to_recordset(p_trades) as r(id uuid, bot_id uuid, lease_epoch bigint, amount numeric, fee numeric)
     where t.id = r.id and t.bot_id = r.bot_id and t.status = 'open' and r.bot_id = any (v_ok);
  end if;

  insert into public.bot_equity as e (bot_id, user_id, candle_at, price, position_amount, unrealized_pnl,
                                      realized_pnl, equity, lease_epoch)
  select r.bot_id, r.user_id, r.candle_at, r.price, coalesce(r.position_amount, 0),
         coalesce(r.unrealized_pnl, 0), coalesce(r.realized_pnl, 0), r.equity, r.lease_epoch
    from jsonb_to_recordset(p_rows) as r(bot_id uuid, user_id uuid, candle_at timestamptz, price numeric,
         position_amount numeric, unrealized_pnl numeric, realized_pnl numeric, equity numeric,
         lease_epoch bigint)
    join public.bot_leases l on l.bot_id = r.bot_id and l.epoch = r.lease_epoch
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
   where e.candle_at <= excluded.candle_at
     and coalesce(e.lease_epoch, 0) <= excluded.lease_epoch;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;

revoke execute on function public.bot_record_equity(jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.bot_record_equity(jsonb, jsonb) to service_role;
