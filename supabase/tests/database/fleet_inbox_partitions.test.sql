-- Webhook events and notifications partitioned by week: reached only through their
-- parents; retention folds old weeks into `<table>_kept`, keeping what is not history
-- (unread notifications, events not processed or ignored); a (provider, event_id) is
-- received once for ever, also after its event went.
begin;
select plan(22);

select tests.create_user(1, 'inbox@partitions.test');
select tests.create_user(2, 'other@partitions.test');

select is((select pg_get_partkeydef('public.webhook_events'::regclass)), 'RANGE (received_at)',
          'webhook_events is partitioned by range of received_at');
select is((select pg_get_partkeydef('public.notifications'::regclass)), 'RANGE (created_at)',
          'notifications is partitioned by range of created_at');
select is((select array_agg(step order by table_name) from private.history_partitions
            where table_name in ('notifications', 'webhook_events')), array[interval '7 days', interval '7 days'],
          '... one partition per week');
select is((select pg_get_expr(c.relpartbound, c.oid) ~ '^FOR VALUES FROM \(MINVALUE\)' from pg_class c
            where c.oid = 'partitions.notifications_kept'::regclass), true,
          'the kept partition reaches back to MINVALUE');
select is(public.create_history_partitions_between('notifications', now() - interval '60 days', now() - interval '1 day'), 0,
          'no week is made below the end of the kept partition (its rows are there)');
select ok(exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'notifications'),
          'Realtime publishes notifications (the parent)');

-- Notifications -------------------------------------------------------------------------------------
insert into public.notifications (id, user_id, kind, title, created_at, read_at)
values (tests.id('note', 1), tests.id('user', 1), 'system', 'old unread', now() - interval '200 days', null),
       (tests.id('note', 2), tests.id('user', 1), 'system', 'old read', now() - interval '200 days', now() - interval '199 days'),
       (tests.id('note', 3), tests.id('user', 1), 'system', 'new unread', now(), null),
       (tests.id('note', 4), tests.id('user', 1), 'system', 'new read', now(), now()),
       (tests.id('note', 5), tests.id('user', 2), 'system', 'other', now() - interval '200 days', null);
select is((select tableoid::regclass::text from public.notifications where id = tests.id('note', 1)),
          'partitions.notifications_kept', 'a notification older than every week lands in the kept partition');
select is(tests.try_as('inbox@partitions.test', 'select * from public.notifications'), 'rows=4',
          'the owner reads their notifications through the parent');
select is(tests.try_as('inbox@partitions.test', 'select * from partitions.notifications_kept'), 'denied',
          'but not a partition directly');
select is(tests.try_as('inbox@partitions.test',
            format($$update public.notifications set read_at = now() where id = %L$$, tests.id('note', 5))), 'rows=0',
          'nobody marks another user''s notification read');
select is(public.prune_history('notifications', interval '90 days', 100), 1,
          'a notification read before the keep goes from the kept partition');
select is((select array_agg(title order by title) from public.notifications where user_id = tests.id('user', 1)),
          array['new read', 'new unread', 'old unread'], '... an unread one stays whatever its age');
-- Folding this week (as if it had ended before the keep): what is read before the cutoff goes.
select ok(private.fold_history_partitions('notifications', now() + interval '15 days', now() + interval '1 hour') >= 1,
          'retention folds the weeks that ended before the keep');
select is((select array_agg(title order by title) from public.notifications where user_id = tests.id('user', 1)),
          array['new unread', 'old unread'], '... keeping what is unread, in the kept partition');
select is(tests.try_as('inbox@partitions.test',
            format($$update public.notifications set read_at = now() where id = %L$$, tests.id('note', 3))), 'rows=1',
          'its owner still marks a folded notification read by id');

-- Webhook events ------------------------------------------------------------------------------------
insert into public.webhook_events (provider, event_id, event_type, payload, status, received_at, processed_at)
values ('stripe', 'evt_old', 'invoice.paid', '{}', 'processed', now() - interval '60 days', now() - interval '59 days'),
       ('stripe', 'evt_failed', 'invoice.paid', '{}', 'failed', now() - interval '60 days', now() - interval '59 days');
create temporary table jobs_before as select count(*) as n from public.jobs where kind = 'billing.webhook';
select is(public.prune_history('webhook_events', interval '30 days', 100), 1,
          'an event processed before the keep goes');
select is((select array_agg(event_id) from public.webhook_events where event_id like 'evt\_%'), array['evt_failed'],
          '... a failed one stays');
insert into public.webhook_events (provider, event_id, event_type, payload) values ('stripe', 'evt_old', 'invoice.paid', '{}');
select is((select count(*)::int from public.webhook_events where event_id = 'evt_old'), 0,
          'a redelivery of an event that went is refused');
select is((select count(*) from public.jobs where kind = 'billing.webhook'), (select n from jobs_before),
          '... and queues no job');
select is((select id from private.webhook_event_keys where provider = 'stripe' and event_id = 'evt_failed'),
          (select id from public.webhook_events where event_id = 'evt_failed'), 'the key names its event');
update public.webhook_events set received_at = now() where event_id = 'evt_failed';
select is((select tableoid::regclass::text ~ '_p[0-9]{8}$' from public.webhook_events where event_id = 'evt_failed'), true,
          'an event moved from the kept partition to this week by an update of received_at stays');
select throws_ok($$update public.webhook_events set event_id = 'evt_old' where event_id = 'evt_failed'$$, '23514',
                 'webhook_events_key_fixed: an event keeps its provider and event id',
                 'an event cannot take another key');

select * from finish();
rollback;
