-- Fleet: the job queue (enqueue, claim, complete, fail with backoff, reclaim), workers
-- (registration, heartbeats, death) and bot leases with fencing epochs. now() is fixed
-- inside the transaction, so times are set explicitly where the test needs them to pass.
begin;
select plan(50);

create or replace function pg_temp.job(p_id bigint) returns public.jobs language sql as
  $$ select * from public.jobs where id = p_id $$;
create temporary table ids (name text primary key, id bigint, wid uuid) on commit drop;

-- Workers ------------------------------------------------------------------------------------------
insert into ids (name, wid) values
  ('w1', public.register_worker('fleet-test-1', 'host-a', 101, 'test', '{fleet_test}', 1000, '{"leases": true}')),
  ('w2', public.register_worker('fleet-test-2', 'host-b', 102, 'test', '{fleet_test}', 1000, '{"leases": true}'));
create or replace function pg_temp.w(p text) returns uuid language sql as $$ select wid from ids where name = p $$;
select is((select status || ' ' || host from public.workers where id = pg_temp.w('w1')), 'running host-a',
          'a registered worker is running');

-- Enqueue ------------------------------------------------------------------------------------------
insert into ids (name, id) values
  ('low', public.enqueue_job('test.low', '{"n": 1}', 'fleet_test')),
  ('high', public.enqueue_job('test.high', '{"n": 2}', 'fleet_test', null, 5)),
  ('keyed', public.enqueue_job('test.keyed', '{"n": 3}', 'fleet_test', null, 0, 2, 'fleet-test:keyed')),
  ('later', public.enqueue_job('test.later', '{}', 'fleet_test', now() + interval '1 hour'));
create or replace function pg_temp.id(p text) returns bigint language sql as $$ select id from ids where name = p $$;
select is(public.enqueue_job('test.keyed', '{"n": 4}', 'fleet_test', null, 0, 2, 'fleet-test:keyed'), pg_temp.id('keyed'),
          'enqueueing the same idempotency key again returns the existing job');
select is((select count(*)::int from public.jobs where idempotency_key = 'fleet-test:keyed'), 1, '... and adds none');
select is((select payload from public.jobs where id = pg_temp.id('keyed')), '{"n": 3}'::jsonb, '... nor changes it');
select is((select count(*)::int from public.enqueue_jobs('test.many', array['{"a": 1}', '{"a": 2}']::jsonb[], 'fleet_other')), 2,
          'enqueue_jobs adds one job per payload');

-- Claim --------------------------------------------------------------------------------------------
select results_eq(
  format('select id from public.claim_jobs(%L, ''{fleet_test}'', 1, 30)', pg_temp.w('w1')),
  format('values (%s::bigint)', pg_temp.id('high')),
  'a claim takes the ready job of its queues with the highest priority first');
select results_eq(
  format('select id from public.claim_jobs(%L, ''{fleet_test}'', 1, 30)', pg_temp.w('w1')),
  format('values (%s::bigint)', pg_temp.id('low')),
  'then the oldest of equal priority, up to its limit');
select is((select (status, attempts, locked_by, locked_until)::text from pg_temp.job(pg_temp.id('high'))),
          (select ('running', 1, pg_temp.w('w1'), now() + interval '30 seconds')::text),
          'a claimed job runs for its worker, one attempt more, locked for the visibility timeout');
select results_eq(
  format('select id from public.claim_jobs(%L, ''{fleet_test}'', 10, 30)', pg_temp.w('w2')),
  format('values (%s::bigint)', pg_temp.id('keyed')),
  'a running job is never claimed twice; a job scheduled later is not claimed yet');
select is((select count(*)::int from public.claim_jobs(pg_temp.w('w2'), '{fleet_other}', 10, 30, '{test.other}')), 0,
          'a worker only takes the kinds it asks for');

-- Complete -----------------------------------------------------------------------------------------
select is(public.complete_job(pg_temp.w('w2'), pg_temp.id('high'), '{"ok": true}'), false,
          'a worker cannot complete a job another worker holds');
select is(public.complete_job(pg_temp.w('w1'), pg_temp.id('high'), '{"ok": true}'), true, 'the holder completes it');
select is((select (status, result, locked_by)::text from pg_temp.job(pg_temp.id('high'))), '(succeeded,"{""ok"": true}",)',
          'a completed job keeps its result and is unlocked');
select is(public.complete_job(pg_temp.w('w1'), pg_temp.id('high')), false, 'a job completes once');

