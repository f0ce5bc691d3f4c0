-- Holdings (brokerage): RLS of every brokerage table (and the portfolio views/prices) for
-- anon, two users, a provider, an admin and the service role; positions applied behind the
-- provider's as-of, set-based aggregation, prices, and webhooks and refreshes becoming jobs.
-- Run: pg_prove -d <db> supabase/tests/database/holdings.test.sql
begin;
create extension if not exists pgtap;
select plan(82);

-- Cast and data (as the superuser, like Auth and the worker would create them).
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at) values
  ('00000000-0000-0000-0000-00000000000a', 'authenticated', 'authenticated', 'alice@t.local', '{"role":"user"}', '{}', now(), now()),
  ('00000000-0000-0000-0000-00000000000b', 'authenticated', 'authenticated', 'bob@t.local', '{"role":"user"}', '{}', now(), now()),
  ('00000000-0000-0000-0000-00000000000c', 'authenticated', 'authenticated', 'prov@t.local', '{"role":"provider"}', '{}', now(), now()),
  ('00000000-0000-0000-0000-00000000000d', 'authenticated', 'authenticated', 'admin@t.local', '{"role":"admin"}', '{}', now(), now());
insert into public.brokerage_connections (id, user_id, provider, provider_user_id, provider_connection_id, sealed_user_secret, status) values
  ('10000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000a', 'snaptrade', 'a', 'auth-a', 'v1:k:AAAA:BBBB', 'active'),
  ('10000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-00000000000b', 'snaptrade', 'b', 'auth-b', 'v1:k:CCCC:DDDD', 'active');
insert into public.brokerage_accounts (id, connection_id, user_id, provider_account_id, cash) values
  ('20000000-0000-0000-0000-00000000000a', '10000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000a', 'acc-a', 25),
  ('20000000-0000-0000-0000-00000000000b', '10000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-00000000000b', 'acc-b', null);
select private.holdings_apply_positions('20000000-0000-0000-0000-00000000000a', now(),
  '[{"symbol":"AAPL","units":"10","price":"150","average_cost":"100"}]');
select private.holdings_apply_positions('20000000-0000-0000-0000-00000000000b', now(),
  '[{"symbol":"MSFT","units":"2","price":"400","average_cost":"300"}]');
select private.holdings_refresh_aggregates(array['00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b']::uuid[]);
insert into public.sync_runs (user_id, trigger, status) values
  ('00000000-0000-0000-0000-00000000000a', 'nightly', 'completed'),
  ('00000000-0000-0000-0000-00000000000b', 'nightly', 'completed');
insert into public.symbol_prices (symbol, price, previous_close, source, as_of) values ('AAPL', 200, 190, 'test', now());

create function pg_temp.act_as(p_who text) returns void language plpgsql as $$
begin
  if p_who = 'anon' then
    perform set_config('role', 'anon', true);
    perform set_config('request.jwt.claims', '{"role":"anon"}', true);
  elsif p_who = 'service_role' then
    perform set_config('role', 'service_role', true);
    perform set_config('request.jwt.claims', '{"role":"service_role"}', true);
  else
    perform set_config('role', 'authenticated', true);
    perform set_config('request.jwt.claims', json_build_object(
      'sub', case p_who when 'alice' then '00000000-0000-0000-0000-00000000000a' when 'bob' then '00000000-0000-0000-0000-00000000000b'
                        when 'provider' then '00000000-0000-0000-0000-00000000000c' else '00000000-0000-0000-0000-00000000000d' end,
      'role', 'authenticated',
      'app_metadata', json_build_object('role', case p_who when 'provider' then 'provider' when 'admin' then 'admin' else 'user' end))::text, true);
  end if;
end $$;
grant execute on function pg_temp.act_as(text) to anon, authenticated, service_role;

