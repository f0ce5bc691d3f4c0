-- Fleet partitioned history: bot_logs is partitioned by week with a default partition;
-- partitions are reached only through their parent; the fleet creates weeks ahead and drops
-- old weeks whole; bad arguments are named errors; only the fleet may call either.
begin;
select plan(14);

select tests.create_user(1, 'part@partitions.test');
select tests.create_user(2, 'boss@partitions.test', 'admin');

select is((select relkind::text from pg_class where oid = 'public.bot_logs'::regclass), 'p',
          'bot_logs is a partitioned table');
select is((select pg_get_partkeydef('public.bot_logs'::regclass)), 'RANGE (created_at)', '... by range of created_at');
select ok(exists (select 1 from pg_inherits i join pg_class c on c.oid = i.inhrelid
                   where i.inhparent = 'public.bot_logs'::regclass and c.relname = 'bot_logs_default'
                     and pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'),
          '... with a default partition');
select is(public.create_history_partitions(), 0, 'the migration made the weeks up to a week ahead');

-- A row of a week that has no partition waits in the default partition, then moves.
insert into public.bot_logs (user_id, log_level, message, created_at)
values (tests.id('user', 1), 'info', 'waiting', now() + interval '60 days');
select is((select tableoid::regclass::text from public.bot_logs where message = 'waiting'), 'partitions.bot_logs_default',
          'a row beyond every partition lands in the default partition');
update private.history_partitions set ahead = interval '61 days' where table_name = 'bot_logs';
select cmp_ok(public.create_history_partitions(), '>=', 7, 'the fleet creates every week up to its ahead');
select matches((select tableoid::regclass::text from public.bot_logs where message = 'waiting'), '^partitions\.bot_logs_p',
               '... and the waiting row moved into its week');

-- Old weeks go whole.
select private.create_history_partition('bot_logs', now() - interval '50 days');
insert into public.bot_logs (user_id, log_level, message, created_at)
values (tests.id('user', 1), 'info', 'old week', now() - interval '50 days');
select is(public.drop_history_partitions('bot_logs', interval '30 days'), 1, 'a week older than the keep is dropped');
select is((select count(*)::int from public.bot_logs where message = 'old week'), 0, '... with its rows');

-- Only through the parent, only the fleet.
select is(tests.try_as('part@partitions.test', $$select count(*) from partitions.bot_logs_default$$), 'denied',
          'a user cannot read a partition directly');
select is(tests.try_as('boss@partitions.test', $$select count(*) from partitions.bot_logs_default$$), 'denied',
          'nor can an admin');
select is(tests.try_as('part@partitions.test', $$select public.create_history_partitions()$$), 'denied',
          'a user cannot create partitions');
select throws_ok($$select public.drop_history_partitions('jobs', interval '1 day')$$, '22023',
                 'drop_history_partitions: history must be one of api_usage_minutes, bot_logs, candles, notifications, webhook_events', 'only a partitioned history is dropped');
select throws_ok($$select public.drop_history_partitions('bot_logs', interval '0')$$, '22023',
                 'drop_history_partitions: keep must be positive and at most 100 years', 'the keep must be positive');

select * from finish();
rollback;
