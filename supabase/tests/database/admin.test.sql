-- Admin actions and the platform overview: every function refuses anon, users, providers
-- and stale or forged admin tokens; admins and the service role act, and every change
-- leaves one audit row with the state before and after.
begin;

-- Cast: 1601 alice (user), 1602 pat (provider), 1603 dana (admin), 1604 eve (an admin
-- about to be demoted), 1605 carl (user).
select tests.create_user(1601, 'alice@admin.test');
select tests.create_user(1602, 'pat@admin.test', 'provider');
select tests.create_user(1603, 'dana@admin.test', 'admin');
select tests.create_user(1604, 'eve@admin.test', 'admin');
select tests.create_user(1605, 'carl@admin.test');
insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, is_verified, parameters, monthly_price)
values (tests.id('admin-strategy', 1), tests.id('user', 1602), 'awaiting', 'marketplace', 'sma_cross', true, false, '{}', 5),
       (tests.id('admin-strategy', 2), tests.id('user', 1601), 'private', 'custom', 'sma_cross', false, false, '{}', 0);
create temp table admin_jobs on commit drop as
  select public.enqueue_job('admin.test', '{"n": 1}', 'admin-test') as dead,
         public.enqueue_job('admin.test', '{"n": 2}', 'admin-test') as failed,
         public.enqueue_job('admin.test', '{"n": 3}', 'admin-test') as waiting,
         public.enqueue_job('admin.test', '{"n": 4}', 'admin-test') as done;
update public.jobs j set status = 'dead', attempts = 5, max_attempts = 5, finished_at = now(), last_error = 'boom'
  from admin_jobs a where j.id = a.dead;
update public.jobs j set attempts = 1, run_at = now() + interval '1 hour', last_error = 'flaky'
  from admin_jobs a where j.id = a.failed;
update public.jobs j set status = 'succeeded', attempts = 1, finished_at = now()
  from admin_jobs a where j.id = a.done;
grant select on admin_jobs to authenticated;
create temp table admin_worker on commit drop as select public.register_worker('admin-test', 'h', 1, '0', '{admin-test}') as id;

-- Eve's token, taken while she was still an admin.
create temp table stale on commit drop as select tests.claims_for(tests.id('user', 1604)) as claims;
grant select on stale to authenticated;

-- Run a statement under the given JWT claims (as PostgREST would with that token).
create function pg_temp.try_with_claims(p_claims jsonb, p_sql text) returns text
language plpgsql
as $$
declare
  v_result text;
begin
  begin
    perform set_config('request.jwt.claims', p_claims::text, true);
    perform set_config('role', p_claims ->> 'role', true);
    execute p_sql;
    raise exception using errcode = 'TFUND', message = 'ran';
  exception
    when sqlstate 'TFUND' then v_result := sqlerrm;
    when insufficient_privilege then v_result := 'denied';
    when others then v_result := 'error=' || sqlstate;
  end;
  perform tests.clear_authentication();
  return v_result;
end;
$$;

-- Run a query as dana (the admin) and keep what it did; answers its first column as text.
create function pg_temp.as_dana(p_sql text) returns text
language plpgsql
as $$
declare
  v_result text;
begin
  perform tests.authenticate_as('dana@admin.test');
  execute p_sql into v_result;
  perform tests.clear_authentication();
  return v_result;
end;
$$;

create temp table calls (fn text, statement text) on commit drop;
insert into calls values
  ('admin_set_user_role', format($$select admin_set_user_role(%L, 'provider', 'trusted')$$, tests.id('user', 1605))),
  ('admin_verify_strategy', format($$select admin_verify_strategy(%L, true, 'reviewed')$$, tests.id('admin-strategy', 1))),
  ('admin_retry_job', $$select admin_retry_job((select dead from admin_jobs))$$),
  ('admin_discard_job', $$select admin_discard_job((select dead from admin_jobs), 'noise')$$),
  ('admin_platform_overview', $$select 1 where admin_platform_overview() is not null$$);
