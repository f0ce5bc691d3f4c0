-- Billing: sign-up puts every user on the Free plan with a credit account; the payment
-- inbox queues work once per event; the invoice state machine applies each effect once
-- whatever the delivery count or order; expiry, plan changes and limits.
begin;
select plan(44);

select tests.create_user(1, 'alice@bill.test');
select tests.create_user(2, 'bob@bill.test');
select tests.create_user(4, 'dana@bill.test', 'admin');

-- Sign-up ----------------------------------------------------------------------------------------------
select is((select count(*)::int from public.profiles where id = tests.id('user', 1)), 1, 'sign-up creates a profile');
select is((select balance from public.credit_accounts where user_id = tests.id('user', 1) and kind = 'user'), 0::numeric,
          'sign-up creates an empty credit account');
select is((select p.name from public.subscriptions s join public.plans p on p.id = s.plan_id where s.user_id = tests.id('user', 1)),
          'Free', 'sign-up puts the user on the Free plan');
select is((select p.name from private.current_plan(tests.id('user', 2)) p), 'Free', 'the current plan of a new user is Free');
select is(tests.try_as('alice@bill.test', $$update public.subscriptions set auto_renew = false$$), 'rows=1',
          'users may turn auto-renew off');

insert into public.plans (id, name, price_monthly, max_bots, max_strategies, backtest_minutes_per_month, features)
values (tests.id('plan', 1), 'BillPro', 29, 10, 10, 100, '{"monthly_credits": 2000, "credits_per_trade": 0.5}'),
       (tests.id('plan', 2), 'BillTiny', 5, 1, 1, 10, '{}');
create or replace function pg_temp.balance(p_user uuid) returns numeric language sql as
  $$ select balance from public.credit_accounts where user_id = p_user and kind = 'user' $$;

-- The inbox ---------------------------------------------------------------------------------------
insert into public.webhook_events (provider, event_id, event_type, payload)
values ('stripe', 'evt_1', 'invoice.paid', '{}'), ('paystack', 'charge.success:9', 'charge.success', '{}'),
       ('tripay', 'T1:PAID', 'payment_status.PAID', '{}');
insert into public.webhook_events (provider, event_id, event_type, payload)
values ('stripe', 'evt_1', 'invoice.paid', '{}');
select is((select count(*)::int from public.jobs where kind = 'billing.webhook'), 3,
          'each stored payment event queues one billing.webhook job; a duplicate queues none');
select is(tests.try_as('alice@bill.test', 'select * from public.webhook_events'), 'rows=0', 'users read no webhook events');
select is(tests.try_as('dana@bill.test', 'select * from public.webhook_events'), 'rows=3', 'admins read them');
select is(tests.try_as('alice@bill.test', $$insert into public.webhook_events (provider, event_id, event_type, payload)
          values ('stripe', 'evt_x', 'x', '{}')$$), 'denied', 'users cannot forge webhook events');
-- An event waiting for its predecessor is queued again when woken.
update public.webhook_events set status = 'waiting', waiting_for = '{in_1}', attempts = 1 where event_id = 'evt_1';
select is((select count(*)::int from public.jobs where kind = 'billing.webhook'), 3, 'waiting queues nothing');
update public.webhook_events set status = 'received' where event_id = 'evt_1';
select is((select count(*)::int from public.jobs where kind = 'billing.webhook'), 4,
          'a woken payment event queues its billing.webhook job again');
select throws_ok($$update public.webhook_events set status = 'waiting', waiting_for = '{}' where event_id = 'T1:PAID'$$,
                 '23514', null, 'a waiting event names what it waits for');

-- Paying an invoice ------------------------------------------------------------------------------------
insert into public.invoices (id, user_id, plan_id, provider, provider_invoice_id, amount, credits)
values (tests.id('invoice', 1), tests.id('user', 1), tests.id('plan', 1), 'stripe', 'in_1', 29, 500);
select is(tests.try_as('alice@bill.test', format($$select public.billing_apply_invoice_event(%L, 'paid')$$, tests.id('invoice', 1))),
          'denied', 'users cannot mark their invoice paid');
select is(tests.try_as('alice@bill.test', $$update public.invoices set status = 'paid'$$), 'denied',
          'nor update its status');
select is(public.billing_apply_invoice_event(tests.id('invoice', 1), 'paid', 28.99), 'amount_mismatch',
          'a payment short of the amount is not accepted');
select is((select status from public.invoices where id = tests.id('invoice', 1)), 'pending', '... the invoice stays pending');
select is(public.billing_apply_invoice_event(tests.id('invoice', 1), 'paid', 29), 'applied', 'the payment applies');
select is((select status from public.invoices where id = tests.id('invoice', 1)), 'paid', 'the invoice is paid');
select is((select p.name from public.subscriptions s join public.plans p on p.id = s.plan_id
            where s.user_id = tests.id('user', 1) and s.status = 'active'), 'BillPro', 'alice is on the plan she paid for');
select is(pg_temp.balance(tests.id('user', 1)), 2500::numeric, 'she got the 500 credits bought and the plan''s 2000');
select is(public.billing_apply_invoice_event(tests.id('invoice', 1), 'paid', 29), 'unchanged', 'a replayed payment is a no-op');
select is(public.billing_apply_invoice_event(tests.id('invoice', 1), 'failed'), 'unchanged',
          'a late failure after the payment is a no-op');
