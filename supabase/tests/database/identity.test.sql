-- Identity: profiles follow auth.users, roles come from app_metadata only, users edit only
-- their presentational columns, and the access token hook gives admins their database role.
begin;
select plan(10);

select tests.create_user(1, 'ann@identity.test');
select tests.create_user(2, 'ben@identity.test');
select tests.create_user(3, 'pia@identity.test', 'provider');
select tests.create_user(4, 'ada@identity.test', 'admin');

select is((select role from public.profiles where id = tests.id('user', 3)), 'provider', 'the profile role comes from app_metadata');
update auth.users set raw_app_meta_data = raw_app_meta_data || '{"role": "provider"}', email = 'ann@new.identity.test'
 where id = tests.id('user', 1);
select is((select role || ' ' || email from public.profiles where id = tests.id('user', 1)), 'provider ann@new.identity.test',
          'a role or email changed in auth.users follows on the profile');
update auth.users set raw_app_meta_data = raw_app_meta_data || '{"role": "root"}' where id = tests.id('user', 2);
select is((select role from public.profiles where id = tests.id('user', 2)), 'user', 'an unknown role counts as user');

select is(tests.claims_for(tests.id('user', 4)) ->> 'role', 'tradefleet_admin',
          'the access token hook gives admins the tradefleet_admin database role');
select is(tests.claims_for(tests.id('user', 3)) ->> 'role', 'authenticated', 'everyone else stays authenticated');

select is(tests.try_as('ben@identity.test', $$update public.profiles set full_name = 'Benjamin'$$), 'rows=1',
          'users edit their own name');
select is((select full_name from public.profiles where id = tests.id('user', 1)), 'Ann',
          '... and nobody else''s');
select is(tests.try_as('ben@identity.test', $$update public.profiles set role = 'admin'$$), 'denied',
          'users cannot make themselves admin');
select is(tests.try_as('ben@identity.test', $$select * from public.profiles where id in ($$ ||
          quote_literal(tests.id('user', 1)) || ',' || quote_literal(tests.id('user', 2)) || ')'), 'rows=1',
          'users read their own profile only');
select is(tests.try_as('ada@identity.test', $$select * from public.profiles where id in ($$ ||
          quote_literal(tests.id('user', 1)) || ',' || quote_literal(tests.id('user', 2)) || ')'), 'rows=2',
          'admins read every profile');

select * from finish();
rollback;