grant select on calls to authenticated;

select plan(75);

-- Refusals -------------------------------------------------------------------------------

select is(tests.try_as(a.actor, c.statement), 'denied', format('%s refused to %s', c.fn, a.actor))
  from calls c
 cross join (values ('anon'), ('alice@admin.test'), ('pat@admin.test')) a(actor)
 order by c.fn, a.actor;

-- Eve is demoted by the service role; the token she still holds no longer works.
-- (This session has no JWT: it is the service role, as the fleet and psql are.)
select is((public.admin_set_user_role(tests.id('user', 1604), 'user', 'left the team')).role, 'user',
          'the service role revokes an admin');
select is(pg_temp.try_with_claims((select claims from stale), c.statement), 'denied',
          format('%s refused to a token issued before its admin was demoted', c.fn))
  from calls c order by c.fn;
-- The same token no longer passes the admin checks of the ledger and of strategy content.
select is(pg_temp.try_with_claims((select claims from stale),
            format('select public.credit_correct(gen_random_uuid(), %L, %L, 1, %L)',
                   gen_random_uuid(), gen_random_uuid(), 'stale token')),
          'denied', 'credit_correct refused to a token issued before its admin was demoted');
select is(pg_temp.try_with_claims((select claims from stale),
            'select 1 / (case when private.is_admin() then 0 else 1 end)'),
          'ran', 'a demoted admin''s token is no admin''s (private.is_admin)');

-- Tokens the hook never issues: the admin database role without admin app_metadata, and
-- admin app_metadata without the admin database role.
select is(pg_temp.try_with_claims(tests.claims_for(tests.id('user', 1601)) || '{"role": "tradefleet_admin"}',
                                  'select admin_platform_overview()'),
          'denied', 'a user''s token with the admin database role is refused');
select is(pg_temp.try_with_claims(tests.claims_for(tests.id('user', 1603)) || '{"role": "authenticated"}',
                                  'select admin_platform_overview()'),
          'denied', 'an admin''s app_metadata without the admin database role is refused');

select is((select count(*)::int from public.admin_audit_log where target_id <> tests.id('user', 1604)::text), 0,
          'refused calls wrote no audit row');

-- Roles ------------------------------------------------------------------------------------

select is(pg_temp.as_dana(format($$select (admin_set_user_role(%L, 'provider', 'trusted trader')).role$$, tests.id('user', 1605))), 'provider',
          'an admin grants the provider role');
select is((select role from public.profiles where id = tests.id('user', 1605)), 'provider', 'the profile shows it');
select is((select raw_app_meta_data ->> 'role' from auth.users where id = tests.id('user', 1605)), 'provider',
          'app_metadata carries it into the next token');
select is((select tests.claims_for(tests.id('user', 1605)) -> 'app_metadata' ->> 'role'), 'provider',
          'the next token says provider');
select results_eq(
  format($$select actor_id, actor_role, action, target_type, reason, before, after from public.admin_audit_log
            where target_id = %L$$, tests.id('user', 1605)),
  format($$values (%L::uuid, 'admin', 'set_user_role', 'user', 'trusted trader', '{"role": "user"}'::jsonb,
                   '{"role": "provider"}'::jsonb)$$, tests.id('user', 1603)),
  'the grant is audited: who, what, why, before and after'
);

select is(pg_temp.as_dana(format($$select (admin_set_user_role(%L, 'provider', 'again')).role$$, tests.id('user', 1605))), 'provider',
          'granting a role the user has changes nothing');
select is(pg_temp.as_dana(format($$select (admin_set_user_role(%L, 'user', 'spam signals')).role$$, tests.id('user', 1602))), 'user',
          'an admin revokes the provider role');
select is((select count(*)::int from public.admin_audit_log where target_id = tests.id('user', 1605)::text), 1,
          'a change that changes nothing is not audited');
