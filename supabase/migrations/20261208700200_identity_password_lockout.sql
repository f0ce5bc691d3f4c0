-- Supabase Auth's password verification hook: after 5 wrong passwords for an account within
-- 15 minutes, every password attempt on it (right or wrong) is refused for 15 minutes, so
-- guessing a password online is slow. A right password outside a lockout clears the count.
-- Enabled in supabase/config.toml ([auth.hook.password_verification_attempt]).

-- Tables and indexes --------------------------------------------------------------------

create table private.password_failures (
  user_id uuid primary key references auth.users (id) on delete cascade,
  failures integer not null default 0,
  first_failed_at timestamptz not null default now(),
  locked_until timestamptz
);

-- Grants --------------------------------------------------------------------------------

revoke all on private.password_failures from public, anon, authenticated, service_role;

-- Functions -----------------------------------------------------------------------------

-- event: {"user_id": uuid, "valid": boolean}; answers {"decision": "continue"} or
-- {"decision": "reject", "message": …, "should_logout_user": false}.
create or replace function public.hook_password_verification_attempt(event jsonb) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_user uuid;
  v_row private.password_failures;
  v_max constant integer := 5;
  v_window constant interval := interval '15 minutes';
  v_lock constant interval := interval '15 minutes';
begin
  if jsonb_typeof(event -> 'user_id') is distinct from 'string' or jsonb_typeof(event -> 'valid') is distinct from 'boolean'
     or (event ->> 'user_id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    raise exception 'event must hold user_id (a UUID) and valid (a boolean)' using errcode = 'invalid_parameter_value';
  end if;
  v_user := (event ->> 'user_id')::uuid;
  select * into v_row from private.password_failures f where f.user_id = v_user for update;
  if found and v_row.locked_until > now() then
    return jsonb_build_object('decision', 'reject', 'should_logout_user', false,
      'message', format('Too many failed sign-in attempts. Try again in %s minute(s).',
                        ceil(extract(epoch from v_row.locked_until - now()) / 60)));
  end if;
  if (event ->> 'valid')::boolean then
    delete from private.password_failures f where f.user_id = v_user;
    return jsonb_build_object('decision', 'continue');
  end if;
  if not exists (select 1 from auth.users u where u.id = v_user) then
    return jsonb_build_object('decision', 'continue');
  end if;
  insert into private.password_failures as f (user_id, failures, first_failed_at)
  values (v_user, 1, now())
  on conflict (user_id) do update
    set failures = case when f.first_failed_at > now() - v_window then f.failures + 1 else 1 end,
        first_failed_at = case when f.first_failed_at > now() - v_window then f.first_failed_at else now() end,
        locked_until = null
  returning * into v_row;
  if v_row.failures >= v_max then
    update private.password_failures f set locked_until = now() + v_lock, failures = 0, first_failed_at = now()
     where f.user_id = v_user;
    return jsonb_build_object('decision', 'reject', 'should_logout_user', false,
      'message', format('Too many failed sign-in attempts. Try again in %s minutes.', extract(epoch from v_lock) / 60));
  end if;
  return jsonb_build_object('decision', 'continue');
end;
$$;

revoke all on function public.hook_password_verification_attempt(jsonb) from public, anon, authenticated;
grant execute on function public.hook_password_verification_attempt(jsonb) to supabase_auth_admin, service_role;
