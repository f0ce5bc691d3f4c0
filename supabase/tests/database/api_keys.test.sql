-- API keys, the rate limiter behind the public API, and the plan limits users meet:
-- keys shown once and found only by their keyed hash, several keys per user each seen by
-- its owner only, revoked and expired keys refused like unknown ones, scopes, the plan's
-- api_access and api_requests_per_minute, and errors that name the plan that lifts a limit.
begin;

-- Cast: 1701 kim and 1702 lee on a plan with API access (3 requests a minute), 1703 max on Free.
select tests.create_user(1701, 'kim@api-keys.test');
select tests.create_user(1702, 'lee@api-keys.test', 'provider');
select tests.create_user(1703, 'max@api-keys.test');
insert into public.plans (id, name, price_monthly, max_bots, max_strategies, custom_strategies, api_access, features, sort_order)
values (tests.id('api-plan', 1), 'Api Test', 5, 3, 3, true, true, '{"api_requests_per_minute": 3}', -20),
       (tests.id('api-plan', 2), 'Api Test Big', 50, 30, 30, true, true, '{"api_requests_per_minute": 300}', -10);
update public.subscriptions set plan_id = tests.id('api-plan', 1), status = 'active', expires_at = now() + interval '1 month'
 where user_id in (tests.id('user', 1701), tests.id('user', 1702));

create temp table made (who text, n int, id uuid, key text, prefix text) on commit drop;
grant all on made to public;

select plan(38);

-- Creating keys: several per user, the key returned once.
select tests.authenticate_as('kim@api-keys.test');
insert into made select 'kim', 1, k.id, k.key, k.prefix from public.create_api_key('ci', '{bots:read,trades:read}') k;
insert into made select 'kim', 2, k.id, k.key, k.prefix
  from public.create_api_key('test bot', '{bots:write,bots:read}', now() + interval '1 day', 'test') k;
select tests.authenticate_as('lee@api-keys.test');
insert into made select 'lee', 1, k.id, k.key, k.prefix from public.create_api_key('signals', '{signals:write}') k;
select tests.clear_authentication();

select ok((select bool_and(key ~ '^tf_live_[A-Za-z0-9]{32}$') from made where n = 1), 'a live key is tf_live_ and 32 characters');
select ok((select key ~ '^tf_test_[A-Za-z0-9]{32}$' from made where who = 'kim' and n = 2), 'a test key is tf_test_ and 32 characters');
select is((select count(distinct key)::int from made), 3, 'every key is different');
select ok((select bool_and(prefix = left(key, 16)) from made), 'the stored prefix is the first 16 characters');
select is((select scopes from public.api_keys where id = (select id from made where who = 'kim' and n = 2)),
          '{bots:read,bots:write}'::text[], 'scopes are stored sorted');
select ok(not exists (select 1 from public.api_keys k join made m on m.id = k.id
                       where position(convert_to(m.key, 'UTF8') in k.key_hash) > 0 or k.key_hash = convert_to(m.key, 'UTF8')
                          or k.key_hash = extensions.digest(m.key, 'sha256')),
          'the table holds neither the key nor its plain hash');

-- Who sees which keys, and that nobody reads the hash.
select is(tests.try_as('kim@api-keys.test', $$select id from api_keys$$), 'rows=2', 'kim sees her two keys');
select is(tests.try_as('lee@api-keys.test', $$select id from api_keys$$), 'rows=1', 'lee sees his one key');
select is(tests.try_as('max@api-keys.test', $$select id from api_keys$$), 'rows=0', 'max sees no key');
select is(tests.try_as('anon', $$select id from api_keys$$), 'denied', 'anon reads no key');
select is(tests.try_as('kim@api-keys.test', $$select key_hash from api_keys$$), 'denied', 'kim cannot read her keys'' hashes');
select is(tests.try_as('service_role', $$select key_hash from api_keys$$), 'denied', 'the service cannot read hashes');
select is(tests.try_as('kim@api-keys.test', $$select * from private.api_key_secret$$), 'denied', 'users cannot read the secret');
select is(tests.try_as('service_role', $$select * from private.api_key_secret$$), 'denied', 'the service cannot read the secret');
select is(tests.try_as('kim@api-keys.test', $$select 1 where private.api_key_hash('tf_live_x') is not null$$), 'denied', 'users cannot hash with the secret');

-- Resolving keys (as the api function does, with the service role).
select tests.authenticate_as('service_role');
select is((public.api_authorize((select key from made where who = 'kim' and n = 1), 'bots:read', '203.0.113.7')) -> 'claims' ->> 'sub',
          tests.id('user', 1701)::text, 'a key resolves to its user');
select is((public.api_authorize((select key from made where who = 'lee' and n = 1), 'signals:write')) -> 'claims' -> 'app_metadata' ->> 'role',
          'provider', 'a provider''s key acts as a provider');
select is((public.api_authorize((select key from made where who = 'kim' and n = 1), 'bots:write')) - 'limit' - 'key_id' - 'user_id',
          '{"status": 403, "error": "this API key lacks the scope bots:write", "scope": "bots:write"}'::jsonb,
          'a missing scope is 403 naming the scope');
select is(public.api_authorize('tf_live_' || repeat('A', 32), 'bots:read'), '{"status": 401, "error": "invalid API key"}',
          'an unknown key is 401');