select results_eq(
  format($$select before, after from public.admin_audit_log where target_id = %L$$, tests.id('user', 1602)),
  $$values ('{"role": "provider"}'::jsonb, '{"role": "user"}'::jsonb)$$,
  'the revocation is audited'
);
select is(tests.try_as('dana@admin.test', format($$select admin_set_user_role(%L, 'admin', 'x')$$, tests.id('user', 1601))),
          'denied', 'an admin cannot make an admin');
select is(tests.try_as('dana@admin.test', format($$select admin_set_user_role(%L, 'user', 'x')$$, tests.id('user', 1603))),
          'denied', 'an admin cannot revoke an admin, herself included');
select is(tests.try_as('service_role', format($$select admin_set_user_role(%L, 'admin', 'on call')$$, tests.id('user', 1601))),
          'rows=1', 'the service role makes an admin');
select results_eq(
  format($$select actor_id, actor_role, before, after from public.admin_audit_log where target_id = %L$$, tests.id('user', 1604)),
  $$values (null::uuid, 'service_role', '{"role": "admin"}'::jsonb, '{"role": "user"}'::jsonb)$$,
  'the service role''s actions are audited as its own'
);

-- Strategies -------------------------------------------------------------------------------

select is((select count(*)::int from public.strategy_marketplace where id = tests.id('admin-strategy', 1)), 0,
          'an unverified strategy is not in the marketplace');
select is(pg_temp.as_dana(format($$select (admin_verify_strategy(%L, true, 'rules reviewed')).is_verified$$, tests.id('admin-strategy', 1))), 'true',
          'an admin verifies a marketplace strategy');
select is((select count(*)::int from public.strategy_marketplace where id = tests.id('admin-strategy', 1)), 1,
          'it appears in the marketplace');
select is((select count(*)::int from public.notifications
            where user_id = tests.id('user', 1602) and data ->> 'strategy_id' = tests.id('admin-strategy', 1)::text
              and (data ->> 'is_verified')::boolean),
          1, 'its provider is told');
select is(pg_temp.as_dana(format($$select (admin_verify_strategy(%L, false, 'misleading description')).is_verified$$, tests.id('admin-strategy', 1))), 'false',
          'an admin unverifies it with a reason');
select results_eq(
  format($$select action, reason, before, after from public.admin_audit_log where target_type = 'strategy' and target_id = %L
            order by at, action desc$$, tests.id('admin-strategy', 1)),
  $$values ('verify_strategy', 'rules reviewed', '{"is_verified": false}'::jsonb, '{"is_verified": true}'::jsonb),
           ('unverify_strategy', 'misleading description', '{"is_verified": true}'::jsonb, '{"is_verified": false}'::jsonb)$$,
  'both are audited with the state before and after'
);
select is((select count(*)::int from public.strategy_marketplace where id = tests.id('admin-strategy', 1)), 0,
          'an unverified strategy leaves the marketplace');
select is(tests.try_as('dana@admin.test', format($$select admin_verify_strategy(%L, true, 'x')$$, tests.id('admin-strategy', 2))),
          'error=23514', 'a private strategy cannot be verified');

-- Jobs -------------------------------------------------------------------------------------

select is(pg_temp.as_dana($$select row(j.status, j.run_at <= now(), j.max_attempts, j.last_error)::text
                              from admin_retry_job((select dead from admin_jobs)) j$$),
          '(queued,t,6,boom)', 'an admin retries a dead job now, with one more attempt');
select is((select claimed.id from public.claim_jobs((select id from admin_worker), '{admin-test}', 10) claimed
            where claimed.id = (select dead from admin_jobs)),
          (select dead from admin_jobs), 'the fleet claims the retried job');
select results_eq(
  format($$select actor_id, action, before ->> 'status', after ->> 'status', before ->> 'last_error'
             from public.admin_audit_log where target_type = 'job' and target_id = %L$$, (select dead from admin_jobs)),
  format($$values (%L::uuid, 'retry_job', 'dead', 'queued', 'boom')$$, tests.id('user', 1603)),
  'the retry is audited'
);
select is(pg_temp.as_dana($$select (admin_retry_job((select failed from admin_jobs))).run_at <= now()$$), 'true',
          'a failed job waiting for its next attempt is retried now');
