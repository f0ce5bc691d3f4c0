-- Fleet retention: prune_history deletes history in batches, oldest first, and only
-- history (processed events, read notifications, finished jobs); bad arguments are named
-- errors; only the fleet may call it. The rows here are dated around 2000 and the cutoff
-- is 2000-01-01, so rows of the seed (if loaded) never count.
begin;
select plan(26);

select tests.create_user(1, 'ret@retention.test');
create temporary table cutoff as select timestamptz '2000-01-01 00:00:00+00' as at;
create or replace function pg_temp.prune(p_history text, p_batch integer) returns integer language sql as
  $$ select private.prune_history(p_history, (select at from cutoff), p_batch) $$;
create or replace function pg_temp.prune_all(p_history text) returns integer language plpgsql as $$
declare
  v_total integer := 0;
  v_n integer;
begin
  loop
    v_n := pg_temp.prune(p_history, 2);
    v_total := v_total + v_n;
    exit when v_n < 2;
  end loop;
  return v_total;
end;
$$;

-- bot_logs: every line, by age ----------------------------------------------------------------------
insert into public.bot_logs (user_id, log_level, message, created_at)
select tests.id('user', 1), 'info', 'old ' || n, timestamptz '1999-06-01' + n * interval '1 minute'
  from generate_series(1, 5) n;
insert into public.bot_logs (user_id, log_level, message, created_at)
values (tests.id('user', 1), 'info', 'new 1', timestamptz '2000-01-01'),
       (tests.id('user', 1), 'error', 'new 2', timestamptz '2001-01-01');
select is(pg_temp.prune('bot_logs', 2), 2, 'a batch deletes at most its size');
select is((select array_agg(message order by message) from public.bot_logs where user_id = tests.id('user', 1)),
          array['new 1', 'new 2', 'old 3', 'old 4', 'old 5'], '... the oldest first');
select is(pg_temp.prune_all('bot_logs'), 3, 'batches go on until nothing older is left');
select is((select array_agg(message order by message) from public.bot_logs where user_id = tests.id('user', 1)),
          array['new 1', 'new 2'], 'every older log line is gone, none at or after the cutoff');

-- webhook_events: processed and ignored ones, by when they were done ---------------------------------
insert into public.webhook_events (provider, event_id, event_type, payload, status, received_at, processed_at)
values ('alpaca', 'ret-processed-old', 'test', '{}', 'processed', '1999-05-01', '1999-05-02'),
       ('alpaca', 'ret-ignored-old', 'test', '{}', 'ignored', '1999-05-01', '1999-05-02'),
       ('alpaca', 'ret-failed-old', 'test', '{}', 'failed', '1999-05-01', '1999-05-02'),
       ('alpaca', 'ret-received-old', 'test', '{}', 'received', '1999-05-01', null),
       ('alpaca', 'ret-processing-old', 'test', '{}', 'processing', '1999-05-01', null),
       ('alpaca', 'ret-processed-late', 'test', '{}', 'processed', '1999-05-01', '2000-01-02'),
       ('alpaca', 'ret-processed-new', 'test', '{}', 'processed', '2001-01-01', '2001-01-01');
select is(pg_temp.prune_all('webhook_events'), 2, 'old processed and ignored webhook events are deleted');
select is((select array_agg(event_id order by event_id) from public.webhook_events where event_id like 'ret-%'),
          array['ret-failed-old', 'ret-processed-late', 'ret-processed-new', 'ret-processing-old', 'ret-received-old'],
          'events still waiting or failed stay whatever their age; an event processed after the cutoff stays');

-- notifications: read ones, by when they were read ------------------------------------------------
insert into public.notifications (id, user_id, kind, title, created_at, read_at)
values (tests.id('ret-note', 1), tests.id('user', 1), 'system', 'read old', '1999-01-01', '1999-02-01'),
       (tests.id('ret-note', 2), tests.id('user', 1), 'system', 'unread old', '1999-01-01', null),
       (tests.id('ret-note', 3), tests.id('user', 1), 'system', 'read lately', '1999-01-01', '2000-06-01'),
       (tests.id('ret-note', 4), tests.id('user', 1), 'system', 'read new', '2001-01-01', '2001-01-02');
