-- Copy-trade charges read each chunk in index order.
--
-- signal_charge_copies takes the next 500 pending executions of a signal in id order. The
-- pending index held only signal_id, so every chunk read all of the signal's pending
-- executions and sorted them to keep 500: quadratic in the subscribers (100,000 copies took
-- 58 s to charge, 10,000 took 1 s; bench fanout). With id in the index a chunk is the next
-- 500 entries.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================
drop index public.signal_executions_charge_pending_idx;
create index signal_executions_charge_pending_idx on public.signal_executions (signal_id, id)
  where charge_status = 'pending';
