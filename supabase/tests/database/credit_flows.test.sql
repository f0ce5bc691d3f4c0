-- Credit flows through the ledger: usage priced by the plan, batches, purchases from paid
-- invoices, monthly grants and provider payouts. Self-contained, like the ledger's test.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(27);

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

select has_function('public', 'credit_create_transfers', array['jsonb'], 'batch transfers');

select pg_temp.as_service();
select is((select amount from credit_grant('c1000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-00000000000a', 100)),
          100::numeric, 'the service grants credits');

-- Usage is priced by the plan --------------------------------------------------------------
select is((select amount from credit_charge_usage(gen_random_uuid(), 'c0000000-0000-4000-8000-00000000000a', 'ai_request', 2)),
          10::numeric, 'an AI request costs the plan''s credits_per_ai_request');
select is(credit_quote('c0000000-0000-4000-8000-00000000000a', 'backtest_second', 30), 3::numeric,
          'a backtest second costs credits_per_backtest_second');
select throws_ok($$select credit_charge_usage(gen_random_uuid(), 'c0000000-0000-4000-8000-00000000000a', 'mining', 1)$$,
                 '22023', null, 'an unknown usage is refused');


-- Batches: each element accepted or rejected on its own ------------------------------------
select results_eq(
  format($$select result from credit_create_transfers(%L::jsonb) order by idx$$, jsonb_build_array(
    jsonb_build_object('action', 'transfer', 'id', 'c3000000-0000-4000-8000-000000000001', 'debit_account_id', pg_temp.acct('system:grants'),
                       'credit_account_id', pg_temp.acct('bob@credits.test'), 'amount', 5, 'kind', 'grant'),
    jsonb_build_object('action', 'transfer', 'id', 'c3000000-0000-4000-8000-000000000001', 'debit_account_id', pg_temp.acct('system:grants'),
                       'credit_account_id', pg_temp.acct('bob@credits.test'), 'amount', 5, 'kind', 'grant'),
    jsonb_build_object('action', 'usage', 'id', 'c3000000-0000-4000-8000-000000000002', 'user_id', 'c0000000-0000-4000-8000-00000000000b',
                       'usage', 'ai_request', 'quantity', 2),
    jsonb_build_object('action', 'hold', 'id', 'c3000000-0000-4000-8000-000000000003', 'debit_account_id', pg_temp.acct('bob@credits.test'),
                       'credit_account_id', pg_temp.acct('system:usage'), 'amount', 4, 'kind', 'usage', 'timeout_seconds', 60),
    jsonb_build_object('action', 'post', 'id', 'c3000000-0000-4000-8000-000000000004', 'pending_id', 'c3000000-0000-4000-8000-000000000003', 'amount', 3),
    jsonb_build_object('action', 'void', 'id', 'c3000000-0000-4000-8000-000000000005', 'pending_id', 'c3000000-0000-4000-8000-000000000003'),
    jsonb_build_object('action', 'transfer', 'id', 'c3000000-0000-4000-8000-000000000006', 'debit_account_id', pg_temp.acct('bob@credits.test'),
                       'credit_account_id', pg_temp.acct('alice@credits.test'), 'amount', -1, 'kind', 'correction'))),
  $$values ('ok'), ('exists'), ('exceeds_credits'), ('ok'), ('ok'), ('pending_transfer_already_posted'), ('amount_must_be_positive')$$,
  'a batch reports each transfer''s result, in order');
select is(pg_temp.available('bob@credits.test'), 2::numeric, 'the accepted ones applied, once');


-- Flows ----------------------------------------------------------------------------------
select pg_temp.as_owner();
insert into public.invoices (id, user_id, amount, credits) values ('c4000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-00000000000b', 5, 50);
update public.invoices set status = 'paid' where id = 'c4000000-0000-4000-8000-000000000001';
update public.invoices set status = 'paid' where id = 'c4000000-0000-4000-8000-000000000001';
select is(pg_temp.available('bob@credits.test'), 52::numeric, 'a paid invoice adds its credits once');
select pg_temp.as_service();
select is((select transfers from credit_grant_monthly_all() where result = 'ok') >= 4, true,
          'monthly grants run for every current subscription');