-- anon: nothing at all.
select pg_temp.act_as('anon');
select throws_ok('select * from public.brokerage_connections', '42501', null, 'anon cannot read connections');
select throws_ok('select * from public.brokerage_accounts', '42501', null, 'anon cannot read accounts');
select throws_ok('select * from public.brokerage_positions', '42501', null, 'anon cannot read positions');
select throws_ok('select * from public.aggregated_holdings', '42501', null, 'anon cannot read holdings');
select throws_ok('select * from public.sync_runs', '42501', null, 'anon cannot read sync runs');
select throws_ok('insert into public.sync_runs default values', '42501', null, 'anon cannot request a refresh');
select throws_ok('select * from public.symbol_prices', '42501', null, 'anon cannot read prices');
select throws_ok('select * from public.portfolio_value', '42501', null, 'anon cannot read portfolio value');

-- alice: her own rows only; never the sealed secret; reads but no writes.
select pg_temp.act_as('alice');
select is((select count(*) from public.brokerage_connections)::int, 1, 'alice sees her connection only');
select throws_ok('select sealed_user_secret from public.brokerage_connections', '42501', null, 'alice cannot read the sealed secret');
select is((select array_agg(provider_account_id) from public.brokerage_accounts), array['acc-a'], 'alice sees her account only');
select is((select array_agg(symbol) from public.brokerage_positions), array['AAPL'], 'alice sees her positions only');
select is((select array_agg(symbol) from public.aggregated_holdings), array['AAPL'], 'alice sees her holdings only');
select is((select count(*) from public.sync_runs)::int, 1, 'alice sees her sync runs only');
select is((select market_value from public.portfolio_value), 2000::numeric, 'alice sees her portfolio valued at the latest price');
select is((select day_change from public.portfolio_value), 100::numeric, 'and today''s change');
select is((select array[cash, total_value] from public.portfolio_value), array[25, 2025]::numeric[], 'and her cash in its total value');
select is((select count(*) from public.symbol_prices)::int, 1, 'signed-in users read prices');
select throws_ok('insert into public.brokerage_accounts (connection_id, user_id, provider_account_id) values (''10000000-0000-0000-0000-00000000000a'', ''00000000-0000-0000-0000-00000000000a'', ''x'')',
  '42501', null, 'alice cannot add accounts');
select throws_ok('update public.brokerage_positions set units = 1000', '42501', null, 'alice cannot change positions');
select throws_ok('update public.aggregated_holdings set total_units = 1000', '42501', null, 'alice cannot change holdings');
select throws_ok('update public.brokerage_connections set status = ''active''', '42501', null, 'alice cannot change connection status');
select throws_ok('insert into public.symbol_prices (symbol, price, source, as_of) values (''X'', 1, ''me'', now())', '42501', null, 'alice cannot write prices');
select lives_ok('insert into public.sync_runs default values', 'alice can request a refresh');
select throws_ok('insert into public.sync_runs default values', '23514', null, 'but only once a minute');
select throws_ok('insert into public.sync_runs (user_id) values (''00000000-0000-0000-0000-00000000000b'')', '42501', null, 'alice cannot request a refresh for bob');
select throws_ok('insert into public.sync_runs (user_id, status) values (''00000000-0000-0000-0000-00000000000a'', ''completed'')', '42501', null, 'alice cannot write a run''s status');
select lives_ok('delete from public.brokerage_connections where user_id = ''00000000-0000-0000-0000-00000000000b''', 'alice''s delete of bob''s connection matches nothing');

-- bob: symmetric.
select pg_temp.act_as('bob');
select is((select array_agg(symbol) from public.aggregated_holdings), array['MSFT'], 'bob sees his holdings only');
select is((select count(*) from public.brokerage_accounts)::int, 1, 'bob sees his account only');
select is((select array[cash, total_value] from public.portfolio_value), array[0, 800]::numeric[], 'bob''s total has no one else''s cash');
select is((select count(*) from public.brokerage_connections)::int, 1, 'bob''s connection survived alice''s delete');
select is((select count(*) from public.sync_runs)::int, 1, 'bob does not see alice''s refresh request');