-- Fail: backoff, then dead -------------------------------------------------------------------------
select is(public.fail_job(pg_temp.w('w1'), pg_temp.id('low'), 'boom', true, null, 10, 3600), 'queued',
          'a failed attempt goes back to the queue');
select ok((select run_at between now() + interval '5 seconds' and now() + interval '10 seconds'
             from pg_temp.job(pg_temp.id('low'))),
          'after the first attempt it waits 10 s with jitter in [50%, 100%]');
select is((select last_error from pg_temp.job(pg_temp.id('low'))), 'boom', 'the error is kept');
update public.jobs set run_at = now(), attempts = 3 where id = pg_temp.id('low');
select count(*) from public.claim_jobs(pg_temp.w('w1'), '{fleet_test}', 1, 30);
select is(public.fail_job(pg_temp.w('w1'), pg_temp.id('low'), 'boom again', true, null, 10, 3600), 'queued',
          'the fourth attempt fails too');
select ok((select run_at between now() + interval '40 seconds' and now() + interval '80 seconds'
             from pg_temp.job(pg_temp.id('low'))),
          'the backoff doubles with each attempt (10 s x 2^3)');
update public.jobs set run_at = now() where id = pg_temp.id('low');
select count(*) from public.claim_jobs(pg_temp.w('w1'), '{fleet_test}', 1, 30);
select is(public.fail_job(pg_temp.w('w1'), pg_temp.id('low'), 'still broken'), 'dead',
          'the last allowed attempt (max_attempts 5) makes the job dead');
select is((select (status, attempts, last_error)::text from pg_temp.job(pg_temp.id('low'))), '(dead,5,"still broken")',
          'a dead job keeps its attempts and last error');
select is(public.fail_job(pg_temp.w('w2'), pg_temp.id('keyed'), 'bad input', false), 'dead',
          'a fatal failure (no retry) is dead at once');
select is(public.fail_job(pg_temp.w('w2'), pg_temp.id('keyed'), 'again'), null, 'a job no longer held cannot be failed');

-- Retry after, heartbeats and reclaim ------------------------------------------------------------
update public.jobs set run_at = now() where id = pg_temp.id('later');
select count(*) from public.claim_jobs(pg_temp.w('w2'), '{fleet_test}', 1, 30);
select is(public.fail_job(pg_temp.w('w2'), pg_temp.id('later'), 'rate limited', true, 42), 'queued', 'a rate-limited attempt');
select is((select run_at from pg_temp.job(pg_temp.id('later'))), now() + interval '42 seconds',
          'waits exactly the retry-after the handler gave');
update public.jobs set run_at = now() where id = pg_temp.id('later');
select count(*) from public.claim_jobs(pg_temp.w('w2'), '{fleet_test}', 1, 30);
select is(public.worker_heartbeat(pg_temp.w('w2'), 120, array[pg_temp.id('later')]), 'running',
          'a heartbeat reports the worker''s status');
select is((select locked_until from pg_temp.job(pg_temp.id('later'))), now() + interval '120 seconds',
          '... and extends the locks of the jobs it still runs');
select is(public.extend_job_lock(pg_temp.w('w1'), pg_temp.id('later'), 600), false, 'only the holder extends a lock');
select is(public.worker_heartbeat('00000000-0000-4000-8000-00000000f1ee'), null, 'an unknown worker gets no status');
update public.jobs set locked_until = now() - interval '1 second' where id = pg_temp.id('later');
select is(public.reclaim_expired_jobs(), 1, 'a job whose lock expired is reclaimed');
select is((select (status, locked_by)::text from pg_temp.job(pg_temp.id('later'))), '(queued,)', '... back in the queue');
select alike((select last_error from pg_temp.job(pg_temp.id('later'))), 'lock expired: worker % stopped heartbeating during attempt 2',
            '... saying which worker lost it');

-- Worker death ---------------------------------------------------------------------------------------
select count(*) from public.claim_jobs(pg_temp.w('w2'), '{fleet_test}', 1, 30);
select throws_ok(format('select public.set_worker_status(%L, ''dead'')', pg_temp.w('w1')), '23514',
                 'a worker can set itself running, draining or stopped, not dead', 'a worker cannot declare itself dead');
update public.workers set heartbeat_at = now() - interval '5 minutes' where id = pg_temp.w('w2');
select is(public.mark_dead_workers(60), 1, 'a worker silent past the threshold is marked dead');
select is((select status from public.workers where id = pg_temp.w('w2')), 'dead', '... and is dead');
select is((select (status, locked_by)::text from pg_temp.job(pg_temp.id('later'))), '(queued,)',
          'its running job goes back to the queue at once');
