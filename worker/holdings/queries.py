"""Named SQL of the holdings sync (``%(name)s`` parameters; rules live in the migration)."""

from __future__ import annotations

CONNECTIONS_OF_USER = """
select c.id, c.user_id, c.provider, c.provider_user_id, c.provider_connection_id, c.sealed_user_secret, c.status
  from public.brokerage_connections c
 where c.user_id = %(user_id)s and c.status <> 'deleted' and c.sealed_user_secret is not null
   and (%(connection_id)s::uuid is null or c.id = %(connection_id)s::uuid
        or (c.provider = 'snaptrade' and c.provider_connection_id is null))
 order by c.created_at
"""

LOGIN_BY_PROVIDER_USER = """
select c.user_id, c.provider, c.provider_user_id, c.sealed_user_secret
  from public.brokerage_connections c
 where c.provider = %(provider)s and c.provider_user_id = %(provider_user_id)s and c.sealed_user_secret is not null
 order by c.created_at desc
 limit 1
"""

ACCOUNT_FOR_SYNC = """
select a.id as account_id, a.user_id, a.provider_account_id, c.id as connection_id, c.provider,
       c.provider_user_id, c.sealed_user_secret, c.status
  from public.brokerage_accounts a
  join public.brokerage_connections c on c.id = a.connection_id
 where a.provider_account_id = %(provider_account_id)s and c.provider = %(provider)s
   and c.provider_user_id = %(provider_user_id)s
"""

# ACCOUNT_FOR_SYNC for many accounts at once (row idx = position in the arrays, from 1).
ACCOUNTS_FOR_SYNC = """
select k.idx, a.id as account_id, a.user_id, a.provider_account_id, c.id as connection_id, c.provider,
       c.provider_user_id, c.sealed_user_secret, c.status
  from unnest(%(providers)s::text[], %(provider_user_ids)s::text[], %(provider_account_ids)s::text[])
       with ordinality as k(provider, provider_user_id, provider_account_id, idx)
  join public.brokerage_connections c on c.provider = k.provider and c.provider_user_id = k.provider_user_id
  join public.brokerage_accounts a on a.connection_id = c.id and a.provider_account_id = k.provider_account_id
"""

ENSURE_CONNECTION = """
select private.holdings_ensure_connection(%(provider)s, %(provider_user_id)s, %(provider_connection_id)s,
                                          %(brokerage_name)s) as id
"""

CONNECTION_NAME = """
update public.brokerage_connections set brokerage_name = %(name)s
 where id = %(id)s and brokerage_name is distinct from %(name)s and %(name)s::text is not null
"""

UPSERT_ACCOUNTS = """
insert into public.brokerage_accounts as a
  (connection_id, user_id, provider_account_id, name, number_masked, institution_name, currency, total_value, cash)
select %(connection_id)s, %(user_id)s, r.provider_account_id, r.name, r.number_masked, r.institution_name,
       coalesce(r.currency, 'USD'), r.total_value, r.cash
  from jsonb_to_recordset(%(accounts)s::jsonb)
       as r(provider_account_id text, name text, number_masked text, institution_name text, currency text,
            total_value numeric, cash numeric)
on conflict (connection_id, provider_account_id) do update
   set name = excluded.name, number_masked = excluded.number_masked, institution_name = excluded.institution_name,
       currency = excluded.currency, total_value = coalesce(excluded.total_value, a.total_value),
       cash = coalesce(excluded.cash, a.cash)
returning a.id, a.provider_account_id
"""

# Accounts a full listing no longer shows are gone, with their positions.
REMOVE_UNLISTED_ACCOUNTS = """
with gone as (
  delete from public.brokerage_accounts a
   where a.connection_id = any (%(connection_ids)s::uuid[]) and not (a.id = any (%(kept)s::uuid[]))
  returning a.id
)
select count(*) as accounts,
       (select count(*) from public.brokerage_positions p where p.account_id in (select id from gone)) as positions
  from gone
"""

APPLY_POSITIONS = """
select applied, upserted, removed
  from private.holdings_apply_positions(%(account_id)s, %(as_of)s, %(positions)s::jsonb)
"""

ACCOUNT_SYNC_ERROR = """
update public.brokerage_accounts set sync_error = %(error)s where id = %(account_id)s
"""

REFRESH_AGGREGATES = "select private.holdings_refresh_aggregates(%(user_ids)s::uuid[]) as changed"

# FINISH_ACCOUNT_SYNC for many accounts in one call; an account that fails comes back with its error.
FINISH_ACCOUNT_SYNCS = """
select idx, applied, upserted, removed, error from private.holdings_finish_account_syncs(%(items)s::jsonb)
"""

