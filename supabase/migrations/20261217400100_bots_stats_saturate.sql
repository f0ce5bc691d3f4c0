-- A bot's profit and balance stop at what their columns hold instead of failing the write
-- that closed its trade.
--
-- private.apply_bot_stat_deltas (called by the trades' statement trigger
-- update_bot_statistics) added a batch's closed profit to each bot's profit, balance and
-- profit percentage. A paper bot's owner chooses its initial balance, up to what the column
-- holds (999,999,999,999.99999999), and a leveraged copy can multiply it, so a profit past
-- numeric(20,8) failed the update with numeric_value_out_of_range, and with it the
-- statement that closed the trades: for a signal's close fan-out, every subscriber's copy
-- at once, on every retry (the copies stayed open). The three figures now saturate at the
-- bounds of their columns; nothing else changes.

-- ======================================================================================
-- Functions
-- ======================================================================================

create or replace function private.apply_bot_stat_deltas(
  p_bot uuid[], p_total bigint[], p_win bigint[], p_loss bigint[], p_profit numeric[], p_last timestamptz[]
) returns void
language sql
set search_path = ''
as $$
  update public.bots b
     set total_trades = b.total_trades + d.d_total,
         winning_trades = b.winning_trades + d.d_win,
         losing_trades = b.losing_trades + d.d_loss,
         profit = least(greatest(b.profit + d.d_profit, -999999999999.99999999), 999999999999.99999999),
         current_balance = least(greatest(b.initial_balance + b.profit + d.d_profit, -999999999999.99999999),
                                 999999999999.99999999),
         profit_percentage = least(greatest(round((b.profit + d.d_profit) / b.initial_balance * 100, 4),
                                            -99999999.9999), 99999999.9999),
         last_trade_at = greatest(b.last_trade_at, d.last_at)
    from unnest(p_bot, p_total, p_win, p_loss, p_profit, p_last)
         as d(bot_id, d_total, d_win, d_loss, d_profit, last_at)
   where b.id = d.bot_id
$$;

revoke all on function private.apply_bot_stat_deltas(uuid[], bigint[], bigint[], bigint[], numeric[], timestamptz[]) from public, anon, authenticated;