select is(pg_temp.as_dana($$select (admin_discard_job((select failed from admin_jobs), 'the exchange delisted the pair')).status$$), 'cancelled',
          'an admin discards a failed job');
select is((select count(*)::int from public.claim_jobs((select id from admin_worker), '{admin-test}', 10) claimed
            where claimed.id = (select failed from admin_jobs)),
          0, 'a discarded job is not claimed');
select results_eq(
  format($$select action, reason, before ->> 'status', after ->> 'status' from public.admin_audit_log
            where target_type = 'job' and target_id = %L order by at, action desc$$, (select failed from admin_jobs)),
  $$values ('retry_job', null, 'queued', 'queued'), ('discard_job', 'the exchange delisted the pair', 'queued', 'cancelled')$$,
  'the discard is audited with its reason'
);
select is(tests.try_as('dana@admin.test', 'select admin_retry_job((select done from admin_jobs))'), 'error=23514',
          'a succeeded job is not retried');
select is(tests.try_as('dana@admin.test', 'select admin_discard_job((select done from admin_jobs), ''x'')'), 'error=23514',
          'a succeeded job is not discarded');
select is(tests.try_as('dana@admin.test', 'select admin_discard_job((select waiting from admin_jobs), ''x'')'), 'error=23514',
          'a job that never failed is not discarded');
select is(tests.try_as('dana@admin.test', 'select admin_retry_job((select dead from admin_jobs))'), 'error=23514',
          'a running job is not retried');

-- The audit log ----------------------------------------------------------------------------

select is(tests.try_as('dana@admin.test', 'select * from admin_audit_log'),
          'rows=' || (select count(*) from public.admin_audit_log), 'admins read the whole audit log');
select is(tests.try_as('pat@admin.test', 'select * from admin_audit_log'), 'rows=0', 'users read nothing of it');
select is(tests.try_as('carl@admin.test', 'select * from admin_audit_log'), 'rows=0', 'providers read nothing of it');
select is(tests.try_as('dana@admin.test', $$delete from admin_audit_log$$), 'denied', 'admins cannot erase it');

-- The overview -----------------------------------------------------------------------------

create temp table overview_before on commit drop as select public.admin_platform_overview() as o;
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, status)
values (tests.id('admin-bot', 1), tests.id('user', 1601), 'b', 'kraken', 'ETH/BTC', '5m', 'sma_cross', 1, 0.1, 'running');
insert into public.trades (bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time)
values (tests.id('admin-bot', 1), tests.id('user', 1601), 'kraken', 'ETH/BTC', 'buy', 2, 0.05, now()),
       (tests.id('admin-bot', 1), tests.id('user', 1601), 'kraken', 'ETH/ZZZ', 'buy', 3, 10, now()),
       (tests.id('admin-bot', 1), tests.id('user', 1601), 'kraken', 'ETH/ZZZ', 'buy', 1, 1, now() - interval '40 days');
insert into public.invoices (user_id, provider, amount, currency, status, paid_at)
values (tests.id('user', 1601), 'paystack', 12.5, 'ZZZ', 'paid', now()),
       (tests.id('user', 1601), 'paystack', 99, 'ZZZ', 'pending', null);
insert into public.invoices (user_id, provider, amount, currency, status, paid_at, amount_refunded)
values (tests.id('user', 1601), 'paystack', 10, 'ZZZ', 'partially_refunded', now(), 4),
       (tests.id('user', 1601), 'paystack', 7, 'ZZZ', 'refunded', now(), 7);
insert into public.backtest_runs (user_id, strategy, trading_pair, timeframe, status, compute_seconds, finished_at)
values (tests.id('user', 1601), 'sma_cross', 'ETH/BTC', '5m', 'completed', 90, now());
create temp table overview_after on commit drop as select public.admin_platform_overview() as o;

