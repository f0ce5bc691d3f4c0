-- The credit ledger: every rule of transfers and holds, and who may read or move credits.
-- Self-contained: creates its users inside the transaction and switches roles as PostgREST does.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(58);

-- Cast: alice and bob (users), pia (provider), ada (admin).
insert into auth.users (id, aud, role, email, raw_app_meta_data, created_at, updated_at) values
  ('c0000000-0000-4000-8000-00000000000a', 'authenticated', 'authenticated', 'alice@credits.test', '{"role": "user"}', now(), now()),
  ('c0000000-0000-4000-8000-00000000000b', 'authenticated', 'authenticated', 'bob@credits.test', '{"role": "user"}', now(), now()),
  ('c0000000-0000-4000-8000-00000000000c', 'authenticated', 'authenticated', 'pia@credits.test', '{"role": "provider"}', now(), now()),
  ('c0000000-0000-4000-8000-00000000000d', 'authenticated', 'authenticated', 'ada@credits.test', '{"role": "admin"}', now(), now());

create temporary table acct on commit drop as
select coalesce(u.email, a.code) as who, a.id
  from public.credit_accounts a left join auth.users u on u.id = a.user_id;
grant select on acct to public;

create or replace function pg_temp.acct(p text) returns uuid language sql stable as
$$ select id from acct where who = p $$;
create or replace function pg_temp.available(p text) returns numeric language sql stable as
$$ select credits_posted - debits_posted - debits_pending from public.credit_accounts where id = pg_temp.acct(p) $$;
create temporary table people on commit drop as
select u.email, jsonb_build_object('sub', u.id, 'email', u.email, 'app_metadata', u.raw_app_meta_data) as claims
  from auth.users u where u.email like '%@credits.test';
grant select on people to public;
create or replace function pg_temp.as_user(p_email text, p_role text default 'authenticated') returns void
language sql as $$
  select set_config('role', p_role, true),
         set_config('request.jwt.claims', (p.claims || jsonb_build_object('role', p_role))::text, true)
    from people p where p.email = p_email
$$;
create or replace function pg_temp.as_service() returns void language sql as $$
  select set_config('role', 'service_role', true), set_config('request.jwt.claims', '{"role": "service_role"}', true)
$$;
create or replace function pg_temp.as_anon() returns void language sql as $$
  select set_config('role', 'anon', true), set_config('request.jwt.claims', '{"role": "anon"}', true)
$$;
create or replace function pg_temp.as_owner() returns void language sql as $$
  select set_config('role', 'none', true), set_config('request.jwt.claims', '', true)
$$;
grant execute on all functions in schema pg_temp to public;

-- The API exists -------------------------------------------------------------------------
select has_function('public', 'credit_create_transfer', 'single transfers');
select has_function('public', 'credit_hold', 'holds');
select has_function('public', 'credit_post', 'posts');
select has_function('public', 'credit_void', 'voids');
select has_view('public', 'credit_statement', 'the statement view');

-- Transfers and idempotency ----------------------------------------------------------------
select pg_temp.as_service();
select is((select amount from credit_grant('c1000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-00000000000a', 100)),
          100::numeric, 'the service grants credits');
select is((select id from credit_grant('c1000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-00000000000a', 100)),
          'c1000000-0000-4000-8000-000000000001'::uuid, 'the same id and fields returns the existing transfer');
select is(pg_temp.available('alice@credits.test'), 100::numeric, '... and applies it once');
select throws_ok($$select credit_grant('c1000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-00000000000a', 99)$$,
                 '23505', 'transfer c1000000-0000-4000-8000-000000000001 already exists with a different amount',
                 'the same id with other fields is an error');

-- Bad input: a specific error, nothing changes ----------------------------------------------
select throws_ok(format($$select credit_create_transfer(gen_random_uuid(), %L, %L, 0, 'correction')$$,
                        pg_temp.acct('alice@credits.test'), pg_temp.acct('bob@credits.test')),
                 '23514', null, 'a zero amount is refused');
select throws_like(format($$select credit_create_transfer(gen_random_uuid(), %L, %L, -5, 'correction')$$,
                          pg_temp.acct('alice@credits.test'), pg_temp.acct('bob@credits.test')),
                   '%amount must be positive%', 'a negative amount is refused with its reason');
