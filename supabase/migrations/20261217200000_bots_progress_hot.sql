-- A bot's progress write at a lower cost per candle close.
--
-- bot_apply_steps moves last_candle_at of every bot that wrote anything in a close and of a
-- twelfth of the others: about 2,000 rows of `bots` per close at 10,000 bots, the heaviest
-- statement of the step. No indexed column changes, yet with full pages each new row
-- version went to another page and every index of the table got an entry for it. The table
-- now keeps room on each page, so these updates are HOT: no index writes, pages pruned in
-- place (2,000 progress rows of the live benchmark's fleet: about 95-120 ms before, 65-70 ms
-- after). Pages written before this migration fill to the new limit only once rewritten
-- (VACUUM FULL or pg_repack), which a busy table can do at a quiet time.

-- Tables and indexes --------------------------------------------------------------------

alter table public.bots set (fillfactor = 70);
