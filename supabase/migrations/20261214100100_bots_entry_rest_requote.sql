-- An entry that timed out partly filled, on a bot with `timeout_action = 'requote'`, now
-- re-quotes its rest at the new price (freqtrade's semantics: the filled part is the
-- position, the rest is placed again); each fill of the rest adds to the open trade, whose
-- entry price becomes the average of its fills. The open trades a step resizes
-- (`bot_record_equity`'s `p_trades`: a part closed, a rest added) may now carry that new
-- entry `price`; rows without one keep theirs.

-- ======================================================================================
-- Functions
-- ======================================================================================

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
           price = coalesce(r.price, t.price),
           lease_epoch = r.lease_epoch
      from jsonb_to_recordset(p_trades) as r(id uuid, bot_id uuid, lease_epoch bigint, amount numeric, fee numeric,
                                             price numeric)
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