select throws_ok(format($$select credit_create_transfer(gen_random_uuid(), 'c9999999-0000-4000-8000-000000000000', %L, 1, 'grant')$$,
                        pg_temp.acct('bob@credits.test')),
                 '23503', null, 'an unknown debit account is refused');
select throws_ok(format($$select credit_create_transfer(gen_random_uuid(), %L, 'c9999999-0000-4000-8000-000000000000', 1, 'grant')$$,
                        pg_temp.acct('system:grants')),
                 '23503', null, 'an unknown credit account is refused');
select throws_ok(format($$select credit_create_transfer(gen_random_uuid(), %L, %L, 1, 'gift')$$,
                        pg_temp.acct('system:grants'), pg_temp.acct('bob@credits.test')),
                 '23514', null, 'an unknown kind is refused');
select throws_ok(format($$select credit_create_transfer(gen_random_uuid(), %L, %L, 1, 'grant')$$,
                        pg_temp.acct('bob@credits.test'), pg_temp.acct('bob@credits.test')),
                 '23514', null, 'a transfer to the same account is refused');
select throws_like(format($$select credit_create_transfer(gen_random_uuid(), %L, %L, 100.01, 'correction')$$,
                          pg_temp.acct('alice@credits.test'), pg_temp.acct('bob@credits.test')),
                   'insufficient credits:%', 'spending past the balance is refused');
select is(pg_temp.available('alice@credits.test'), 100::numeric, '... and nothing changed');
select is(pg_temp.available('bob@credits.test'), 0::numeric, '... on either side');
select is((select count(*) from credit_transfers where debit_account_id in (pg_temp.acct('alice@credits.test'), pg_temp.acct('bob@credits.test'))
             or credit_account_id in (pg_temp.acct('alice@credits.test'), pg_temp.acct('bob@credits.test'))),
          1::bigint, 'no rejected transfer was stored');

-- Alice spends 10 (as an AI request would; pricing is tested with the credit flows).
select lives_ok(format($$select credit_create_transfer('c1000000-0000-4000-8000-000000000002', %L, %L, 10, 'usage')$$,
                       pg_temp.acct('alice@credits.test'), pg_temp.acct('system:usage')), 'a posted transfer spends credits');
select is(pg_temp.available('alice@credits.test'), 90::numeric, '... at once');

-- Holds: post (partially) or void, at most once --------------------------------------------
select is((select phase from credit_hold('c2000000-0000-4000-8000-000000000001', pg_temp.acct('alice@credits.test'),
                                         pg_temp.acct('system:usage'), 30, 'usage')),
          'pending', 'a hold is a pending transfer');
select is((select (balance, held, available)::text from credit_balances where account_id = pg_temp.acct('alice@credits.test')),
          '(90.00000000,30.00000000,60.00000000)', 'a hold reserves credits without spending them');
select throws_like(format($$select credit_create_transfer(gen_random_uuid(), %L, %L, 61, 'usage')$$,
                          pg_temp.acct('alice@credits.test'), pg_temp.acct('system:usage')),
                   'insufficient credits:%', 'held credits cannot be spent twice');
select throws_ok($$select credit_post(gen_random_uuid(), 'c2000000-0000-4000-8000-000000000001', 31)$$,
                 '23514', null, 'posting more than was held is refused');
select is((select amount from credit_post('c2000000-0000-4000-8000-000000000002', 'c2000000-0000-4000-8000-000000000001', 20)),
          20::numeric, 'a hold can be posted partially');
select is(pg_temp.available('alice@credits.test'), 70::numeric, '... which releases the rest');
select is((select amount from credit_post('c2000000-0000-4000-8000-000000000002', 'c2000000-0000-4000-8000-000000000001', 20)),
          20::numeric, 'repeating the post returns it');
select throws_like($$select credit_post(gen_random_uuid(), 'c2000000-0000-4000-8000-000000000001')$$,
                   '%already posted', 'a hold posts once');
select throws_ok($$select credit_void(gen_random_uuid(), 'c2000000-0000-4000-8000-000000000001')$$,
                 '23505', null, 'a posted hold cannot be voided');
select lives_ok(format($$select credit_hold('c2000000-0000-4000-8000-000000000003', %L, %L, 15, 'usage')$$,
                       pg_temp.acct('alice@credits.test'), pg_temp.acct('system:usage')), 'another hold');
select is((select phase from credit_void(gen_random_uuid(), 'c2000000-0000-4000-8000-000000000003')),
          'void_pending', 'a hold can be voided');
