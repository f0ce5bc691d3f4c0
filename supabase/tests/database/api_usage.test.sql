-- API usage metering and the limits beside the public API: calls recorded and rolled up
-- per minute and day (each counted once), seen by the key's owner only, billed once per
-- key and closed day when the plan prices calls; a per-key bucket that gives back what
-- it took when the user's refuses; PostgREST's pre-request limit on expensive writes; and
-- the per-source webhook limit.
begin;

-- Cast: 1801 ada (two keys, on a plan pricing calls), 1802 ben (one key, free calls).
select tests.create_user(1801, 'ada@api-usage.test');
select tests.create_user(1802, 'ben@api-usage.test');
insert into public.plans (id, name, price_monthly, max_bots, max_strategies, api_access, api_credits_per_1000_calls,
                          backtest_minutes_per_month, features, sort_order)
values (tests.id('usage-plan', 1), 'Usage Priced', 5, 3, 3, true, 2, 100,
        '{"api_requests_per_minute": 3, "api_key_requests_per_minute": 2, "write_requests_per_minute": {"reviews": 2}}', -30),
       (tests.id('usage-plan', 2), 'Usage Free', 5, 3, 3, true, null, 100, '{"api_requests_per_minute": 100}', -29);
update public.subscriptions set plan_id = tests.id('usage-plan', 1), status = 'active', expires_at = now() + interval '1 month'
 where user_id = tests.id('user', 1801);
update public.subscriptions set plan_id = tests.id('usage-plan', 2), status = 'active', expires_at = now() + interval '1 month'
 where user_id = tests.id('user', 1802);
select public.credit_grant(tests.id('usage-grant', 1), tests.id('user', 1801), 10, 'test', 'api-usage', '{}');

create temp table made (who text, n int, id uuid, key text) on commit drop;
grant all on made to public;
select tests.authenticate_as('ada@api-usage.test');
insert into made select 'ada', 1, k.id, k.key from public.create_api_key('one', '{bots:read,portfolio:read}') k;
insert into made select 'ada', 2, k.id, k.key from public.create_api_key('two', '{backtests:read,backtests:write}') k;
select tests.authenticate_as('ben@api-usage.test');
insert into made select 'ben', 1, k.id, k.key from public.create_api_key('one', '{bots:read}') k;
select tests.clear_authentication();

select plan(32);

-- Recording and rolling up.
select is(public.api_record_calls(jsonb_build_array(
  jsonb_build_object('key_id', (select id from made where who = 'ada' and n = 1), 'user_id', tests.id('user', 1801),
                     'endpoint', 'GET /v1/bots', 'status', 200, 'latency_ms', 4, 'at', '2026-03-01T10:00:05Z'),
  jsonb_build_object('key_id', (select id from made where who = 'ada' and n = 1), 'user_id', tests.id('user', 1801),
                     'endpoint', 'GET /v1/bots', 'status', 200, 'latency_ms', 8, 'at', '2026-03-01T10:00:50Z'),
  jsonb_build_object('key_id', (select id from made where who = 'ada' and n = 1), 'user_id', tests.id('user', 1801),
                     'endpoint', 'GET /v1/bots', 'status', 429, 'latency_ms', 1, 'at', '2026-03-01T10:01:00Z'),
  jsonb_build_object('key_id', (select id from made where who = 'ada' and n = 2), 'user_id', tests.id('user', 1801),
                     'endpoint', 'GET /v1/backtests', 'status', 200, 'latency_ms', 3, 'at', '2026-03-01T23:59:59Z'),
  jsonb_build_object('key_id', (select id from made where who = 'ben' and n = 1), 'user_id', tests.id('user', 1802),
                     'endpoint', 'GET /v1/bots', 'status', 200, 'latency_ms', 2, 'at', '2026-03-01T12:00:00Z'),
  jsonb_build_object('key_id', (select id from made where who = 'ben' and n = 1), 'user_id', tests.id('user', 1802),
                     'endpoint', 'GET /v1/bots', 'status', 999, 'latency_ms', 2))),
  5, 'calls are recorded, and one with an impossible status is not');
