-- private.api_calls loses its identity column and with it its primary key and sequence.
-- Nothing reads a call by its id: the rollup (public.api_usage_rollup) deletes every call
-- it can see and aggregates the rows it deleted, and the calls of deleted keys by their
-- key. Every api_authorize that carries a usage record inserted into the table, so every
-- request took the sequence's next value (its page locked, and logged every 32 values) and
-- added an entry at the right edge of the key's index, the same page for every client. A
-- heap alone takes the row: about 15,000 fewer instructions a call (callgrind over
-- scripts/bench api's keys, 2 % of a call), and no page that all clients write in turn.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

alter table private.api_calls drop column id;
