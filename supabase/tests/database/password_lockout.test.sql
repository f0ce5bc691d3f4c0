-- Supabase Auth's password verification hook: five wrong passwords within 15 minutes lock
-- the account for 15 minutes (every attempt refused, even the right password); a right
-- password outside a lockout clears the count; accounts are counted apart.
begin;

select tests.create_user(1801, 'ola@lockout.test');
select tests.create_user(1802, 'pia@lockout.test');

create function pg_temp.attempt(p_n integer, p_valid boolean) returns text
language sql
as $$
  select public.hook_password_verification_attempt(
           jsonb_build_object('user_id', tests.id('user', p_n), 'valid', p_valid)) ->> 'decision'
$$;

select plan(11);

select is(array(select pg_temp.attempt(1801, false) from generate_series(1, 4)), '{continue,continue,continue,continue}',
          'four wrong passwords go through to the usual error');
select is(pg_temp.attempt(1802, false), 'continue', 'another account''s failures are its own');
select is(pg_temp.attempt(1801, false), 'reject', 'the fifth wrong password locks the account');
select alike(public.hook_password_verification_attempt(jsonb_build_object('user_id', tests.id('user', 1801), 'valid', true)) ->> 'message',
            'Too many failed sign-in attempts. Try again in % minute(s).', 'the right password is refused while locked, saying for how long');
select is(pg_temp.attempt(1802, true), 'continue', 'the other account signs in');
update private.password_failures set locked_until = now() - interval '1 second' where user_id = tests.id('user', 1801);
select is(pg_temp.attempt(1801, true), 'continue', 'after the lockout the right password signs in');
select is((select count(*)::int from private.password_failures where user_id = tests.id('user', 1801)), 0,
          'and clears the count');
update private.password_failures set first_failed_at = now() - interval '16 minutes', failures = 4
 where user_id = tests.id('user', 1802);
select is(pg_temp.attempt(1802, false), 'continue', 'failures older than the window start a new count');
select is(pg_temp.attempt(9999, false), 'continue', 'an unknown user is not tracked');
select throws_ok($$select public.hook_password_verification_attempt('{"user_id": "x", "valid": "yes"}')$$, '22023', null,
                 'a malformed event is refused by name');
select is(tests.try_as('ola@lockout.test', $$select 1 where public.hook_password_verification_attempt('{}') is not null$$), 'denied',
          'users cannot call the hook');

select * from finish();
rollback;