select throws_ok($$select public.api_record_calls('{"not": "an array"}')$$, '22023', null, 'calls must be an array');
-- Records of earlier calls ride along in a request's api_authorize, whatever it answers.
select is((public.api_authorize('not a key', 'bots:read', null, jsonb_build_array(
             jsonb_build_object('key_id', (select id from made where who = 'ben' and n = 1), 'user_id', tests.id('user', 1802),
                                'endpoint', 'GET /v1/bots', 'status', 200, 'latency_ms', 2, 'at', '2026-03-01T12:00:01Z'),
             jsonb_build_object('key_id', (select id from made where who = 'ben' and n = 1), 'user_id', tests.id('user', 1802),
                                'endpoint', 'GET /v1/bots', 'status', 999, 'latency_ms', 2)))) ->> 'status',
          '401', 'a refused request still carries the earlier calls'' records');
select throws_ok($$select public.api_authorize('not a key', 'bots:read', null, '{"not": "an array"}')$$, '22023', null,
                 'the records an api_authorize carries must be an array');
select is((select count(*)::int from private.api_calls), 6, 'the five recorded and the one carried, not the impossible one');
select is((public.api_usage_rollup() ->> 'calls')::int, 6, 'the rollup moves every recorded call');
select is((select count(*)::int from private.api_calls), 0, 'and leaves none behind');
select is((public.api_usage_rollup() ->> 'calls')::int, 0, 'a second rollup finds nothing new: each call counts once');
select is((select array_agg(row(m.minute, m.status, m.calls, m.latency_ms_sum, m.latency_ms_max)::text order by m.minute, m.status)
             from public.api_usage_minutes m where m.key_id = (select id from made where who = 'ada' and n = 1)),
          array['("2026-03-01 10:00:00+00",200,2,12,8)', '("2026-03-01 10:01:00+00",429,1,1,1)'],
          'per minute: calls, total and worst latency by endpoint and status');
select is((select row(d.calls, d.errors)::text from public.api_usage_days d
            where d.key_id = (select id from made where who = 'ada' and n = 1) and d.day = '2026-03-01'),
          '(3,1)', 'per day: calls and errors');
select is(public.api_record_calls(jsonb_build_array(jsonb_build_object(
            'key_id', (select id from made where who = 'ada' and n = 1), 'user_id', tests.id('user', 1801),
            'endpoint', 'GET /v1/bots', 'status', 200, 'latency_ms', 20, 'at', '2026-03-01T10:00:30Z'))), 1, 'a late call');
select is((public.api_usage_rollup() ->> 'calls')::int, 1, 'is rolled up later');
select is((select calls from public.api_usage_minutes where key_id = (select id from made where who = 'ada' and n = 1)
             and minute = '2026-03-01 10:00:00+00' and status = 200), 3, 'into the same minute, added');

-- Billing: the closed day was charged once per key; ben's free plan charges nothing.
select is((select array_agg(row(d.calls, d.billed_calls, d.credits_charged)::text order by d.key_id = (select id from made where who = 'ada' and n = 1) desc)
             from public.api_usage_days d where d.user_id = tests.id('user', 1801) and d.day = '2026-03-01'),
          array['(4,3,0.00600000)', '(1,1,0.00200000)'],
          'each key''s closed day is billed at 2 credits per 1,000 calls (a call recorded after the bill is counted, not billed)');
select is((select count(*)::int from public.credit_transfers t where t.reference_type = 'api_usage'
             and t.reference_id like (select id from made where who = 'ada' and n = 1)::text || ':%'), 1,
          'one ledger transfer per key and day');
select is((select credits_charged from public.api_usage_days where user_id = tests.id('user', 1802)), 0.00000000::numeric,
          'a plan without a price bills nothing');
select is((select (a.credits_posted - a.debits_posted)::text from public.credit_accounts a
            where a.user_id = tests.id('user', 1801) and a.kind = 'user'), '9.99200000', 'ada paid 0.008 credits');
update public.api_usage_days set billed_at = null where user_id = tests.id('user', 1801);
select public.api_usage_rollup();
select is((select count(*)::int from public.credit_transfers t where t.reference_type = 'api_usage'
             and t.reference_id like '%:2026-03-01' and t.debit_account_id = (select id from public.credit_accounts
               where user_id = tests.id('user', 1801) and kind = 'user')), 2,
          'billing a day again finds its transfers: the ledger''s idempotency key holds');