# The holdings.aggregate job: users whose positions changed since their last aggregation.
AGGREGATE_PENDING = "select private.holdings_aggregate_pending(%(user_ids)s::uuid[]) as changed"

# An incremental sync after its fetch: positions, aggregation request, run, webhook event.
FINISH_ACCOUNT_SYNC = """
select applied, upserted, removed
  from private.holdings_finish_account_sync(%(account_id)s, %(as_of)s, %(positions)s::jsonb,
                                            %(webhook_event_id)s::uuid, %(duration_ms)s)
"""

CONNECTIONS_SYNCED = """
update public.brokerage_connections set last_synced_at = now()
 where id = any (%(connection_ids)s::uuid[])
"""

CONNECTIONS_BROKEN = """
update public.brokerage_connections set status = 'broken', status_reason = %(reason)s
 where id = any (%(connection_ids)s::uuid[]) and status <> 'deleted'
"""

# A provider status event of a connection, ordered by the time it happened (see the migration).
CONNECTION_EVENT = """
select id, user_id, applied
  from private.holdings_connection_event(%(provider)s, %(provider_connection_id)s, %(status)s, %(reason)s,
                                         %(occurred_at)s)
"""

# Has each provider user any connection that is not deleted? (row idx = position, from 1)
USERS_HAVE_LIVE_CONNECTION = """
select k.idx, exists (select 1 from public.brokerage_connections c
                       where c.provider = k.provider and c.provider_user_id = k.provider_user_id
                         and c.status <> 'deleted') as live
  from unnest(%(providers)s::text[], %(provider_user_ids)s::text[]) with ordinality as k(provider, provider_user_id, idx)
"""

# The keys events waiting for connections of these provider users (of one provider) wait on.
CONNECTION_KEYS_OF_USERS = """
select coalesce(array_agg(distinct 'connection:' || c.provider_connection_id), '{}') as keys
  from public.brokerage_connections c
 where c.provider = %(provider)s and c.provider_user_id = any (%(provider_user_ids)s::text[])
   and c.provider_connection_id is not null
"""

START_SYNC_RUN = """
update public.sync_runs set status = 'running', started_at = coalesce(started_at, now())
 where id = %(id)s and status in ('requested', 'running')
returning user_id, connection_id, trigger
"""

INSERT_SYNC_RUN = """
insert into public.sync_runs (user_id, connection_id, account_id, trigger, scope, status, started_at)
values (%(user_id)s, %(connection_id)s, %(account_id)s, %(trigger)s, %(scope)s, 'running', now())
returning id
"""

RECORD_SYNC_RUN = """
insert into public.sync_runs (user_id, trigger, scope, status, accounts_synced, positions_upserted, positions_removed,
                              errors, duration_ms, started_at, finished_at)
values (%(user_id)s, %(trigger)s, %(scope)s, %(status)s, %(accounts_synced)s, %(positions_upserted)s,
        %(positions_removed)s, %(errors)s::jsonb, %(duration_ms)s,
        now() - make_interval(secs => %(duration_ms)s / 1000.0), now())
"""

FINISH_SYNC_RUN = """
update public.sync_runs
   set status = %(status)s, accounts_synced = %(accounts_synced)s, positions_upserted = %(positions_upserted)s,
       positions_removed = %(positions_removed)s, errors = %(errors)s::jsonb, duration_ms = %(duration_ms)s,
       finished_at = now()
 where id = %(id)s
"""

NIGHTLY_SYNC_RUNS = """
insert into public.sync_runs (user_id, trigger, scope, status)
select distinct c.user_id, 'nightly', 'full', 'requested'
  from public.brokerage_connections c
 where c.status in ('active', 'broken') and c.sealed_user_secret is not null
"""

WATCHED_SYMBOLS = "select symbol, source from private.watched_symbols order by symbol"

APPLY_PRICES = "select private.holdings_apply_prices(%(prices)s::jsonb) as changed"

PRICES_FROM_CANDLES = "select private.holdings_prices_from_candles() as changed"

# Where to send an order for a symbol: the active connection whose account holds the most of it.
ROUTE_ORDER = """
select a.id as account_id, a.provider_account_id, c.id as connection_id, c.provider, c.provider_user_id,
       c.sealed_user_secret, p.units
  from public.brokerage_positions p
  join public.brokerage_accounts a on a.id = p.account_id
  join public.brokerage_connections c on c.id = a.connection_id
 where p.user_id = %(user_id)s and p.symbol = %(symbol)s and c.status = 'active' and p.units > 0
 order by p.units desc, a.created_at
 limit 1
"""