-- provider: a signal provider is just a user here: nothing of others.
select pg_temp.act_as('provider');
select is((select count(*) from public.brokerage_connections)::int, 0, 'a provider sees no connections');
select is((select count(*) from public.brokerage_positions)::int, 0, 'a provider sees no positions');
select is((select count(*) from public.aggregated_holdings)::int, 0, 'a provider sees no holdings');
select is((select count(*) from public.portfolio_value)::int, 0, 'a provider sees no portfolio');

-- admin (an app user with the admin role): no one's holdings, accounts or secrets.
select pg_temp.act_as('admin');
select is((select count(*) from public.aggregated_holdings)::int, 0, 'an admin does not read people''s holdings');
select is((select count(*) from public.brokerage_positions)::int, 0, 'an admin does not read positions');
select throws_ok('select sealed_user_secret from public.brokerage_connections', '42501', null, 'an admin cannot read sealed secrets');

-- service role: everything.
select pg_temp.act_as('service_role');
select is((select count(*) from public.brokerage_connections where sealed_user_secret is not null
            and user_id in ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b'))::int, 2,
          'the service reads sealed secrets');
select is((select count(*) from public.brokerage_positions
            where user_id in ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b'))::int, 2,
          'the service reads every position');
select lives_ok('update public.aggregated_holdings set last_price = last_price', 'the service writes holdings');


-- Incremental syncs and their batched aggregation: the service's alone.
select pg_temp.act_as('alice');
select throws_ok('select private.holdings_request_aggregate(''00000000-0000-0000-0000-00000000000a'')', '42501', null,
  'alice cannot request aggregations');
select throws_ok('select * from private.holdings_pending_aggregates', '42501', null, 'alice cannot read pending aggregations');
select pg_temp.act_as('service_role');
select is((select applied from private.holdings_finish_account_sync('20000000-0000-0000-0000-00000000000a', now(),
  '[{"symbol":"AAPL","units":"12","price":"150","average_cost":"100"}]')), true,
  'an incremental sync writes its positions in one call');
select is((select count(*) from private.holdings_pending_aggregates
            where user_id = '00000000-0000-0000-0000-00000000000a')::int, 1, 'and leaves its user pending aggregation');
select ok(private.holdings_aggregate_pending(array['00000000-0000-0000-0000-00000000000a']::uuid[]) > 0,
  'the aggregation job aggregates the pending user');
select is((select total_units from public.aggregated_holdings
            where user_id = '00000000-0000-0000-0000-00000000000a' and symbol = 'AAPL'), 12::numeric,
  'to the new units');
select results_eq(
  $$select idx, applied, error is not null from private.holdings_finish_account_syncs(
      '[{"account_id":"20000000-0000-0000-0000-0000000000ff","as_of":"2026-01-01T00:00:00Z","positions":[]},
        {"account_id":"20000000-0000-0000-0000-00000000000b","as_of":"2099-01-01T00:00:00Z",
         "positions":[{"symbol":"MSFT","units":"3","price":"400","average_cost":"300"}]}]') order by idx$$,
  $$values (0, null::boolean, true), (1, true, false)$$,
  'a batch of syncs reports the account that failed and keeps the others');
select is((select units from public.brokerage_positions where account_id = '20000000-0000-0000-0000-00000000000b'),
  3::numeric, 'whose positions are written');

-- A batch is written set-based when it can be, account by account otherwise.
reset role;
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at) values
  ('00000000-0000-0000-0000-00000000000e', 'authenticated', 'authenticated', 'erin@t.local', '{"role":"user"}', '{}', now(), now());
insert into public.brokerage_connections (id, user_id, provider, provider_user_id, provider_connection_id, sealed_user_secret, status) values
  ('10000000-0000-0000-0000-00000000000e', '00000000-0000-0000-0000-00000000000e', 'snaptrade', 'e', 'auth-e', 'v1:k:EEEE:FFFF', 'active');
insert into public.brokerage_accounts (id, connection_id, user_id, provider_account_id) values
  ('20000000-0000-0000-0000-0000000000e1', '10000000-0000-0000-0000-00000000000e', '00000000-0000-0000-0000-00000000000e', 'acc-e1'),
  ('20000000-0000-0000-0000-0000000000e2', '10000000-0000-0000-0000-00000000000e', '00000000-0000-0000-0000-00000000000e', 'acc-e2');
select pg_temp.act_as('service_role');
select results_eq(
  $$select idx, applied, upserted, removed, error from private.holdings_finish_account_syncs(
      '[{"account_id":"20000000-0000-0000-0000-0000000000e2","as_of":"2026-01-02T00:00:00Z",
         "positions":[{"symbol":"MSFT","units":"1","price":"400"}]},
        {"account_id":"20000000-0000-0000-0000-0000000000e1","as_of":"2026-01-02T00:00:00Z",
         "positions":[{"symbol":"AAPL","units":"6","price":"150","average_cost":"100"},
                      {"symbol":"AAPL","units":"6","price":"150","average_cost":"120"},
                      {"symbol":"TSLA","units":"1","price":"250"}]}]') order by idx$$,
  $$values (0, true, 1, 0, null::text), (1, true, 2, 0, null::text)$$,
  'a batch of fresh snapshots is written whole');