select is(pg_temp.prune_all('notifications'), 1, 'notifications read before the cutoff are deleted');
select is((select array_agg(title order by title) from public.notifications where user_id = tests.id('user', 1)),
          array['read lately', 'read new', 'unread old'], 'unread ones stay, and those read after the cutoff');

-- jobs: succeeded and cancelled ones, by when they finished ----------------------------------------
insert into public.jobs (kind, payload, status, created_at, finished_at)
values ('test.retention', '{"n": "succeeded old"}', 'succeeded', '1999-01-01', '1999-01-02'),
       ('test.retention', '{"n": "cancelled old"}', 'cancelled', '1999-01-01', '1999-01-02'),
       ('test.retention', '{"n": "dead old"}', 'dead', '1999-01-01', '1999-01-02'),
       ('test.retention', '{"n": "queued old"}', 'queued', '1999-01-01', null),
       ('test.retention', '{"n": "succeeded new"}', 'succeeded', '1999-01-01', '2001-01-01');
insert into public.jobs (kind, payload, status, created_at, started_at, locked_until)
values ('test.retention', '{"n": "running old"}', 'running', '1999-01-01', '1999-01-01', '1999-01-01');
select is(pg_temp.prune_all('jobs'), 2, 'old succeeded and cancelled jobs are deleted');
select is((select array_agg(payload ->> 'n' order by payload ->> 'n') from public.jobs where kind = 'test.retention'),
          array['dead old', 'queued old', 'running old', 'succeeded new'],
          'dead jobs wait for an operator, queued and running ones are work, newer ones stay');

-- The fleet's entry point ----------------------------------------------------------------------------
insert into public.bot_logs (user_id, log_level, message, created_at)
select tests.id('user', 1), 'debug', 'again ' || n, timestamptz '1999-06-01' from generate_series(1, 3) n;
select tests.authenticate_as('service_role');
select is(public.prune_history('bot_logs', now() - timestamptz '2000-01-01 00:00:00+00', 2), 2,
          'the service role prunes one batch older than the given age');
select is(public.prune_history('bot_logs', now() - timestamptz '2000-01-01 00:00:00+00'), 1, '... 1000 rows a batch by default');
select tests.clear_authentication();
select is((select count(*)::int from public.bot_logs where user_id = tests.id('user', 1)), 2, '... and only those');

select throws_ok($$select public.prune_history('trades', interval '1 day')$$, '22023',
                 'prune_history: history must be bot_logs, webhook_events, notifications, jobs, service_checks or api_usage_minutes',
                 'a table that is not history is refused by name');
select throws_ok($$select public.prune_history(null, interval '1 day')$$, '22023', null, 'so is no table');
select throws_ok($$select public.prune_history('jobs', interval '0')$$, '22023',
                 'prune_history: keep must be positive and at most 100 years', 'a keep of zero is refused');
select throws_ok($$select public.prune_history('jobs', interval '-1 day')$$, '22023', null, 'so is a negative keep');
select throws_ok($$select public.prune_history('jobs', null)$$, '22023', null, 'and no keep');
select throws_ok($$select public.prune_history('jobs', interval '1000000 years')$$, '22023', null,
                 'and a keep beyond any date');
select throws_ok($$select public.prune_history('jobs', interval '1 day', 0)$$, '22023',
                 'prune_history: batch must be between 1 and 10000', 'an empty batch is refused');
select throws_ok($$select public.prune_history('jobs', interval '1 day', 10001)$$, '22023', null, 'so is a huge batch');
select throws_ok($$select public.prune_history('jobs', interval '1 day', null)$$, '22023', null, 'and no batch');

select tests.create_user(2, 'boss@retention.test', 'admin');
select is(tests.try_as('anon', $$select public.prune_history('bot_logs', interval '1 day')$$), 'denied',
          'anon cannot prune');
select is(tests.try_as('ret@retention.test', $$select public.prune_history('bot_logs', interval '1 day')$$), 'denied',
          'a user cannot prune');
select is(tests.try_as('boss@retention.test', $$select public.prune_history('bot_logs', interval '1 day')$$), 'denied',
          'nor can an admin');
select is(tests.try_as('ret@retention.test', $$select private.prune_history('bot_logs', now(), 10)$$), 'denied',
          'nor call the batch itself');

select * from finish();
rollback;