select is((select count(*) from credit_transfers t join credit_accounts a on a.id = t.credit_account_id
            where t.kind = 'grant' and t.reference_type = 'subscription' and a.user_id in (select u.id from auth.users u
            where u.email like '%@credits.test')), 4::bigint, '... one for each of our four users on Free');
select is(pg_temp.available('bob@credits.test'), 152::numeric, 'each user gets the plan''s monthly credits');
select is((select coalesce(sum(transfers), 0) from credit_grant_monthly_all()), 0::numeric, '... once per cycle');
select is((select count(*) from credit_audit()), 0::bigint, 'the flows keep the ledger consistent');

-- Payouts: providers ask for their earnings once they reach the minimum -----------------
select pg_temp.as_owner();
select lives_ok(format($$select credit_create_transfer('c6000000-0000-4000-8000-000000000001', %L, %L, 32, 'revenue_share')$$,
                       pg_temp.acct('system:grants'), private.credit_user_account('c0000000-0000-4000-8000-00000000000c', 'provider_earnings')),
                'pia has earned 32 credits');
select pg_temp.as_user('pia@credits.test');
select is((select count(*) from credit_balances), 2::bigint, 'a provider sees their account and their earnings');
select is(credit_min_payout(), 50::numeric, 'payouts start at 50 credits');
select throws_ok($$select credit_request_payout()$$, '23514', null, 'payouts wait for the minimum');
select pg_temp.as_user('alice@credits.test');
select throws_ok($$select credit_request_payout()$$, 'P0002', 'no provider earnings to pay out', 'a user without earnings has nothing to pay out');
select throws_ok(format($$select credit_request_payout(null, null, %L)$$, 'c0000000-0000-4000-8000-00000000000c'), '42501', null,
                 'nobody requests another provider''s payout');
select pg_temp.as_owner();
select lives_ok(format($$select credit_create_transfer('c6000000-0000-4000-8000-000000000002', %L, %L, 20, 'revenue_share')$$,
                       pg_temp.acct('system:grants'), private.credit_user_account('c0000000-0000-4000-8000-00000000000c', 'provider_earnings')),
                'pia earns 20 more');
select pg_temp.as_user('pia@credits.test');
select is((select (phase, amount, kind)::text from credit_request_payout(null, 'c6000000-0000-4000-8000-000000000003')),
          '(pending,52.00000000,payout)', 'at the minimum her whole earnings are held toward the payout');
select is((select available from get_credit_balance('provider_earnings')), 0::numeric, '... and no longer available');
select pg_temp.as_service();
select is((select phase from credit_void(gen_random_uuid(), (select t.id from public.credit_transfers t
                                                               where t.reference_type = 'payout_request'
                                                                 and t.reference_id = 'c6000000-0000-4000-8000-000000000003'))),
          'void_pending',
          'a failed payout voids the hold');
select pg_temp.as_owner();
select is((select available from credit_balances where account_id = private.credit_user_account('c0000000-0000-4000-8000-00000000000c', 'provider_earnings')),
          52::numeric, '... and the earnings come back');

-- Only the service runs flows ------------------------------------------------------------
select pg_temp.as_user('alice@credits.test');
select throws_ok($$select credit_create_transfers('[]')$$, '42501', null, 'users cannot move credits in batches');
select throws_ok(format($$select credit_charge_usage(gen_random_uuid(), %L, 'ai_request', 1)$$, 'c0000000-0000-4000-8000-00000000000b'),
                 '42501', null, '... nor charge someone''s usage');
select throws_ok($$select credit_grant_monthly_all()$$, '42501', null, '... nor run the monthly grants');

select * from finish();
rollback;
