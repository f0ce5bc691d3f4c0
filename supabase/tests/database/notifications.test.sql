-- Notifications: each user reads and dismisses their own; new notifications of users who
-- opted in to Telegram or Discord queue outbound deliveries; only Discord webhook URLs.
begin;
select plan(12);

select tests.create_user(1, 'ann@notify.test');
select tests.create_user(2, 'ben@notify.test');
select tests.create_user(3, 'cid@notify.test');
update public.profiles set telegram_chat_id = '4242' where id = tests.id('user', 1);

insert into public.notifications (id, user_id, kind, title)
values (tests.id('note', 1), tests.id('user', 1), 'fill', 'Bought BTC'),
       (tests.id('note', 2), tests.id('user', 1), 'system', 'Welcome'),
       (tests.id('note', 3), tests.id('user', 2), 'fill', 'Bought ETH');

-- Outbound deliveries ----------------------------------------------------------------------------
select results_eq($$select payload -> 'notification_ids', max_attempts from public.jobs where kind = 'notify.deliver'
                     and payload -> 'notification_ids' ? tests.id('note', 1)::text$$,
                  format($$values ('[%s, %s]'::jsonb, 8)$$, to_json(least(tests.id('note', 1), tests.id('note', 2))),
                         to_json(greatest(tests.id('note', 1), tests.id('note', 2)))),
                  'a user who opted in gets one delivery job for the notifications of a statement');
select is((select count(*)::int from public.jobs where kind = 'notify.deliver' and payload -> 'notification_ids' ? tests.id('note', 3)::text),
          0, 'a user who did not opt in gets none');
insert into public.notifications (user_id, kind, title)
select tests.id('user', 1), 'signal', 'n' || n from generate_series(1, 150) n;
select is((select count(*)::int from public.jobs where kind = 'notify.deliver' and exists (
             select 1 from jsonb_array_elements_text(payload -> 'notification_ids') i
               join public.notifications n on n.id = i::uuid where n.title ~ '^n[0-9]+$' and n.user_id = tests.id('user', 1))), 2,
          '150 notifications are delivered by jobs of at most 100');

-- Discord webhooks --------------------------------------------------------------------------------------
select is(tests.try_as('ben@notify.test', $$update public.profiles set discord_webhook_url = 'https://discord.com/api/webhooks/123/abc-DEF_9'$$),
          'rows=1', 'a Discord webhook URL is accepted');
select is(tests.try_as('ben@notify.test', $$update public.profiles set discord_webhook_url = 'https://evil.example/api/webhooks/1/x'$$),
          'error=23514', 'any other URL is refused (the fleet would POST to it)');

-- Who reads and changes them ------------------------------------------------------------------------
select is(tests.try_as('ann@notify.test', 'select * from public.notifications where title in (''Bought BTC'', ''Welcome'', ''Bought ETH'')'),
          'rows=2', 'a user reads their own notifications');
select is(tests.try_as('ben@notify.test', format('select * from public.notifications where user_id = %L', tests.id('user', 1))),
          'rows=0', 'and nobody else''s');
select is(tests.try_as('anon', 'select * from public.notifications'), 'denied', 'anon reads none');
select is(tests.try_as('ann@notify.test', format('update public.notifications set read_at = now() where id = %L', tests.id('note', 1))),
          'rows=1', 'a user marks their notification read');
select is(tests.try_as('ann@notify.test', format($$update public.notifications set title = 'x' where id = %L$$, tests.id('note', 1))),
          'denied', 'but cannot rewrite it');
select is(tests.try_as('ben@notify.test', format('delete from public.notifications where id = %L', tests.id('note', 1))),
          'rows=0', 'nobody deletes another user''s notification');
select is(tests.try_as('cid@notify.test', format($$insert into public.notifications (user_id, kind, title) values (%L, 'system', 'x')$$,
          tests.id('user', 1))), 'denied', 'apps cannot send notifications');

select * from finish();
rollback;