select throws_like($$select credit_post(gen_random_uuid(), 'c2000000-0000-4000-8000-000000000003')$$,
                   '%already voided', 'a voided hold cannot be posted');
select is(pg_temp.available('alice@credits.test'), 70::numeric, 'a void costs nothing');
select throws_ok($$select credit_post(gen_random_uuid(), 'c1000000-0000-4000-8000-000000000001')$$,
                 '23514', null, 'only holds can be posted');
select throws_ok($$select credit_void(gen_random_uuid(), 'c9999999-0000-4000-8000-000000000000')$$,
                 '23503', null, 'an unknown hold cannot be voided');

-- Holds expire -----------------------------------------------------------------------------
select lives_ok(format($$select credit_hold('c2000000-0000-4000-8000-000000000004', %L, %L, 5, 'usage', interval '-1 second')$$,
                       pg_temp.acct('alice@credits.test'), pg_temp.acct('system:usage')), 'a hold already past its timeout');
select throws_like($$select credit_post(gen_random_uuid(), 'c2000000-0000-4000-8000-000000000004')$$,
                   '%expired%', 'an expired hold cannot be posted');
select is(credit_expire_holds(), 1, 'the expiry voids it');
select is(credit_expire_holds(), 0, '... once');
select is(pg_temp.available('alice@credits.test'), 70::numeric, '... and the credits are available again');

select is((select count(*) from credit_audit()), 0::bigint, 'the ledger is consistent: sums to zero, balances equal transfers');
create temporary table expected on commit drop as select count(*) as accounts from public.credit_accounts;
grant select on expected to public;

-- Transfers are immutable ----------------------------------------------------------------
select pg_temp.as_owner();
select throws_ok($$update credit_transfers set amount = 1$$, '23001', null, 'transfers cannot be changed');
select throws_ok($$delete from credit_transfers$$, '23001', null, 'transfers cannot be deleted');

-- Who can read and move credits ------------------------------------------------------------
select pg_temp.as_anon();
select throws_ok($$select * from credit_accounts$$, '42501', null, 'anon reads no accounts');
select throws_ok($$select * from get_credit_balance()$$, '42501', null, 'anon has no balance RPC');

select pg_temp.as_user('alice@credits.test');
select is((select count(*) from credit_balances), 1::bigint, 'a user sees their own balance only');
select is((select available from get_credit_balance()), 70::numeric, 'get_credit_balance returns it');
select is((select count(*) from credit_statement where user_id <> 'c0000000-0000-4000-8000-00000000000a'), 0::bigint,
          'a user''s statement holds only their own side');
select is((select sum(amount) from get_credit_statement(500)), 70::numeric, 'the statement adds up to the balance');
select is((select count(*) from get_credit_statement(2)), 2::bigint, 'get_credit_statement pages');
select throws_ok(format($$select credit_create_transfer(gen_random_uuid(), %L, %L, 1, 'correction')$$,
                        pg_temp.acct('bob@credits.test'), pg_temp.acct('alice@credits.test')),
                 '42501', null, 'users cannot move credits');
select throws_ok($$select credit_grant(gen_random_uuid(), 'c0000000-0000-4000-8000-00000000000a', 1000)$$,
                 '42501', null, '... nor grant themselves any');
select throws_ok($$update credit_accounts set credits_posted = 1e6$$, '42501', null, '... nor edit balances');
select throws_ok(format($$select credit_correct(gen_random_uuid(), %L, %L, 1, 'mine')$$,
                        pg_temp.acct('bob@credits.test'), pg_temp.acct('alice@credits.test')),
                 '42501', null, '... nor correct the ledger');

select pg_temp.as_user('bob@credits.test');
select is((select count(*) from credit_transfers where debit_account_id = pg_temp.acct('alice@credits.test')
             or credit_account_id = pg_temp.acct('alice@credits.test')), 0::bigint, 'bob cannot see alice''s transfers');

select pg_temp.as_user('ada@credits.test', 'tradefleet_admin');
select is((select count(*) from credit_balances), (select accounts from expected), 'an admin sees every account');
select is((select amount from credit_correct(gen_random_uuid(), pg_temp.acct('alice@credits.test'),
                                             pg_temp.acct('bob@credits.test'), 2, 'refund of a double charge')),
          2::numeric, 'an admin corrects with a new transfer');

select * from finish();
rollback;
