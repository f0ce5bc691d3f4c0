-- Copy execution: one signal reaches every auto-executing subscriber once, as a paper trade
-- on their running bot (fenced by its lease epoch); the close closes the copies; credits
-- are charged per copy; each subscriber reads only their own executions.
begin;
select plan(24);

-- Cast: 1 alice and 2 bob (subscribers), 3 pat (provider), 4 dana (admin).
select tests.create_user(1, 'alice@mkt.test');
select tests.create_user(2, 'bob@mkt.test');
select tests.create_user(3, 'pat@mkt.test', 'provider');
select tests.create_user(4, 'dana@mkt.test', 'admin');
select public.credit_grant(tests.id('grant', 1), tests.id('user', 1), 10);

insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('market', 3), tests.id('user', 3), 'Pat Momentum', 'marketplace', true, true, 0);
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, status)
values (tests.id('bot', 1), tests.id('user', 1), 'alice copies', 'binance', 'BTC/USDT', '1h', 'rsi', 100, 10, 'running'),
       (tests.id('bot', 2), tests.id('user', 2), 'bob copies', 'binance', 'BTC/USDT', '1h', 'rsi', 100, 10, 'stopped');
insert into public.bot_leases (bot_id, epoch, expires_at) values (tests.id('bot', 1), 4, now() + interval '1 minute');
insert into public.strategy_subscriptions (id, strategy_id, subscriber_id, auto_execute, bot_id)
values (tests.id('sub', 1), tests.id('market', 3), tests.id('user', 1), true, tests.id('bot', 1)),
       (tests.id('sub', 2), tests.id('market', 3), tests.id('user', 2), true, tests.id('bot', 2));
insert into public.signals (id, strategy_id, provider_id, pair, side, entry_price)
values (tests.id('signal', 1), tests.id('market', 3), tests.id('user', 3), 'BTC/USDT', 'long', 100);

-- Open ---------------------------------------------------------------------------------------------
select is(tests.try_as('pat@mkt.test', format('select public.signal_fan_out(%L)', tests.id('signal', 1))), 'denied',
          'apps cannot run the fan-out');
select results_eq(format('select executed, skipped from public.signal_fan_out(%L, ''open'')', tests.id('signal', 1)),
                  'values (1, 1)', 'the fan-out copies the signal for alice and skips bob');
select results_eq($$select bot_id, side, amount, price, status, lease_epoch, signal_id from public.trades where user_id = tests.id('user', 1)$$,
                  $$values (tests.id('bot', 1), 'buy'::text, 0.1::numeric, 100::numeric, 'open'::text, 4::bigint, tests.id('signal', 1))$$,
                  'alice''s bot holds the copy: her stake at the entry price, under its lease epoch, tagged with the signal');
select is((select reason from public.signal_executions where subscription_id = tests.id('sub', 2)), 'bot_not_running',
          'bob''s execution says why it was skipped');
select results_eq(format('select executed, skipped from public.signal_fan_out(%L, ''open'')', tests.id('signal', 1)),
                  'values (0, 0)', 'a repeated fan-out copies nothing again');
select is((select count(*)::int from public.trades where signal_id = tests.id('signal', 1)), 1, '... one copy in all');

-- Charge -------------------------------------------------------------------------------------------
select is((select charged from public.signal_charge_copies(tests.id('signal', 1))), 1, 'the copy is charged');
select is((select balance from public.credit_accounts where user_id = tests.id('user', 1) and kind = 'user'), 9::numeric,
          'at the plan''s credits per trade');
select is((select charge_status from public.signal_executions where subscription_id = tests.id('sub', 1)), 'charged',
          'and recorded as charged');
select is((select charged from public.signal_charge_copies(tests.id('signal', 1))), 0, 'a copy is charged once');

-- Close --------------------------------------------------------------------------------------------
update public.signals set action = 'close', exit_price = 110 where id = tests.id('signal', 1);
select lives_ok(format('select public.signal_fan_out(%L, ''close'')', tests.id('signal', 1)), 'the close fans out');
select results_eq($$select status, exit_price from public.trades where signal_id = tests.id('signal', 1)$$,
                  $$values ('closed'::text, 110::numeric)$$, 'the copy is closed at the signal''s exit price');
select is((select profit from public.bots where id = tests.id('bot', 1)) > 0, true, 'its profit counts for the bot');

-- Copy executions: each subscriber reads their own (the RLS matrix of this table).
create temporary table mine on commit drop as
select subscriber_id, count(*)::int as n from public.signal_executions where signal_id = tests.id('signal', 1) group by 1;
grant select on mine to public;
select is((select n from mine where subscriber_id = tests.id('user', 2)), 1, 'bob has one (skipped) execution');
select is(tests.try_as('anon', 'select * from public.signal_executions'), 'denied', 'signal_executions: anon reads nothing');
select is(tests.try_as('alice@mkt.test', 'select * from public.signal_executions'),
          'rows=' || (select n from mine where subscriber_id = tests.id('user', 1)), 'signal_executions: alice reads hers');
select is(tests.try_as('bob@mkt.test', format('select * from public.signal_executions where subscriber_id <> %L', tests.id('user', 2))),
          'rows=0', 'signal_executions: bob reads none of alice''s');
select is(tests.try_as('pat@mkt.test', 'select * from public.signal_executions'), 'rows=0',
          'signal_executions: the provider does not see who was copied');
select is(tests.try_as('dana@mkt.test', format('select * from public.signal_executions where signal_id = %L', tests.id('signal', 1))),
          'rows=' || (select sum(n) from mine), 'signal_executions: admins read all');
select is(tests.try_as('alice@mkt.test', 'delete from public.signal_executions'), 'denied', 'signal_executions: apps never write');

-- A bot whose lease moves on during the pass: its copy is refused by the bot engine and the
-- subscriber is told it was skipped (here the lease moves as soon as the execution is written).
create function public.tests_move_lease() returns trigger language plpgsql as $f$
begin
  update public.bot_leases set epoch = epoch + 1 where bot_id = new.bot_id;
  return new;
end $f$;
create trigger tests_move_lease after insert on public.signal_executions
  for each row execute function public.tests_move_lease();
insert into public.signals (id, strategy_id, provider_id, pair, side, entry_price)
values (tests.id('signal', 2), tests.id('market', 3), tests.id('user', 3), 'BTC/USDT', 'long', 100);
select results_eq(format('select executed, skipped from public.signal_fan_out(%L, ''open'')', tests.id('signal', 2)),
                  'values (0, 2)', 'a copy whose bot lease moved on counts as skipped');
select is((select reason from public.signal_executions where signal_id = tests.id('signal', 2) and subscription_id = tests.id('sub', 1)),
          'bot_lease_changed', '... with the reason recorded');
select is((select count(*)::int from public.trades where signal_id = tests.id('signal', 2)), 0, '... and no trade');
select is((select body from public.notifications where user_id = tests.id('user', 1) and data ->> 'signal_id' = tests.id('signal', 2)::text),
          'Skipped: bot lease changed.', '... and alice is told why');
drop trigger tests_move_lease on public.signal_executions;

select * from finish();
rollback;
