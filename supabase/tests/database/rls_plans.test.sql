-- The plans of an app's hottest reads through RLS: the user's latest trades, orders and bot
-- logs must be found through an index on the user's rows (or their organisations' bots),
-- never by walking the whole table and testing each row's policy. With many users the
-- difference is a millisecond against a second (tests/bench/rls.py).
begin;
select plan(6);

-- 300 users with a bot each and 40 trades, orders and log lines per bot; one organisation
-- whose bot user 1 may read as a member.
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
select tests.id('plan-user', g), 'authenticated', 'authenticated', 'plan' || g || '@plans.test',
       '{"provider": "email", "role": "user"}', '{}', now(), now()
  from generate_series(1, 300) g;
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, status, initial_balance, stake_amount)
select tests.id('plan-bot', g), tests.id('plan-user', g), 'bot', 'binance', 'ETH/BTC', '5m', 'sma_cross', 'stopped', 1, 0.1
  from generate_series(1, 300) g;
insert into public.bot_leases (bot_id, epoch, expires_at)
select tests.id('plan-bot', g), 1, now() + interval '1 hour' from generate_series(1, 300) g;
insert into public.trades (bot_id, user_id, exchange, trading_pair, side, amount, price, status, entry_time)
select tests.id('plan-bot', g), tests.id('plan-user', g), 'binance', 'ETH/BTC', 'buy', 1, 0.1, 'open',
       now() - make_interval(mins => t * 300 + g)
  from generate_series(1, 300) g cross join generate_series(1, 40) t;
insert into public.orders (bot_id, user_id, exchange, symbol, side, order_type, amount, price, status, client_order_id,
                           lease_epoch, created_at)
select tests.id('plan-bot', g), tests.id('plan-user', g), 'binance', 'ETH/BTC', 'buy', 'market', 1, 0.1, 'closed',
       'plan-' || g || '-' || t, 1, now() - make_interval(mins => t * 300 + g)
  from generate_series(1, 300) g cross join generate_series(1, 40) t;
insert into public.bot_logs (bot_id, user_id, log_level, message, created_at)
select tests.id('plan-bot', g), tests.id('plan-user', g), 'info', 'tick', now() - make_interval(mins => t * 300 + g)
  from generate_series(1, 300) g cross join generate_series(1, 40) t;
insert into public.organisations (id, name, owner_id) values (tests.id('plan-org', 1), 'Plans Org', tests.id('plan-user', 2));
insert into public.organisation_members (organisation_id, user_id, role)
values (tests.id('plan-org', 1), tests.id('plan-user', 2), 'owner'), (tests.id('plan-org', 1), tests.id('plan-user', 1), 'member');
update public.bots set organisation_id = tests.id('plan-org', 1) where id = tests.id('plan-bot', 2);
analyze public.trades;
analyze public.orders;
analyze public.bot_logs;
analyze public.bots;

-- The plan of a query as user 1, as JSON text.
create function pg_temp.plan_as_user(p_sql text) returns text
language plpgsql
as $$
declare
  v_plan json;
begin
  perform tests.authenticate_as('plan1@plans.test');
  execute 'explain (format json) ' || p_sql into v_plan;
  perform tests.clear_authentication();
  return v_plan::text;
end;
$$;

select is(
  tests.try_as('plan1@plans.test', 'select id from public.trades order by entry_time desc limit 50'),
  'rows=50',
  'a member reads their own trades and their organisation''s bot''s (80 rows; the latest 50)');

select unalike(
  pg_temp.plan_as_user('select id from public.trades order by entry_time desc limit 50'),
  '%SubPlan%',
  'the latest trades: no policy subplan run per row');
select unalike(
  pg_temp.plan_as_user('select id from public.trades order by entry_time desc limit 50'),
  '%"Seq Scan"%',
  'the latest trades: found through indexes, not a scan of every user''s trades');
select unalike(
  pg_temp.plan_as_user('select id from public.orders order by created_at desc limit 50'),
  '%SubPlan%',
  'the latest orders: no policy subplan run per row');
select unalike(
  pg_temp.plan_as_user('select id from public.bot_logs order by created_at desc limit 50'),
  '%SubPlan%',
  'the latest log lines: no policy subplan run per row');
select unalike(
  pg_temp.plan_as_user('select id from public.orders order by created_at desc limit 50'),
  '%"Seq Scan"%',
  'the latest orders: found through indexes, not a scan of every user''s orders');

select * from finish();
rollback;
