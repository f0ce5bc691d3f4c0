-- Claims across priorities: due jobs come highest priority first, then oldest; jobs not due
-- yet are never claimed and never hold back the due ones below them, however many wait.
begin;
select plan(5);

insert into public.workers (id, name, host, pid, version, queues)
values (tests.id('claim-worker', 1), 'claim-test', 'host', 1, 'test', '{claim_test}');
insert into public.jobs (queue, kind, payload, priority, run_at) values
  ('claim_test', 'test.claim', '{"n": "p9-later"}', 9, now() + interval '1 day'),
  ('claim_test', 'test.claim', '{"n": "p5-old"}', 5, now() - interval '2 minutes'),
  ('claim_test', 'test.claim', '{"n": "p5-new"}', 5, now() - interval '1 minute'),
  ('claim_test', 'test.claim', '{"n": "p5-later"}', 5, now() + interval '1 hour'),
  ('claim_test', 'test.claim', '{"n": "p0"}', 0, now() - interval '1 minute'),
  ('claim_test', 'test.other', '{"n": "p0-other-kind"}', 0, now() - interval '3 minutes'),
  ('claim_test', 'test.claim', '{"n": "m3"}', -3, now() - interval '5 minutes');
-- A backlog not due yet at every priority, in the same queue.
insert into public.jobs (queue, kind, payload, priority, run_at)
select 'claim_test', 'test.claim', '{"n": "backlog"}', p, now() + interval '1 day'
  from generate_series(1, 2000) g, unnest(array[9, 5, 0, -3]) p;

select results_eq(
  $$select payload ->> 'n' from public.claim_jobs(tests.id('claim-worker', 1), '{claim_test}', 3, 30, '{test.claim}')
    order by priority desc, run_at$$,
  array['p5-old', 'p5-new', 'p0'],
  'the highest due priority first, oldest first; a higher priority not due yet is skipped');
select results_eq(
  $$select payload ->> 'n' from public.claim_jobs(tests.id('claim-worker', 1), '{claim_test}', 10, 30, '{test.claim}')$$,
  array['m3'],
  'then the lower priorities: the backlog due tomorrow holds none of them back');
select results_eq(
  $$select payload ->> 'n' from public.claim_jobs(tests.id('claim-worker', 1), '{claim_test}', 10, 30)$$,
  array['p0-other-kind'],
  'without a kind filter, the job of another kind is claimed too');
select is((select count(*)::int from public.jobs where queue = 'claim_test' and status = 'queued'), 8002,
          'nothing not due yet was claimed');
-- The claim's row estimates grow with the queue: left to the planner, a large queue makes
-- every claim cross the JIT thresholds and compile (seconds per claim under load).
select ok((select 'jit=off' = any (p.proconfig) from pg_proc p
            where p.oid = 'public.claim_jobs(uuid, text[], integer, double precision, text[])'::regprocedure),
          'claim_jobs runs with jit off');

select * from finish();
rollback;