select is((select (units, average_cost)::text from public.brokerage_positions
            where account_id = '20000000-0000-0000-0000-0000000000e1' and symbol = 'AAPL'), '(12.000000000000,110.000000000000)',
  '... lots of one symbol merged at their unit-weighted average cost');
select is((select count(*) from public.sync_runs where user_id = '00000000-0000-0000-0000-00000000000e'
            and trigger = 'webhook' and status = 'completed')::int, 2, '... one sync run per account');
select is((select count(*) from private.holdings_pending_aggregates p join public.jobs j on j.id = p.job_id
            where p.user_id = '00000000-0000-0000-0000-00000000000e' and j.kind = 'holdings.aggregate')::int, 1,
  '... and one aggregation requested for their user');
select results_eq(
  $$select idx, applied, upserted, removed, error from private.holdings_finish_account_syncs(
      '[{"account_id":"20000000-0000-0000-0000-0000000000e1","as_of":"2026-01-01T00:00:00Z","positions":[]},
        {"account_id":"20000000-0000-0000-0000-0000000000e2","as_of":"2026-01-03T00:00:00Z","positions":[]}]') order by idx$$,
  $$values (0, false, 0, 0, null::text), (1, true, 0, 1, null::text)$$,
  'in a batch, a snapshot older than its account''s last one changes nothing and a newer empty one removes');
select is((select count(*) from public.brokerage_positions where account_id = '20000000-0000-0000-0000-0000000000e1')::int, 2,
  '... the older snapshot''s account keeps its positions');
select results_eq(
  $$select idx, applied, upserted, removed, error from private.holdings_finish_account_syncs(
      '[{"account_id":"20000000-0000-0000-0000-0000000000e1","as_of":"2026-01-05T00:00:00Z",
         "positions":[{"symbol":"NVDA","units":"3"}]},
        {"account_id":"20000000-0000-0000-0000-0000000000e1","as_of":"2026-01-04T00:00:00Z",
         "positions":[{"symbol":"AMD","units":"1"}]}]') order by idx$$,
  $$values (0, true, 1, 2, null::text), (1, false, 0, 0, null::text)$$,
  'a batch naming an account twice is written in order, the older snapshot ignored');
