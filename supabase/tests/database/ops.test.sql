-- Ops: service health and alert incidents. record_service_check applies the documented
-- rules (healthy, degraded when slow or after a failure, down after N failures in a row),
-- keeps the history, moves changed_at only on a change, and is the fleet's only; admins
-- read service_checks, service_status and alert_incidents and call admin_service_health(),
-- users and anon see and call nothing.
begin;
select plan(24);

select tests.create_user(1701, 'user@ops.test');
select tests.create_user(1702, 'admin@ops.test', 'admin');

create function pg_temp.check(p_ok boolean, p_latency numeric, p_error text default null) returns text
language plpgsql as $$
declare
  v_status text;
begin
  perform tests.authenticate_as('service_role');
  select (public.record_service_check('opstest', 'x', p_ok, p_latency, p_error, 100, 2)).status into v_status;
  perform tests.clear_authentication();
  return v_status;
end;
$$;

-- The rules ------------------------------------------------------------------------------
select is(pg_temp.check(true, 10), 'healthy', 'a quick success is healthy');
select is(pg_temp.check(true, 150), 'degraded', 'a success slower than slow_ms is degraded');
select is(pg_temp.check(false, 5, 'HTTP 503'), 'degraded', 'one failure is degraded');
select is(pg_temp.check(false, 5, 'HTTP 503'), 'down', 'down_after failures in a row make it down');
select is(pg_temp.check(false, 5, 'HTTP 502'), 'down', 'more failures keep it down');
select is((select failures from public.service_status where service = 'opstest'), 3, 'failures in a row are counted');
select is((select error from public.service_status where service = 'opstest'), 'HTTP 502', 'the last error is kept');
select is(pg_temp.check(true, 10), 'healthy', 'one success makes it healthy again');
select is((select failures from public.service_status where service = 'opstest'), 0, '... and clears the failures');
select is((select count(*)::int from public.service_checks where service = 'opstest'), 6, 'every check is in the history');
select is((select array_agg(status order by id) from public.service_checks where service = 'opstest'),
          array['healthy', 'degraded', 'degraded', 'down', 'down', 'healthy'], '... with its status');

-- Bad arguments and callers ----------------------------------------------------------------
select is(tests.try_as('service_role', $$select public.record_service_check('Bad Name', '', true, 1, null)$$),
          'error=22023', 'a service name is short and lower-case');
select is(tests.try_as('service_role', $$select public.record_service_check('opstest', 'x', null, 1, null)$$),
          'error=22023', 'ok is required');
select is(tests.try_as('service_role', $$select public.record_service_check('opstest', 'x', true, -1, null)$$),
          'error=22023', 'a latency is not negative');
select is(tests.try_as('service_role', $$select public.record_service_check('opstest', 'x', true, 1, null, 0, 2)$$),
          'error=22023', 'slow_ms is positive');
select is(tests.try_as('admin@ops.test', $$select public.record_service_check('opstest', 'x', true, 1, null)$$),
          'denied', 'admins cannot record checks');
select is(tests.try_as('user@ops.test', $$select public.record_service_check('opstest', 'x', true, 1, null)$$),
          'denied', 'users cannot record checks');

-- Who reads ------------------------------------------------------------------------------
insert into public.alert_incidents (rule, key, summary) values ('ops_test', 'k', 'test incident');
select is(tests.try_as('admin@ops.test', $$select 1 from public.service_checks where service = 'opstest'$$), 'rows=6',
          'admins read the history');
select is(tests.try_as('user@ops.test', $$select 1 from public.service_checks$$), 'rows=0', 'users read none of it');
select is(tests.try_as('user@ops.test', $$select 1 from public.service_status$$), 'rows=0', '... nor the current state');
select is(tests.try_as('user@ops.test', $$select 1 from public.alert_incidents$$), 'rows=0', '... nor the incidents');
select is(tests.try_as('admin@ops.test', $$select 1 from public.alert_incidents where rule = 'ops_test'$$), 'rows=1',
          'admins read the incidents');
select is(tests.try_as('user@ops.test', $$select 1 from public.admin_service_health()$$), 'denied',
          'users cannot call admin_service_health');
select is(tests.try_as('admin@ops.test', $$select 1 from public.admin_service_health()
                                           where service = 'opstest' and jsonb_array_length(history) = 6$$),
          'rows=1', 'admins get each service with its history');

select * from finish();
rollback;
