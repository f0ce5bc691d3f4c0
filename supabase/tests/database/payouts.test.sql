-- Refund clawbacks and provider payouts: a refund takes credits back from the user, then
-- from the strategy payments made with them, and records what nobody can cover; a payout
-- holds, settles once whatever the order of outcomes, and the ledger stays whole.
begin;
select plan(31);

select tests.create_user(1701, 'sam@payouts.test');
select tests.create_user(1702, 'pia@payouts.test', 'provider');
select tests.create_user(1703, 'dee@payouts.test', 'admin');
create or replace function pg_temp.available(p_user uuid, p_kind text) returns numeric language sql as
  $$ select coalesce((select credits_posted - debits_posted - debits_pending from public.credit_accounts
                      where user_id = p_user and kind = p_kind), 0) $$;

-- A strategy payment made with bought credits, then the refund -------------------------------------
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('payouts-strategy', 1), tests.id('user', 1702), 'Pia Trend', 'marketplace', true, true, 50);
insert into public.invoices (id, user_id, provider, provider_invoice_id, amount, credits)
values (tests.id('payouts-invoice', 1), tests.id('user', 1701), 'stripe', 'cs_payouts_1', 60, 60);
select is(public.billing_apply_invoice_event(tests.id('payouts-invoice', 1), 'paid', 60), 'applied', 'the invoice is paid');
insert into public.strategy_subscriptions (id, strategy_id, subscriber_id, price)
values (tests.id('payouts-sub', 1), tests.id('payouts-strategy', 1), tests.id('user', 1701), 50);
select lives_ok($$select public.credit_pay_strategy_subscription(tests.id('payouts-pay', 1), tests.id('payouts-sub', 1))$$,
                'the subscriber pays the strategy with the bought credits');
select is(pg_temp.available(tests.id('user', 1702), 'provider_earnings'), 40::numeric, 'the provider earned 80%');
select is(public.billing_apply_chargeback(tests.id('payouts-invoice', 1), 'dp_payouts_1'), 'applied',
          'a lost dispute reverses the invoice');
select is((select status from public.invoices where id = tests.id('payouts-invoice', 1)), 'refunded', 'the invoice is refunded');
select is(pg_temp.available(tests.id('user', 1701), 'user'), 0::numeric, 'the user''s 10 left are taken back');
select is(pg_temp.available(tests.id('user', 1702), 'provider_earnings'), 0::numeric, 'the provider''s share is clawed back');
select is((select status from public.strategy_subscriptions where id = tests.id('payouts-sub', 1)), 'cancelled',
          'the strategy subscription it paid for ends');
select is((select count(*)::int from public.credit_exposures where invoice_id = tests.id('payouts-invoice', 1)), 0,
          'everything was recovered: no exposure');
select is(public.billing_apply_chargeback(tests.id('payouts-invoice', 1), 'dp_payouts_1'), 'unchanged', 'a replay changes nothing');
select is(public.billing_apply_chargeback(gen_random_uuid(), 'dp_x'), 'not_found', 'an unknown invoice is not found');
select throws_ok($$select public.billing_apply_chargeback(tests.id('payouts-invoice', 1), '')$$, '22023', null,
                 'a chargeback names its dispute');
select is((select count(*)::int from public.credit_audit()), 0, 'the ledger is whole after the chargeback');

-- Two refunded invoices never claim the same strategy payment twice -----------------------------
insert into public.invoices (id, user_id, provider, provider_invoice_id, amount, credits)
values (tests.id('payouts-invoice', 2), tests.id('user', 1703), 'stripe', 'cs_payouts_2', 50, 50),
       (tests.id('payouts-invoice', 3), tests.id('user', 1703), 'stripe', 'cs_payouts_3', 50, 50);
