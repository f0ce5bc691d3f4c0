-- Abuse: data requests' monthly quota against retries. A retry names the idempotency key of a
-- request already made: validate_data_request lets it past the quota only for
-- data_requests_idempotency_key_unique to refuse it, so no key, reused or new, ever adds a
-- request over the plan's data_requests_per_month (the api function answers a retry with
-- the first request).
begin;
select plan(7);

-- Cast: 1801 ann and 1802 ben, on the Free plan (5 data requests a month).
select tests.create_user(1801, 'ann@abuse-data.test');
select tests.create_user(1802, 'ben@abuse-data.test');

select tests.authenticate_as('ann@abuse-data.test');
insert into public.data_requests (trading_pair, timeframe, start_date, idempotency_key)
select 'ETH/BTC', '1h', timestamptz '2024-01-01' + i * interval '1 day', 'ann-' || i from generate_series(1, 5) i;

select throws_ok($$insert into public.data_requests (trading_pair, timeframe, start_date, idempotency_key)
                   values ('ETH/BTC', '1h', '2024-01-05', 'ann-5')$$,
  '23505', null, 'a retry at the quota is refused as a duplicate, not let through');
select throws_like($$insert into public.data_requests (trading_pair, timeframe, start_date, idempotency_key)
                     values ('ETH/BTC', '1h', '2024-02-01', 'ann-6')$$,
  '%the Free plan allows 5 data downloads a month (data_requests_per_month)%',
  'a new key over the quota is refused naming the limit');
select throws_like($$insert into public.data_requests (trading_pair, timeframe, start_date)
                     values ('ETH/BTC', '1h', '2024-02-01')$$,
  '%data_requests_per_month%', 'no key over the quota is refused naming the limit');
select throws_ok($$insert into public.data_requests (trading_pair, timeframe, start_date, idempotency_key)
                   values ('ETH/BTC', '1h', '2024-02-01', repeat('k', 201))$$,
  '23514', null, 'a key longer than 200 characters is refused');
select tests.clear_authentication();
select is((select count(*)::int from public.data_requests where user_id = tests.id('user', 1801)), 5,
          'ann has her five requests, no more');
select is((select count(*)::int from public.jobs j join public.data_requests d on j.payload ->> 'request_id' = d.id::text
            where d.user_id = tests.id('user', 1801)), 5, 'and five download jobs');

select tests.authenticate_as('ben@abuse-data.test');
select lives_ok($$insert into public.data_requests (trading_pair, timeframe, start_date, idempotency_key)
                  values ('ETH/BTC', '1h', '2024-01-05', 'ann-5')$$,
  'keys are per user: ben may use the key ann used');
select tests.clear_authentication();

select * from finish();
rollback;