create function pg_temp.today(p_overview jsonb, p_key text) returns jsonb
language sql
as $$
  select e from jsonb_array_elements(p_overview -> p_key) e where e ->> 'day' = ((now() at time zone 'utc')::date)::text
$$;

select is((select (a.o -> 'users' ->> 'total')::int - (b.o -> 'users' ->> 'total')::int from overview_before b, overview_after a),
          0, 'the overview counts users (no one signed up in between)');
select ok((select (o -> 'users' ->> 'new_today')::int >= 5 from overview_after), 'the five users of this file are new today');
select is((select (coalesce((pg_temp.today(a.o, 'trades_per_day') ->> 'trades')::int, 0))
                  - coalesce((pg_temp.today(b.o, 'trades_per_day') ->> 'trades')::int, 0)
             from overview_before b, overview_after a),
          2, 'trades opened today are counted today, older than the window not at all');
select is((select pg_temp.today(o, 'trades_per_day') -> 'volume' ->> 'ZZZ' from overview_after), '30.00000000',
          'volume is amount × price per quote currency');
select is((select (a.o -> 'bots_running' ->> 'kraken')::int - coalesce((b.o -> 'bots_running' ->> 'kraken')::int, 0)
             from overview_before b, overview_after a),
          1, 'running bots are counted per exchange');
select is((select (e ->> 'amount')::numeric from overview_after, jsonb_array_elements(o -> 'revenue_per_day') e
            where e ->> 'currency' = 'ZZZ' and e ->> 'provider' = 'paystack'),
          18.50, 'revenue counts paid invoices per day, provider and currency, a partly refunded one at what it kept');
select is((select (a.o -> 'backtest_minutes' ->> 'today')::numeric - (b.o -> 'backtest_minutes' ->> 'today')::numeric
             from overview_before b, overview_after a),
          1.50, 'backtest compute is counted in minutes');
select ok((select o ?& array['subscriptions', 'mrr', 'credits', 'signals', 'copy_executions'] from overview_after),
          'the overview has every part');
select ok((select (o -> 'credits' ->> 'held')::numeric >= 0 and (o -> 'credits' ->> 'granted')::numeric >= 0 from overview_after),
          'credits are reported as numbers');
select is(tests.try_as('service_role', 'select 1 where admin_platform_overview() is not null'), 'rows=1',
          'the service role reads the overview');

-- The daily totals follow trades through updates, deletes and moves to another day.
update public.trades set amount = 4 where bot_id = tests.id('admin-bot', 1) and trading_pair = 'ETH/ZZZ' and amount = 3;
delete from public.trades where bot_id = tests.id('admin-bot', 1) and trading_pair = 'ETH/BTC';
update public.trades set entry_time = now() where bot_id = tests.id('admin-bot', 1) and entry_time < now() - interval '30 days';
select is((select pg_temp.today(public.admin_platform_overview(), 'trades_per_day') -> 'volume' ->> 'ZZZ'), '41.00000000',
          'an updated amount and a trade moved to today change today''s volume');
select is((select (coalesce((pg_temp.today(public.admin_platform_overview(), 'trades_per_day') ->> 'trades')::int, 0))
                  - coalesce((pg_temp.today(b.o, 'trades_per_day') ->> 'trades')::int, 0)
             from overview_before b),
          2, 'a deleted trade leaves the count, a moved one joins its new day');
select set_eq(
  $$select day, quote, sum(trades)::bigint as trades, sum(volume) as volume from private.trade_daily_totals group by 1, 2 having sum(trades) <> 0$$,
  $$select (entry_time at time zone 'utc')::date, split_part(trading_pair, '/', 2), count(*), sum(amount * price)
      from public.trades group by 1, 2$$,
  'the daily totals equal a count of the trades'
);

select * from finish();
rollback;
