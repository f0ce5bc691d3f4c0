-- Live prices for apps: symbol_prices (published through Realtime) is read only for the
-- symbols a user holds (brokerage positions) or trades with a bot, not every price of
-- every user's portfolio. The portfolio views join prices of held symbols, so they read
-- the same values as before.

-- RLS
drop policy "Signed-in users can read prices" on public.symbol_prices;
create policy "Users read the prices of what they hold or trade" on public.symbol_prices
  for select to authenticated using (
    exists (
      select 1
        from public.brokerage_positions p
       where p.user_id = (select auth.uid()) and p.symbol = symbol_prices.symbol
    )
    or exists (
      select 1
        from public.aggregated_holdings h
       where h.user_id = (select auth.uid()) and h.symbol = symbol_prices.symbol
    )
    or exists (
      select 1
        from public.bots b
       where b.user_id = (select auth.uid())
         and symbol_prices.symbol = any (coalesce(b.pairs, array[b.trading_pair]))
    )
  );
