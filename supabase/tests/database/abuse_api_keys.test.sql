-- Abuse of the public API's keys and limiter, as the security suite sees it: a key's user
-- cannot get past the rate limit, and no key is stored that breaks the rules of a key's row
-- (its scopes, one owner, an organisation's bot scopes only, its environment and name).
begin;

-- Cast: 1751 ann on a plan with API access and 3 requests a minute.
select tests.create_user(1751, 'ann@abuse-api-keys.test');
insert into public.plans (id, name, price_monthly, max_bots, max_strategies, custom_strategies, api_access, features, sort_order)
values (tests.id('abuse-api-plan', 1), 'Abuse Api Test', 5, 3, 3, true, true, '{"api_requests_per_minute": 3}', -30);
update public.subscriptions set plan_id = tests.id('abuse-api-plan', 1), status = 'active', expires_at = now() + interval '1 month'
 where user_id = tests.id('user', 1751);

create temp table made (id uuid, key text) on commit drop;
grant all on made to public;

select plan(9);

select tests.authenticate_as('ann@abuse-api-keys.test');
insert into made select k.id, k.key from public.create_api_key('ci', '{bots:read}') k;

-- The limit: 3 a minute; the fourth request is refused and takes nothing.
select tests.authenticate_as('service_role');
select is(array[(public.api_authorize((select key from made), 'bots:read')) ->> 'status',
                (public.api_authorize((select key from made), 'bots:read')) ->> 'status',
                (public.api_authorize((select key from made), 'bots:read')) ->> 'status'],
          '{200,200,200}', 'three requests in a minute pass');
select is((public.api_authorize((select key from made), 'bots:read')) ->> 'status', '429', 'the fourth is 429');
select is((public.api_authorize((select key from made), 'bots:read')) ->> 'status', '429', 'and so is the fifth');
select tests.clear_authentication();

-- The rules of a key's row (api_keys_checks, one trigger) refuse a bad row as check
-- constraints would, whoever writes it, and fire only when a column they read is written.
select throws_ok($$insert into public.api_keys (user_id, name, environment, prefix, key_hash, scopes)
                   values (tests.id('user', 1751), 'bad', 'live', 'tf_live_badscope', '\x01', '{bots:read,admin:all}')$$,
  '23514', 'new row for relation "api_keys" violates check constraint "api_keys_scopes_known"',
  'a key with a scope outside private.api_scopes() is refused, naming api_keys_scopes_known');
select throws_ok($$insert into public.api_keys (user_id, name, environment, prefix, key_hash, scopes)
                   values (tests.id('user', 1751), 'bad', 'prod', 'tf_live_badenvir', '\x02', '{bots:read}')$$,
  '23514', 'new row for relation "api_keys" violates check constraint "api_keys_environment_known"',
  'a key of an unknown environment is refused, naming api_keys_environment_known');
select throws_ok($$insert into public.api_keys (organisation_id, name, environment, prefix, key_hash, scopes)
                   values (tests.id('org', 1), 'bad', 'live', 'tf_live_badorgsc', '\x03', '{bots:read,signals:write}')$$,
  '23514', 'new row for relation "api_keys" violates check constraint "api_keys_organisation_scopes"',
  'an organisation''s key with more than the bot scopes is refused, naming api_keys_organisation_scopes');
select throws_ok($$update public.api_keys set name = '  ' where id = (select id from made)$$,
  '23514', 'new row for relation "api_keys" violates check constraint "api_keys_name_length"',
  'renaming a key to blanks is refused, naming api_keys_name_length');
select throws_ok($$update public.api_keys set organisation_id = tests.id('user', 1751)
                    where id = (select id from made)$$,
  '23514', 'new row for relation "api_keys" violates check constraint "api_keys_one_owner"',
  'a key with two owners is refused, naming api_keys_one_owner');
select is((select count(*)::int from pg_trigger t
            where t.tgrelid = 'public.api_keys'::regclass and t.tgname = 'api_keys_checks' and t.tgenabled = 'O'
              and (select array_agg(a.attname::text order by a.attname) from pg_attribute a
                    where a.attrelid = t.tgrelid and a.attnum = any (t.tgattr))
                  = '{environment,name,organisation_id,scopes,user_id}'),
          1, 'the rules fire on writes of environment, name, user_id, organisation_id and scopes, not of the last use');
select * from finish();
rollback;
