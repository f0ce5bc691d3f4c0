-- Private helpers: updated_at maintenance and who the caller is (application role, admin,
-- service), read from the request's JWT as PostgREST sets it.
begin;
select plan(9);

select tests.create_user(1, 'ann@private.test');
select tests.create_user(2, 'pia@private.test', 'provider');
select tests.create_user(3, 'ada@private.test', 'admin');

-- updated_at
update public.profiles set updated_at = now() - interval '1 day' where id = tests.id('user', 1);
update public.profiles set full_name = 'Ann' where id = tests.id('user', 1);
select ok((select updated_at > now() - interval '1 minute' from public.profiles where id = tests.id('user', 1)),
          'updated_at follows every update');

-- The caller, as PostgREST presents them.
select tests.authenticate_as('ann@private.test');
select is(private.app_role(), 'user', 'a user''s application role is user');
select is(private.is_service(), false, 'a user is not the service');
select tests.authenticate_as('pia@private.test');
select is(private.app_role(), 'provider', 'a provider''s role comes from app_metadata');
select is(private.is_admin(), false, 'a provider is not an admin');
select tests.authenticate_as('ada@private.test');
select is(private.is_admin(), true, 'an admin is recognised from app_metadata');
select is(private.is_service(), false, 'an admin is not the service');
select tests.authenticate_as('service_role');
select is(private.is_service(), true, 'the service role is the service');
select tests.clear_authentication();
select is(private.is_service(), true, 'a direct session (migrations, the fleet) counts as the service');

select * from finish();
rollback;