select is(public.worker_heartbeat(pg_temp.w('w2')), 'running', 'a dead worker that heartbeats again is running');

-- Bot leases and fencing ---------------------------------------------------------------------------
select tests.create_user(1, 'ann@fleet.test');
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, status)
select tests.id('bot', n), tests.id('user', 1), 'b' || n, 'binance', 'BTC/USDT', '1h', 'rsi', 100, 10, 'running'
  from generate_series(1, 2) n;
update public.workers set heartbeat_at = now() - interval '5 minutes' where id = pg_temp.w('w2');
select results_eq(
  format('select bot_id, epoch from public.acquire_bot_leases(%L, 30) where bot_id in (%L, %L) order by bot_id',
         pg_temp.w('w1'), tests.id('bot', 1), tests.id('bot', 2)),
  format('select id, 1::bigint from public.bots where id in (%L, %L) order by id', tests.id('bot', 1), tests.id('bot', 2)),
  'the only live worker leases every running bot, at epoch 1');
select lives_ok(format($$insert into public.orders (bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, lease_epoch)
                        values (%L, %L, 'fleet-test-1', 'binance', 'BTC/USDT', 'buy', 'market', 1, 1)$$,
                       tests.id('bot', 1), tests.id('user', 1)),
                'an order carrying the current epoch is written');
select is(public.release_bot_leases(pg_temp.w('w1')) >= 2, true, 'a stopping worker releases its leases');
update public.workers set heartbeat_at = now() where id = pg_temp.w('w2');
update public.workers set heartbeat_at = now() - interval '5 minutes' where id = pg_temp.w('w1');
select results_eq(
  format('select bot_id, epoch from public.acquire_bot_leases(%L, 30, 60) where bot_id in (%L, %L) order by bot_id',
         pg_temp.w('w2'), tests.id('bot', 1), tests.id('bot', 2)),
  format('select id, 2::bigint from public.bots where id in (%L, %L) order by id', tests.id('bot', 1), tests.id('bot', 2)),
  'the worker that takes them over holds them at epoch 2');
select throws_ok(format($$insert into public.orders (bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, lease_epoch)
                         values (%L, %L, 'fleet-test-2', 'binance', 'BTC/USDT', 'buy', 'market', 1, 1)$$,
                        tests.id('bot', 1), tests.id('user', 1)),
                 '40001', format('stale lease epoch 1 for bot %s (current 2)', tests.id('bot', 1)),
                 'an order from the old holder is refused (fencing)');
select throws_ok(format($$insert into public.trades (bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time, lease_epoch)
                         values (%L, %L, 'binance', 'BTC/USDT', 'buy', 1, 100, now(), 1)$$,
                        tests.id('bot', 2), tests.id('user', 1)),
                 '40001', null, 'so is a trade');
select throws_ok(format($$update public.orders set status = 'closed' where client_order_id = 'fleet-test-1'$$), '40001', null,
                 'and an update of an order still carrying the old epoch');
select is((select count(*)::int from public.acquire_bot_leases(pg_temp.w('w2'), 30, 60) where bot_id = tests.id('bot', 1)), 1,
          'renewing a held lease keeps it');
select is((select epoch from public.bot_leases where bot_id = tests.id('bot', 1)), 2::bigint, '... at the same epoch');
update public.bots set status = 'stopped' where id = tests.id('bot', 1);
select is((select count(*)::int from public.acquire_bot_leases(pg_temp.w('w2'), 30, 60) where bot_id = tests.id('bot', 1)), 0,
          'a bot that stopped is let go');

-- One lock order: every function that changes lease rows locks them in bot-id order first,
-- the order bot_apply_steps locks them in, so renewals and steps cannot deadlock.
select matches(pg_get_functiondef('public.acquire_bot_leases(uuid,double precision,double precision)'::regprocedure),
               'order by l\.bot_id for update', 'acquiring and renewing leases locks them in bot-id order');
select matches(pg_get_functiondef('public.release_bot_leases(uuid,uuid[])'::regprocedure),
               'order by l\.bot_id for update', 'releasing leases locks them in bot-id order');
select matches(pg_get_functiondef('private.fleet_forget_worker(uuid,text)'::regprocedure),
               'order by l\.bot_id for update', 'forgetting a dead worker locks its leases in bot-id order');

select * from finish();
rollback;