select is(pg_temp.balance(tests.id('user', 1)), 2500::numeric, '... and credits nothing twice');
select is((select count(*)::int from public.subscriptions where user_id = tests.id('user', 1) and status = 'active'), 1,
          'one current subscription');

-- Renewal: a second invoice for the same plan extends it by a month.
insert into public.invoices (id, user_id, plan_id, provider, provider_invoice_id, amount)
values (tests.id('invoice', 2), tests.id('user', 1), tests.id('plan', 1), 'stripe', 'in_2', 29);
select public.billing_apply_invoice_event(tests.id('invoice', 2), 'paid', 29);
select ok((select expires_at > now() + interval '55 days' from public.subscriptions
            where user_id = tests.id('user', 1) and status = 'active'), 'paying again renews for another month');

-- Refund of a paid invoice: the credits go back, the plan it bought ends.
select is(public.billing_apply_invoice_event(tests.id('invoice', 1), 'refunded'), 'applied', 'the refund applies');
select is(pg_temp.balance(tests.id('user', 1)), 2000::numeric, 'the 500 bought credits are taken back');
select is(public.billing_apply_invoice_event(tests.id('invoice', 1), 'paid', 29), 'unchanged', 'a refunded invoice stays refunded');

-- Out of order: a refund before its payment is not applied yet (its event waits for the
-- payment); once the payment is applied, the refund takes back what it bought.
insert into public.invoices (id, user_id, provider, provider_invoice_id, amount, credits)
values (tests.id('invoice', 3), tests.id('user', 2), 'paystack', 'ref_3', 10, 100);
select is(public.billing_apply_invoice_event(tests.id('invoice', 3), 'refunded'), 'not_paid_yet',
          'an early refund waits for the payment');
select is(public.billing_apply_invoice_event(tests.id('invoice', 3), 'paid', 10), 'applied', 'the payment applies');
select is(public.billing_apply_invoice_event(tests.id('invoice', 3), 'refunded'), 'applied', 'then the refund');
select is(pg_temp.balance(tests.id('user', 2)), 0::numeric, 'bob keeps none of the refunded credits');

-- Partial refunds: part of the credits, in proportion, each refund reference once; a
-- refund reaching the amount is the full refund of what is left.
insert into public.invoices (id, user_id, provider, provider_invoice_id, amount, credits)
values (tests.id('invoice', 6), tests.id('user', 2), 'paystack', 'ref_6', 3, 10);
select public.billing_apply_invoice_event(tests.id('invoice', 6), 'paid', 3);
select is(public.billing_apply_refund(tests.id('invoice', 6), 'rf_1', 1, false), 'applied', 'a partial refund applies');
select is(public.billing_apply_refund(tests.id('invoice', 6), 'rf_1', 1, false), 'unchanged', 'the same refund counts once');
select is(pg_temp.balance(tests.id('user', 2)), 6.66666667::numeric, 'a third of the credits is taken back');
select is(public.billing_apply_refund(tests.id('invoice', 6), 'rf_2', 5, false), 'applied', 'a refund past the amount');
select is((select status || ' ' || credits_refunded from public.invoices where id = tests.id('invoice', 6)),
          'refunded 10.00000000', 'is the full refund');
select throws_ok($$select public.billing_apply_refund(tests.id('invoice', 6), null, 1, false)$$, '22023',
                 'a single refund names its reference (at most 200 characters)', 'a refund without its reference is refused');

-- Plan change with limits: moving to a 1-bot plan pauses the other running bots.
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, status)
select tests.id('bot', n), tests.id('user', 1), 'b' || n, 'binance', 'BTC/USDT', '1h', 'rsi', 100, 10, 'running'
  from generate_series(1, 3) n;
insert into public.invoices (id, user_id, plan_id, provider, provider_invoice_id, amount)
values (tests.id('invoice', 4), tests.id('user', 1), tests.id('plan', 2), 'tripay', 'T4', 5);
select public.billing_apply_invoice_event(tests.id('invoice', 4), 'paid', 5);
select is((select p.name from public.subscriptions s join public.plans p on p.id = s.plan_id
            where s.user_id = tests.id('user', 1) and s.status = 'active'), 'BillTiny', 'the plan changed');
select is((select count(*)::int from public.bots where user_id = tests.id('user', 1) and status = 'running'), 1,
          'only the plan''s one bot keeps running');

-- The scheduler's sweep.
insert into public.invoices (id, user_id, provider, provider_invoice_id, amount, expired_at)
values (tests.id('invoice', 5), tests.id('user', 2), 'tripay', 'T5', 10, now() - interval '1 minute');
update public.subscriptions set expires_at = now() - interval '1 second', started_at = now() - interval '1 month'
 where user_id = tests.id('user', 1) and status = 'active';
select results_eq('select * from public.billing_expire_due()', 'values (1, 1)',
                  'the sweep expires the overdue invoice and the lapsed subscription');
select is((select p.name from private.current_plan(tests.id('user', 1)) p), 'Free', 'alice is back on Free');
select is(tests.try_as('bob@bill.test', 'select * from public.invoices'), 'rows=3', 'bob reads his own invoices only');
select is(tests.try_as('alice@bill.test', $$select * from public.notifications where kind = 'payment'$$), 'rows=5',
          'alice was told of each payment, refund and expiry');

select * from finish();
rollback;
