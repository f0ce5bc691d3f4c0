-- API usage partitioned by day: the per-minute rollups are partitioned by day of `minute`,
-- reached only through their parent; old days go whole, old rows of the default partition
-- in batches; the per-day rollups are not touched.
begin;
select plan(8);

select tests.create_user(1, 'usage@partitions.test');
insert into public.api_keys (id, user_id, name, environment, prefix, key_hash, scopes)
values ('00000000-0000-4000-8000-00000000a001', tests.id('user', 1), 'k', 'live', 'tf_live_usagepart', '\x0a01', '{bots:read}');

select is((select pg_get_partkeydef('public.api_usage_minutes'::regclass)), 'RANGE (minute)',
          'api_usage_minutes is partitioned by range of minute');
select is((select step from private.history_partitions where table_name = 'api_usage_minutes'), interval '1 day',
          '... one partition per day');

select private.create_history_partition('api_usage_minutes', now() - interval '40 days');
insert into public.api_usage_minutes (key_id, user_id, minute, endpoint, status, calls, latency_ms_sum, latency_ms_max)
values ('00000000-0000-4000-8000-00000000a001', tests.id('user', 1), date_trunc('minute', now() - interval '40 days'), 'old day', 200, 1, 1, 1),
       ('00000000-0000-4000-8000-00000000a001', tests.id('user', 1), date_trunc('minute', now() - interval '35 days'), 'old', 200, 1, 1, 1),
       ('00000000-0000-4000-8000-00000000a001', tests.id('user', 1), date_trunc('minute', now()), 'today', 200, 1, 1, 1);
insert into public.api_usage_days (key_id, user_id, day, calls, errors, latency_ms_sum)
values ('00000000-0000-4000-8000-00000000a001', tests.id('user', 1), (now() - interval '40 days')::date, 1, 0, 1);

select is(tests.try_as('usage@partitions.test', $$select * from public.api_usage_minutes$$), 'rows=3',
          'the key owner reads their usage through the parent');
select is(tests.try_as('usage@partitions.test', $$select count(*) from partitions.api_usage_minutes_default$$), 'denied',
          'but not a partition directly');
select is(public.drop_history_partitions('api_usage_minutes', interval '30 days'), 1, 'a day older than the keep is dropped');
select is(public.prune_history('api_usage_minutes', interval '30 days', 100), 1,
          'old rows of the default partition are deleted');
select is((select array_agg(endpoint) from public.api_usage_minutes), array['today'], '... the recent usage stays');
select is((select count(*)::int from public.api_usage_days), 1, 'the per-day rollups are kept');

select * from finish();
rollback;
