-- The rules of an API key's row are checked when a column they read is written, not at
-- every write of the row. PostgreSQL evaluates every check constraint of a table at every
-- update of a row, whatever columns it changes, and reads each constraint's expression
-- from its stored text again in every statement: the key's last use, which
-- api_authorize writes at most once a minute per key and address, parsed the five
-- constraints of api_keys each time, a fifth of the instructions of a call (callgrind over
-- scripts/bench api's keys, whose last use is mostly due: 0.99 million instructions a call
-- with the constraints, 0.78 million with none).
--
-- The same five rules, with the same names, now live in one trigger that fires on an insert
-- and on an update that sets one of the columns they read (environment, name, user_id,
-- organisation_id, scopes): an update that sets none of them leaves them as they were
-- checked. A refused row is refused as a check constraint refuses it: SQLSTATE 23514
-- (check_violation), the constraint's name in the error's constraint field and message.
-- Keys are written only by the owner's security definer functions (create_api_key,
-- create_organisation_api_key, revoke_api_key, api_authorize); no role may insert or
-- update the table directly. The scopes are private.api_scopes()'s, which create_api_key
-- checks against too: one list (a function in a check constraint was planned again at
-- every write; in this trigger it runs only when a key's scopes are written).

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

create or replace function private.api_keys_check() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_refused text;
begin
  -- In the constraints' order (by name), each passing on NULL as a check constraint does.
  v_refused := case
    when not (new.environment = any (array['live', 'test'])) then 'api_keys_environment_known'
    when not (char_length(btrim(new.name)) between 1 and 100) then 'api_keys_name_length'
    when not ((new.user_id is null) <> (new.organisation_id is null)) then 'api_keys_one_owner'
    when not (new.organisation_id is null or new.scopes <@ array['bots:read', 'bots:write', 'trades:read'])
      then 'api_keys_organisation_scopes'
    when not (cardinality(new.scopes) between 1 and 16 and new.scopes <@ private.api_scopes())
      then 'api_keys_scopes_known'
  end;
  if v_refused is not null then
    raise exception 'new row for relation "api_keys" violates check constraint "%"', v_refused
      using errcode = 'check_violation', constraint = v_refused, schema = 'public', table = 'api_keys';
  end if;
  return new;
end;
$$;

revoke all on function private.api_keys_check() from public, anon, authenticated, service_role;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger api_keys_checks
  before insert or update of environment, name, user_id, organisation_id, scopes on public.api_keys
  for each row execute function private.api_keys_check();

alter table public.api_keys drop constraint api_keys_environment_known;
alter table public.api_keys drop constraint api_keys_name_length;
alter table public.api_keys drop constraint api_keys_one_owner;
alter table public.api_keys drop constraint api_keys_organisation_scopes;
alter table public.api_keys drop constraint api_keys_scopes_known;