select tests.clear_authentication();

-- Who sees usage.
select is(tests.try_as('ada@api-usage.test', $$select key_prefix from api_usage_per_minute$$), 'rows=3', 'ada sees her keys'' minutes');
select is(tests.try_as('ben@api-usage.test', $$select 1 from api_usage_per_minute where user_id <> auth.uid()$$), 'rows=0',
          'ben sees nothing of ada''s');
select is(tests.try_as('anon', $$select 1 from api_usage_per_day$$), 'denied', 'anon sees no usage');
select is(tests.try_as('ada@api-usage.test', $$select public.api_usage_rollup()$$), 'denied', 'users do not roll up');
select is(tests.try_as('ada@api-usage.test', $$select public.api_record_calls('[]')$$), 'denied', 'users do not record calls');

-- Per-key buckets: ada's plan allows 3 a minute per user and 2 per key.
create temp table answers (n serial, r jsonb) on commit drop;
insert into answers (r) select public.api_authorize((select key from made where who = 'ada' and n = 1), 'bots:read');
insert into answers (r) select public.api_authorize((select key from made where who = 'ada' and n = 1), 'bots:read');
insert into answers (r) select public.api_authorize((select key from made where who = 'ada' and n = 1), 'bots:read');
insert into answers (r) select public.api_authorize((select key from made where who = 'ada' and n = 2), 'backtests:read');
insert into answers (r) select public.api_authorize((select key from made where who = 'ada' and n = 2), 'backtests:read');
select is((select array_agg((r ->> 'status') || '/' || (r ->> 'limit') order by n) from answers),
          array['200/2', '200/2', '429/2', '200/3', '429/3'],
          'a key stops at its own limit; the user''s other key goes on until the user''s limit');
select alike((select r ->> 'error' from answers where n = 3), '%per key (api_key_requests_per_minute)%', 'the 429 names the per-key limit');
select ok((select tat <= clock_timestamp() + interval '30 seconds' + interval '1 second' from private.rate_limit_buckets
            where bucket = 'api:key:' || (select id from made where who = 'ada' and n = 2)),
          'the key whose request the user''s bucket refused got its token back');
select tests.clear_authentication();

-- PostgREST's pre-request hook: cheap for reads and other paths, a 429 past the plan's limit.
select is(tests.try_as('ada@api-usage.test', $$select 1 from (select set_config('request.method', 'GET', true), set_config('request.path', '/reviews', true)) s, generate_series(1, 5) g, lateral (select public.db_pre_request(), g) r$$),
          'rows=5', 'reads are not limited');
select is(tests.try_as('ada@api-usage.test', $$select 1 from (select set_config('request.method', 'POST', true), set_config('request.path', '/reviews', true)) s, generate_series(1, 3) g, lateral (select public.db_pre_request(), g) r$$),
          'error=PGRST', 'a third review a minute is refused on a plan allowing 2');
select throws_like($$select tests.authenticate_as('ben@api-usage.test');
                     select set_config('request.method', 'POST', true), set_config('request.path', '/backtest_runs', true);
                     select public.db_pre_request() from generate_series(1, 11)$$,
  '%at most 10 requests a minute to backtest_runs (write_requests_per_minute.backtest_runs)%',
  'the default backtest limit is 10 a minute, and the error names it');
select tests.clear_authentication();

-- The minute job drops drained buckets and keeps busy ones.
insert into private.rate_limit_buckets (bucket, tat)
values ('test:drained', clock_timestamp() - interval '1 second'), ('test:busy', clock_timestamp() + interval '1 minute');
select public.api_usage_rollup();
select ok(not exists (select 1 from private.rate_limit_buckets where bucket = 'test:drained'), 'a drained bucket is dropped');
select ok(exists (select 1 from private.rate_limit_buckets where bucket = 'test:busy'), 'a busy bucket is kept');

-- Webhook sources.
select is((select array_agg(public.webhook_rate_take('stripe:198.51.100.1', 2) ->> 'allowed' order by g) from generate_series(1, 3) g),
          array['true', 'true', 'false'], 'a webhook source past its limit is refused');
select tests.clear_authentication();

select * from finish();
rollback;
