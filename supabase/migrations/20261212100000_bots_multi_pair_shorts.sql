-- Multi-pair bots may short (`allow_short`): each pair holds a long or a short, under the same
-- `max_open_trades` cap and stake split as longs. A reversal's exit, placed on the close that
-- decides it, frees its slot for that close's entries; its opposite entry takes a free slot
-- in the pairs' order like any other entry (docs/bots.md, worker/strategies/slots.py).

-- Tables ---------------------------------------------------------------------------------

alter table public.bots drop constraint bots_multi_pair_long_only;