select results_eq(
  $$select idx, applied, error is not null from private.holdings_finish_account_syncs(
      '[{"account_id":"20000000-0000-0000-0000-0000000000e1","as_of":"2026-01-06T00:00:00Z",
         "positions":[{"symbol":"NVDA","units":"many"}]},
        {"account_id":"20000000-0000-0000-0000-0000000000e2","as_of":"2026-01-06T00:00:00Z",
         "positions":[{"symbol":"IBM","units":"4"}]}]') order by idx$$,
  $$values (0, null::boolean, true), (1, true, false)$$,
  'a batch with a position Postgres refuses reports that account and keeps the others');
select is((select string_agg(account_id::text || ':' || symbol, ',' order by account_id) from public.brokerage_positions
            where user_id = '00000000-0000-0000-0000-00000000000e'),
  '20000000-0000-0000-0000-0000000000e1:NVDA,20000000-0000-0000-0000-0000000000e2:IBM',
  '... whose positions stay as they were while the other account''s are written');


-- Positions behind the provider's as-of -------------------------------------------------------------
select tests.clear_authentication();
select is((select (applied, upserted, removed)::text from private.holdings_apply_positions('20000000-0000-0000-0000-00000000000a',
            now() - interval '1 day', '[{"symbol":"AAPL","units":"1","price":"1"}]')), '(f,0,0)',
          'a snapshot older than the last one applied is ignored');
select is((select units from public.brokerage_positions where account_id = '20000000-0000-0000-0000-00000000000a' and symbol = 'AAPL'),
          12::numeric, '... and leaves the positions as they were');
select is((select (applied, upserted, removed)::text from private.holdings_apply_positions('20000000-0000-0000-0000-00000000000a',
            now() + interval '1 minute', '[{"symbol":"TSLA","units":"4","price":"250","average_cost":"200"},
                                           {"symbol":"AAPL","units":"6","price":"150","average_cost":"100"},
                                           {"symbol":"AAPL","units":"6","price":"150","average_cost":"120"}]')), '(t,2,0)',
          'a newer snapshot is applied, lots of one symbol merged');
select is((select average_cost from public.brokerage_positions where account_id = '20000000-0000-0000-0000-00000000000a' and symbol = 'AAPL'),
          110::numeric, '... at their unit-weighted average cost');
select is((select removed from private.holdings_apply_positions('20000000-0000-0000-0000-00000000000a',
            now() + interval '2 minutes', '[{"symbol":"TSLA","units":"4","price":"250","average_cost":"200"}]')), 1,
          'a position the provider no longer reports is removed');
select throws_ok($$select private.holdings_apply_positions('20000000-0000-0000-0000-0000000000ff', now(), '[]')$$, 'P0002',
                 'unknown brokerage account 20000000-0000-0000-0000-0000000000ff', 'an unknown account is an error');

-- Aggregation across accounts ---------------------------------------------------------------------
insert into public.brokerage_accounts (id, connection_id, user_id, provider_account_id) values
  ('20000000-0000-0000-0000-0000000000a2', '10000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000a', 'acc-a2');
select private.holdings_apply_positions('20000000-0000-0000-0000-0000000000a2', now(),
  '[{"symbol":"TSLA","units":"6","price":"250","average_cost":"250"}]');
select private.holdings_refresh_aggregates(array['00000000-0000-0000-0000-00000000000a']::uuid[]);
select results_eq($$select total_units, average_cost, account_count from public.aggregated_holdings
                    where user_id = '00000000-0000-0000-0000-00000000000a' and symbol = 'TSLA'$$,
                  $$values (10::numeric, 230::numeric, 2)$$,
                  'holdings add up one symbol across the user''s accounts at the weighted average cost');
select is((select count(*)::int from public.aggregated_holdings
            where user_id = '00000000-0000-0000-0000-00000000000a' and symbol = 'AAPL'), 0,
          'a symbol no account holds any more leaves the holdings');

-- Prices ----------------------------------------------------------------------------------------------
select is(private.holdings_apply_prices('[{"symbol":"TSLA","price":"300","source":"test","as_of":"2099-01-01T00:00:00Z"}]'), 1,
          'a new price revalues the holdings that have it');
select results_eq($$select last_price, market_value, unrealized_pnl from public.aggregated_holdings
                    where user_id = '00000000-0000-0000-0000-00000000000a' and symbol = 'TSLA'$$,
                  $$values (300::numeric, 3000::numeric, 700::numeric)$$, '... at units x price, against the average cost');
select is(private.holdings_apply_prices('[{"symbol":"TSLA","price":"1","source":"test","as_of":"2098-01-01T00:00:00Z"}]'), 0,
          'an older price is ignored');
select is((select price from public.symbol_prices where symbol = 'TSLA'), 300::numeric, '... and the newer one stays');
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, status)
values ('30000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000a', 'h', 'binance', 'TFH/USDT', '1h', 'rsi',
        100, 10, 'running');
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close) values
  ('binance', 'TFH/USDT', '1h', '2026-01-01T00:00:00Z', 1, 2, 1, 1.5),
  ('binance', 'TFH/USDT', '1h', '2026-01-01T01:00:00Z', 1.5, 3, 1, 2.5);