select is(public.api_authorize('Bearer nonsense', 'bots:read'), '{"status": 401, "error": "invalid API key"}',
          'a malformed key is 401');
select is(public.api_authorize(null, 'bots:read'), '{"status": 401, "error": "invalid API key"}', 'no key is 401');
select tests.clear_authentication();
update public.api_keys set expires_at = now() - interval '1 second' where id = (select id from made where who = 'kim' and n = 2);
select tests.authenticate_as('service_role');
select is(public.api_authorize((select key from made where who = 'kim' and n = 2), 'bots:read'),
          '{"status": 401, "error": "invalid API key"}', 'an expired key is 401 like an unknown one');

-- The rate limit: kim's plan allows 3 a minute, for all her keys together; a refused
-- request changes nothing.
select is((public.api_authorize((select key from made where who = 'kim' and n = 1), 'bots:read', '2001:db8::1')) ->> 'status', '200',
          'kim''s second request passes');
select is((select last_used_ip::text from public.api_keys where id = (select id from made where who = 'kim' and n = 1)),
          '2001:db8::1/128', 'the key keeps the address it was last used from');
select is((public.api_authorize((select key from made where who = 'kim' and n = 1), 'bots:read')) ->> 'remaining', '0',
          'kim''s third request passes, with nothing left');
create temp table refused on commit drop as
  select public.api_authorize((select key from made where who = 'kim' and n = 1), 'bots:read') as r,
         (select last_used_at from public.api_keys where id = (select id from made where who = 'kim' and n = 1)) as used_before;
select is((select (r ->> 'status', r ->> 'limit', r ->> 'remaining') from refused)::text, '(429,3,0)', 'the fourth is 429 with its limit');
select ok((select (r ->> 'retry_after')::int between 1 and 60 and (r ->> 'reset')::int between 1 and 60 from refused),
          'a 429 says when to retry');
select alike((select r ->> 'error' from refused), '%the Api Test plan allows 3 API requests a minute (api_requests_per_minute)%',
            'a 429 names the limit and the plan');
select is((select last_used_at from public.api_keys where id = (select id from made where who = 'kim' and n = 1)),
          (select used_before from refused), 'a refused request does not touch the key');
select is((public.api_authorize((select key from made where who = 'lee' and n = 1), 'signals:write')) ->> 'remaining', '1',
          'lee''s limit is his own');
select tests.clear_authentication();

-- Revocation: by the owner only; a revoked key is 401.
select is(tests.try_as('lee@api-keys.test', format('select * from revoke_api_key(%L)', (select id from made where who = 'kim' and n = 1))),
          'error=P0002', 'lee cannot revoke kim''s key');
select tests.authenticate_as('kim@api-keys.test');
select is((select r.id from public.revoke_api_key((select id from made where who = 'kim' and n = 1)) r),
          (select id from made where who = 'kim' and n = 1), 'kim revokes her key');
select tests.clear_authentication();
select tests.authenticate_as('service_role');
select is(public.api_authorize((select key from made where who = 'kim' and n = 1), 'bots:read'),
          '{"status": 401, "error": "invalid API key"}', 'a revoked key is 401 like an unknown one');
select tests.clear_authentication();

-- A plan without api_access: no new key, and existing keys stop working.
select throws_like($$select tests.authenticate_as('max@api-keys.test'); select * from public.create_api_key('k', '{bots:read}')$$,
  '%the Free plan does not include API access (api_access); the Api Test plan does%',
  'a Free user cannot create a key, and the error names the plan that lifts it');
select tests.clear_authentication();
update public.subscriptions set plan_id = (select id from public.plans where name = 'Free')
 where user_id = tests.id('user', 1702);
select tests.authenticate_as('service_role');
select alike((public.api_authorize((select key from made where who = 'lee' and n = 1), 'signals:write')) ->> 'error',
            '%the Free plan does not include API access (api_access)%', 'a key stops working when its plan loses api_access');
select tests.clear_authentication();

-- Plan limits apps meet, each naming the plan that lifts it.
select throws_like($$select tests.authenticate_as('max@api-keys.test');
                     insert into public.strategies (name, strategy_type, engine) values ('mine', 'custom', 'rsi')$$,
  '%the Free plan does not include custom strategies (custom_strategies); the Api Test plan does%',
  'a Free user cannot create a custom strategy');
select tests.clear_authentication();
select throws_like($$select tests.authenticate_as('kim@api-keys.test');
                     insert into public.bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
                     select 'b' || i, 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1 from generate_series(1, 4) i$$,
  '%the Api Test plan allows 3 bots (max_bots); the Api Test Big plan allows 30%',
  'a bot over max_bots names the plan that allows more');
select tests.clear_authentication();
update public.plans set ai_requests_per_month = 1 where id = tests.id('api-plan', 1);
insert into public.ai_analyses (user_id, analysis_type, input_data) values (tests.id('user', 1701), 'risk', '{}');
select throws_like($$insert into public.ai_analyses (user_id, analysis_type, input_data) values (tests.id('user', 1701), 'risk', '{}')$$,
  '%the Api Test plan allows 1 AI requests a month (ai_requests_per_month); the Api Test Big plan has no limit%',
  'an AI request over ai_requests_per_month is refused, naming the plan that lifts it');

select * from finish();select * from finish();
rollback;