select public.billing_apply_invoice_event(tests.id('payouts-invoice', 2), 'paid', 50);
select public.billing_apply_invoice_event(tests.id('payouts-invoice', 3), 'paid', 50);
insert into public.strategy_subscriptions (id, strategy_id, subscriber_id, price)
values (tests.id('payouts-sub', 3), tests.id('payouts-strategy', 1), tests.id('user', 1703), 100);
select public.credit_pay_strategy_subscription(tests.id('payouts-pay', 3), tests.id('payouts-sub', 3));
-- The platform has revenue of other payments: it could give back more than its fee.
select public.credit_create_transfer(tests.id('payouts-revenue', 1), private.credit_system_account('system:grants'),
                                     private.credit_system_account('system:platform_revenue'), 100, 'correction');
select public.billing_apply_invoice_event(tests.id('payouts-invoice', 2), 'refunded');
select public.billing_apply_invoice_event(tests.id('payouts-invoice', 3), 'refunded');
select is((select sum(t.amount) from public.credit_transfers t
            where t.kind = 'refund' and t.metadata ->> 'share' = 'provider'
              and t.reference_id in (tests.id('payouts-invoice', 2)::text, tests.id('payouts-invoice', 3)::text)),
          80::numeric, 'the provider gives back its 80 once, however many invoices paid for the payment');
select is(pg_temp.available(tests.id('user', 1702), 'provider_earnings'), 0::numeric, 'and keeps nothing of it');
select is((select sum(t.amount) from public.credit_transfers t
            where t.kind = 'refund' and t.metadata ->> 'share' = 'platform'
              and t.reference_id in (tests.id('payouts-invoice', 2)::text, tests.id('payouts-invoice', 3)::text)),
          20::numeric, 'the platform gives back its fee once');
select is((select count(*)::int from public.credit_exposures
            where invoice_id in (tests.id('payouts-invoice', 2), tests.id('payouts-invoice', 3))),
          0, 'everything was recovered: no exposure is invented');

-- Payouts ---------------------------------------------------------------------------------------
select public.credit_grant(tests.id('payouts-grant', 1), tests.id('user', 1701), 200, 'test', 'payouts', '{}');
select public.credit_pay_strategy_subscription(tests.id('payouts-pay', 2), tests.id('payouts-sub', 1), 125);
select is(pg_temp.available(tests.id('user', 1702), 'provider_earnings'), 100::numeric, 'the provider earned 100');
select is(tests.try_as('pia@payouts.test', $$select public.request_payout(60)$$), 'error=23514',
          'no payout without a ready destination');
select is(pg_temp.available(tests.id('user', 1702), 'provider_earnings'), 100::numeric, 'and nothing is held');
insert into public.payout_destinations (user_id, provider, status, currency, stripe_account_id)
values (tests.id('user', 1702), 'stripe', 'ready', 'USD', 'acct_payouts');
select tests.authenticate_as('pia@payouts.test');
create temp table p1 on commit drop as select * from public.request_payout(60, tests.id('payouts-key', 1));
select tests.clear_authentication();
select is((select status from p1), 'approved', 'a payout up to the limit is approved at once');
select is(pg_temp.available(tests.id('user', 1702), 'provider_earnings'), 40::numeric, 'its amount is held');
select is(public.payout_settle((select id from p1), 'paid', 'tr_1'), 'applied', 'the transfer succeeded');
select is(public.payout_settle((select id from p1), 'paid', 'tr_1'), 'unchanged', 'a repeated success changes nothing');
select is(public.payout_settle((select id from p1), 'failed', 'tr_1'), 'unchanged', 'a failure after the success changes nothing');
select is((select balance from public.credit_accounts where user_id = tests.id('user', 1702) and kind = 'provider_earnings'),
          40::numeric, 'the hold is posted once');
select is(public.payout_settle((select id from p1), 'reversed', 'tr_1'), 'applied', 'a reversal after the payment applies');
select is(pg_temp.available(tests.id('user', 1702), 'provider_earnings'), 100::numeric, 'and gives the amount back');
select throws_ok($$select public.payout_settle(gen_random_uuid(), 'lost')$$, '22023', null, 'an unknown outcome is refused');
select is(tests.try_as('pia@payouts.test', $$select public.payout_settle(gen_random_uuid(), 'paid')$$), 'denied',
          'providers cannot settle payouts');
select is((select count(*)::int from public.credit_audit()), 0, 'the ledger is whole after the payouts');

select * from finish();
rollback;