select lives_ok('select private.holdings_prices_from_candles()', 'prices come from the candles of running bots'' markets');
select results_eq($$select price, currency, source from public.symbol_prices where symbol = 'TFH/USDT'$$,
                  $$values (2.5::numeric, 'USDT'::text, 'candles:binance'::text)$$, '... at the latest close');

-- Work for the fleet ------------------------------------------------------------------------------------
insert into public.sync_runs (id, user_id, trigger) values
  ('40000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-00000000000b', 'manual');
select is((select kind from public.jobs where payload ->> 'sync_run_id' = '40000000-0000-0000-0000-00000000000b'),
          'holdings.full_sync', 'a refresh request becomes a full sync job');
insert into public.webhook_events (id, provider, event_id, event_type, payload) values
  ('50000000-0000-0000-0000-000000000001', 'snaptrade', 'holdings-test-1', 'ACCOUNT_HOLDINGS_UPDATED',
   '{"userId": "b", "accountId": "acc-b"}'),
  ('50000000-0000-0000-0000-000000000002', 'snaptrade', 'holdings-test-2', 'SOMETHING_ELSE', '{}');
select results_eq($$select kind, payload ->> 'provider_account_id' from public.jobs where idempotency_key = 'snaptrade-webhook:holdings-test-1'$$,
                  $$values ('holdings.sync_account'::text, 'acc-b'::text)$$, 'a SnapTrade holdings webhook becomes an account sync job');
select is((select status from public.webhook_events where id = '50000000-0000-0000-0000-000000000002'), 'ignored',
          'an event nobody handles is marked ignored');

-- Waiting events: woken, a SnapTrade event is queued again.
update public.webhook_events set status = 'waiting', waiting_for = '{connection:x}', attempts = 1
 where id = '50000000-0000-0000-0000-000000000001';
update public.webhook_events set status = 'received' where id = '50000000-0000-0000-0000-000000000001';
select is((select kind from public.jobs where idempotency_key = 'snaptrade-webhook:holdings-test-1:woken:1'),
          'holdings.sync_account', 'a woken SnapTrade event is queued again');

-- Connection events apply in the order they happened.
select is((select count(*)::int from private.holdings_connection_event('snaptrade', 'no-such-auth', 'broken', 'x', now())),
          0, 'an event for an unknown connection finds nothing (its event waits)');
select results_eq($$select applied from private.holdings_connection_event('snaptrade', 'auth-b', 'broken', 'gone', now())$$,
                  $$values (true)$$, 'a connection breaks');
select results_eq($$select applied from private.holdings_connection_event('snaptrade', 'auth-b', 'active', null,
                                                                           now() - interval '1 minute')$$,
                  $$values (false)$$, 'an older fix does not undo a later break');
select is((select status from public.brokerage_connections where provider_connection_id = 'auth-b'), 'broken',
          '... the connection stays broken');
select * from finish();
rollback;
